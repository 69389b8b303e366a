/// jemalloc, counting its large allocations for `squadlab bench memory`.
#[global_allocator]
static ALLOCATOR: squadlab::memory::counting::Counting<tikv_jemallocator::Jemalloc> =
    squadlab::memory::counting::Counting(tikv_jemallocator::Jemalloc);

/// jemalloc's settings. Training churns through tensors of tens of megabytes:
/// transparent huge pages cut the page faults of touching fresh ones about
/// 500-fold (a MiniLM forward+backward of 4×384 went from 6.1 s to 4.3 s), and
/// freed pages stay mapped for 30 s so the next step reuses them. The
/// environment variable `_RJEM_MALLOC_CONF` still overrides this.
/// (jemalloc reads a C string pointer under this name.)
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &u8 = &b"thp:always,dirty_decay_ms:-1,muzzy_decay_ms:-1\0"[0];

fn main() -> std::process::ExitCode {
    squadlab::cli::main()
}
