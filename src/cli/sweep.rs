//! `squadlab sweep`: start a sweep from its file, draw more points, and see
//! where it stands. Its runs wait in the store's queue for workers.

use super::Report;
use crate::sweep;
use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct SweepArgs {
    #[command(subcommand)]
    command: SweepCommand,
    /// The store holding `runs/` (default: $SQUADLAB_HOME, else experiments/).
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    #[arg(long, global = true)]
    pub json: bool,
}

/// Slurm: write an sbatch job array over the sweep's queued runs.
#[derive(Args)]
struct SlurmArgs {
    /// Write the job-array script (and with --submit, submit it).
    #[arg(long)]
    slurm: bool,
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    #[arg(long, requires = "slurm")]
    account: Option<String>,
    /// The time limit, HH:MM:SS.
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    #[arg(long, requires = "slurm")]
    cpus_per_task: Option<usize>,
    #[arg(long, requires = "slurm")]
    gpus_per_task: Option<usize>,
    /// At most this many tasks at once.
    #[arg(long, requires = "slurm")]
    max_parallel: Option<usize>,
    /// Signal a task this many seconds before its time limit (Slurm may
    /// signal up to a minute earlier).
    #[arg(long, default_value_t = 90, requires = "slurm")]
    signal_seconds: u32,
    /// Submit with sbatch; without it the script is only written.
    #[arg(long, requires = "slurm")]
    submit: bool,
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Expand a sweep file into queued runs (again: only its new points).
    Start {
        file: PathBuf,
        #[command(flatten)]
        slurm: SlurmArgs,
    },
    /// One Slurm array task: train one run of the store, checkpointing and
    /// requeueing itself on SIGUSR1 (what the sbatch script runs).
    Task {
        #[arg(long)]
        run: String,
    },
    /// Draw more random points from the sweep's seeded stream and queue them.
    Add {
        sweep: String,
        #[arg(long)]
        trials: usize,
    },
    /// Runs by status, and the best finished run so far.
    Status { sweep: String },
    /// The sweeps in the store.
    Ls,
}

pub fn run(args: &SweepArgs) -> Result<Report> {
    let store = crate::store::Store::open(args.store.as_deref());
    match &args.command {
        SweepCommand::Start { file, slurm } => {
            let options = sweep::slurm::SlurmOptions {
                partition: slurm.partition.clone(),
                account: slurm.account.clone(),
                time: slurm.time.clone(),
                cpus_per_task: slurm.cpus_per_task,
                gpus_per_task: slurm.gpus_per_task,
                max_parallel: slurm.max_parallel,
                signal_seconds: slurm.signal_seconds,
            };
            // Bad Slurm options are refused before any run is queued.
            if slurm.slurm {
                options.validate()?;
            }
            let e = sweep::start(&store, file)?;
            if !slurm.slurm {
                return expansion(e);
            }
            let array = sweep::slurm_array(&store, &e.sweep, &options, slurm.submit)?;
            let mut report = expansion(e)?;
            report.text = if array.job.is_empty() {
                format!(
                    "{}wrote {} ({} tasks); submit it: sbatch {}\n",
                    report.text.lines().next().unwrap_or("").to_owned() + "\n",
                    array.script.display(),
                    array.runs.len(),
                    array.script.display()
                )
            } else {
                format!(
                    "{}submitted job array {} ({} tasks, script {})\n",
                    report.text.lines().next().unwrap_or("").to_owned() + "\n",
                    array.job,
                    array.runs.len(),
                    array.script.display()
                )
            };
            report.json["slurm"] = serde_json::to_value(&array)?;
            Ok(report)
        }
        SweepCommand::Task { run } => super::sweep_task::run(&store, run),
        SweepCommand::Add { sweep: id, trials } => expansion(sweep::add(&store, id, *trials)?),
        SweepCommand::Status { sweep: id } => {
            let (counts, best) = sweep::status(&store, id)?;
            let slurm = sweep::slurm_states(&store, id)?;
            let total: usize = counts.values().sum();
            let mut text = format!("sweep {id}: {total} run(s)");
            for (status, n) in &counts {
                text += &format!(", {n} {status}");
            }
            text.push('\n');
            if !slurm.is_empty() {
                // The store decides a run's status; Slurm's word is shown beside it.
                let mut by_state: std::collections::BTreeMap<&str, usize> = Default::default();
                for s in slurm.values() {
                    *by_state.entry(s.as_str()).or_insert(0) += 1;
                }
                text += &format!("Slurm says: {by_state:?}\n");
            }
            let best_json = best.as_ref().and_then(|e| {
                let r = e.record.as_ref()?;
                text += &format!(
                    "best so far: {} (EM {:.2}, F1 {:.2}) {:?}\n",
                    e.id,
                    r.outcome.exact_match.unwrap_or(f64::NAN),
                    r.outcome.f1.unwrap_or(f64::NAN),
                    r.sweep.as_ref().map(|s| &s.point)
                );
                Some(json!({
                    "run_id": e.id, "exact_match": r.outcome.exact_match, "f1": r.outcome.f1,
                    "point": r.sweep.as_ref().map(|s| &s.point),
                }))
            });
            Ok(Report {
                text,
                json: json!({ "sweep": id, "runs": total, "by_status": counts, "best": best_json, "slurm": slurm }),
            })
        }
        SweepCommand::Ls => {
            let mut text = String::new();
            let mut rows = Vec::new();
            for id in sweep::list(&store)? {
                let runs = sweep::runs(&store, &id)?.len();
                text += &format!("{id}\t{runs} run(s)\n");
                rows.push(json!({ "sweep": id, "runs": runs }));
            }
            if rows.is_empty() {
                text = "no sweeps in this store\n".into();
            }
            Ok(Report {
                text,
                json: json!(rows),
            })
        }
    }
}

fn expansion(e: sweep::Expansion) -> Result<Report> {
    let text = format!(
        "sweep {}: queued {} run(s); {} point(s) already had a run; {} over run_cap\nstart workers: squadlab worker\n",
        e.sweep,
        e.queued.len(),
        e.existing,
        e.over_cap
    );
    Ok(Report {
        text,
        json: serde_json::to_value(&e)?,
    })
}
