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

#[derive(Subcommand)]
enum SweepCommand {
    /// Expand a sweep file into queued runs (again: only its new points).
    Start { file: PathBuf },
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
        SweepCommand::Start { file } => expansion(sweep::start(&store, file)?),
        SweepCommand::Add { sweep: id, trials } => expansion(sweep::add(&store, id, *trials)?),
        SweepCommand::Status { sweep: id } => {
            let (counts, best) = sweep::status(&store, id)?;
            let total: usize = counts.values().sum();
            let mut text = format!("sweep {id}: {total} run(s)");
            for (status, n) in &counts {
                text += &format!(", {n} {status}");
            }
            text.push('\n');
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
                json: json!({ "sweep": id, "runs": total, "by_status": counts, "best": best_json }),
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
