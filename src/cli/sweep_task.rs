//! `squadlab sweep task --run ID`: one Slurm array task. It trains the run
//! (resuming from its checkpoint after a requeue). On SIGUSR1, which Slurm
//! sends shortly before the time limit, it stops at the next step with a
//! checkpoint, puts the run back in the store's queue and requeues its own
//! array task. It exits non-zero when the run fails, so Slurm's state agrees
//! where it can; the store's status is the one `sweep status` trusts.

use super::train::{cancel_current_run, launch};
use super::Report;
use crate::store::queue::{claim, requeue};
use crate::store::{plan_resume, RunRecord, RunStatus, Store};
use crate::sweep::slurm::requeue_self;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Relays SIGUSR1 to the run, returning whether it came: the signal sets a flag (signal-hook's handler
/// does nothing else, as a handler may not), and a thread turns the flag
/// into a cancel, retrying until a run is there.
fn relay_usr1() -> Result<Arc<AtomicBool>> {
    let signalled = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&signalled))
        .context("cannot install the SIGUSR1 handler")?;
    // A signal that reached the batch shell before this handler was in.
    let flag = std::env::var_os(crate::sweep::slurm::USR1_FLAG_ENV);
    if flag.is_some_and(|f| std::path::Path::new(&f).exists()) {
        signalled.store(true, Ordering::SeqCst);
    }
    let seen = Arc::clone(&signalled);
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        if seen.load(Ordering::SeqCst) {
            eprintln!("SIGUSR1: checkpointing at the next step, then requeueing");
            while !cancel_current_run() {
                std::thread::sleep(Duration::from_millis(100));
            }
            return;
        }
    });
    Ok(signalled)
}

pub fn run(store: &Store, run: &str) -> Result<Report> {
    let signalled = relay_usr1()?;
    let dir = store.find(run)?;
    let Some(claimed) = claim(&dir)? else {
        let status = RunRecord::load(&dir)?.status;
        if status == RunStatus::Finished {
            return Ok(Report {
                text: format!("run {run} already finished\n"),
                json: json!({ "run_id": run, "status": "finished" }),
            });
        }
        bail!("run {run} is {} and not claimable", status.as_str());
    };
    let plan = plan_resume(&dir)?;
    let outcome = launch(
        &plan.dir,
        plan.record,
        plan.config,
        plan.checkpoint,
        claimed,
    );
    let status = RunRecord::load(&dir)?.status;
    if signalled.load(Ordering::SeqCst) && status == RunStatus::Cancelled {
        requeue(&dir)?;
        requeue_self()?;
        return Ok(Report {
            text: format!("run {run}: checkpointed at the time limit and requeued\n"),
            json: json!({ "run_id": run, "status": "requeued" }),
        });
    }
    outcome
}
