//! The command line. Every command takes `--json` to print exactly one JSON
//! line on stdout; progress and logs go to stderr.

mod args;
mod bench;
/// Public for its comparisons, which tests/it/numeric_checks.rs feeds NaN.
pub mod bench_check;
mod bench_memory;
mod breakdown;
mod check_config;
mod compare;
mod convert;
mod doctor;
mod doctor_kernels;
mod eval;
mod features;
mod inputs;
mod manage;
mod predict;
mod progress;
mod report;
mod runs;
mod score;
mod sweep;
mod sweep_task;
mod train;
mod worker;

pub use report::Report;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "squadlab",
    version,
    about = "Fine-tune BERT-family models on SQuAD v1.1 and track the experiments"
)]
pub struct Cli {
    /// Worker threads for data processing (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Score a predictions file with the official SQuAD v1.1 EM and F1.
    Score(score::ScoreArgs),
    /// Cut SQuAD questions into model windows and report (or dump) them.
    Features(features::FeaturesArgs),
    /// Turn raw start/end logits into answers, then score them.
    Postprocess(score::PostprocessArgs),
    /// Validate a run config and print it in full, defaults included.
    CheckConfig(check_config::CheckConfigArgs),
    /// Answer a question about a passage with a fine-tuned model.
    Predict(predict::PredictArgs),
    /// Re-save a checkpoint as a Hugging Face BertForQuestionAnswering safetensors folder.
    Convert(convert::ConvertArgs),
    /// Fine-tune a model as a run config says, then evaluate it.
    Train(train::TrainArgs),
    /// Evaluate a model on SQuAD questions: EM, F1, predictions and n-best lists.
    Eval(eval::EvalArgs),
    /// Continue an unfinished run (interrupted, cancelled, failed) from its last checkpoint.
    Resume(train::ResumeArgs),
    /// Train the store's queued runs on one device, one after another.
    Worker(worker::WorkerArgs),
    /// Sweeps: expand a grid/random/seeds file into queued runs, and follow them.
    Sweep(sweep::SweepArgs),
    /// List the runs in the store: status, steps, EM, F1, runtime, disk use.
    Runs(runs::RunsArgs),
    /// One run in full: record, config, summary, last metrics, files.
    Show(runs::ShowArgs),
    /// Runs side by side: the config keys that differ, EM/F1 and deltas against the paper.
    Compare(compare::CompareArgs),
    /// Questions one run gets right and the other wrong.
    Diff(compare::DiffArgs),
    /// EM and F1 by question type, answer length or passage length, with
    /// intervals; for several runs each bucket's ΔF1 against the first.
    Breakdown(breakdown::BreakdownArgs),
    /// The comparison table with the published rows, as md, csv, tex or json.
    Export(compare::ExportArgs),
    /// A run's metric history, one row per step, as csv or jsonl.
    ExportMetrics(compare::ExportMetricsArgs),
    /// Score another system's predictions file and keep it as a read-only run.
    ImportPredictions(manage::ImportArgs),
    /// Rename, tag, untag or annotate a run (also while it trains).
    Edit(manage::EditArgs),
    /// Delete runs (asks first, unless --yes).
    Rm(manage::RmArgs),
    /// Delete a run's checkpoints except the newest or best N.
    Prune(manage::PruneArgs),
    /// Time our side of a benchmark case (bench/*.py prints it beside the peer's).
    Bench(bench::BenchArgs),
    /// What this binary was built with and what it finds: CPU, GPUs, driver; and what to fix.
    Doctor(doctor::DoctorArgs),
    /// Open the desktop app (also what `squadlab` alone does).
    #[cfg(feature = "gui")]
    Gui(GuiArgs),
}

#[cfg(feature = "gui")]
#[derive(clap::Args, Default)]
struct GuiArgs {
    #[command(flatten)]
    store: args::StoreArgs,
    /// Select these runs on start (ids, prefixes, names, or `latest`).
    #[arg(long, num_args = 1..)]
    select: Vec<String>,
    /// Save screenshots of the live view, results and predictions into DIR, then quit.
    #[arg(long, value_name = "DIR")]
    screenshots: Option<std::path::PathBuf>,
    /// With --screenshots: only this view, saved as FILE (repeat for more);
    /// VIEW is live, results, predictions, playground, new-run or sweeps.
    #[arg(long = "screenshot", value_name = "VIEW=FILE", requires = "screenshots", value_parser = crate::gui::parse_screenshot_view)]
    screenshot_views: Vec<(crate::gui::Tab, String)>,
}

#[cfg(feature = "gui")]
fn open_gui(args: GuiArgs) -> ExitCode {
    let options = crate::gui::AppOptions {
        store: args.store.store,
        select: args.select,
        screenshots: args.screenshots,
        screenshot_views: args.screenshot_views,
    };
    match crate::gui::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A mistyped cap would otherwise be ignored deep in a kernel.
    if let Err(e) = crate::model::kernels::cpu_level::check_env() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let Some(command) = cli.command else {
        #[cfg(feature = "gui")]
        return open_gui(GuiArgs::default());
        #[cfg(not(feature = "gui"))]
        {
            // A headless build: show what the CLI offers.
            use clap::CommandFactory;
            Cli::command().print_help().ok();
            return ExitCode::SUCCESS;
        }
    };
    if let Some(n) = cli.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
        {
            eprintln!("error: cannot set {n} threads: {e}");
            return ExitCode::FAILURE;
        }
    }
    let (json, result) = match command {
        Command::Score(a) => (a.json, score::run_score(&a)),
        Command::Features(a) => (a.json, features::run(&a)),
        Command::Postprocess(a) => (a.json, score::run_postprocess(&a)),
        Command::CheckConfig(a) => (a.json, check_config::run(&a)),
        Command::Predict(a) => (a.json, predict::run(&a)),
        Command::Bench(a) => (a.json, bench::run(&a)),
        Command::Doctor(a) => (a.json, doctor::run(&a)),
        #[cfg(feature = "gui")]
        Command::Gui(a) => return open_gui(a),
        Command::Convert(a) => (a.json, convert::run(&a)),
        Command::Train(a) => (a.json, train::run(&a)),
        Command::Eval(a) => (a.json, eval::run(&a)),
        Command::Resume(a) => (a.json, train::resume(&a)),
        Command::Worker(a) => (a.json, worker::run(&a)),
        Command::Sweep(a) => (a.json, sweep::run(&a)),
        Command::Runs(a) => (a.json, runs::runs(&a)),
        Command::Show(a) => (a.json, runs::show(&a)),
        Command::Compare(a) => (a.json, compare::compare(&a)),
        Command::Diff(a) => (a.json, compare::diff(&a)),
        Command::Breakdown(a) => (a.json, breakdown::breakdown(&a)),
        Command::Export(a) => (a.json, compare::export(&a)),
        Command::ExportMetrics(a) => (a.json, compare::export_metrics(&a)),
        Command::ImportPredictions(a) => (a.json, manage::import_predictions(&a)),
        Command::Edit(a) => (a.json, manage::edit(&a)),
        Command::Rm(a) => (a.json, manage::rm(&a)),
        Command::Prune(a) => (a.json, manage::prune(&a)),
    };
    match result {
        Ok(report) if json => print_report(&report.json.to_string()),
        Ok(report) => print_report(report.text.trim_end()),
        Err(e) => {
            eprintln!("error: {e:#}");
            if json {
                println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            }
            ExitCode::FAILURE
        }
    }
}

/// Prints a command's report. A reader that stopped early (`| head`) is no
/// error, as for any Unix tool; another failure to write (a full disk) is.
fn print_report(text: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    }
}
