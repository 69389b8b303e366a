fn main() -> std::process::ExitCode {
    squadlab::cli::main()
}
