//! `squadlab worker`: trains the store's queued runs on one device, one after
//! another, and takes up interrupted ones whose holder died. Several workers (and the app) may share a store, here or on
//! shared storage: each run is claimed by exactly one of them, and one run
//! trains per device per host (`store::queue`). Ctrl-C stops the current run
//! at the next step with a checkpoint and puts it back in the queue, where
//! the next worker resumes it.

use super::args::StoreArgs;
use super::train::{ctrl_c_pressed, launch};
use super::Report;
use crate::config::Device;
use crate::store::queue::{claim, is_claimable, requeue, take_device};
use crate::store::{plan_resume, ResumePlan, RunEntry, RunLock, RunRecord, RunStatus, Store};
use anyhow::{anyhow, Result};
use clap::Args;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The device this worker trains on: cpu or cuda:N [default: cuda:0 in a
    /// CUDA build, else cpu]. It takes runs configured for this device or
    /// for `auto`.
    #[arg(long)]
    device: Option<String>,
    /// Wait for more runs when the queue is empty, instead of stopping.
    #[arg(long)]
    follow: bool,
    #[arg(long)]
    pub json: bool,
}

/// How often an idle worker looks at the queue again.
const POLL: Duration = Duration::from_millis(500);

pub fn run(args: &WorkerArgs) -> Result<Report> {
    let store = args.store.open();
    let device = match &args.device {
        Some(d) => d.parse::<Device>().map_err(|e| anyhow!("--device: {e}"))?,
        None if crate::model::CUDA_BUILT => Device::Cuda(0),
        None => Device::Cpu,
    };
    let key = match device {
        Device::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".to_string(),
    };
    store.remove_stale_temporaries();
    super::train::handle_ctrl_c();
    let mut ran = Vec::new();
    let mut requeued = None;
    let mut skipped = Skipped::default();
    while !ctrl_c_pressed() {
        if waiting(&store, device, &skipped)?.is_empty() {
            // Without --follow, a run skipped once is not waited for.
            if !args.follow {
                break;
            }
            std::thread::sleep(POLL);
            continue;
        }
        // The device first, then a run: a worker waiting for its device
        // holds no claim another worker could use.
        let Some(slot) = take_device(&store.root, &key)? else {
            std::thread::sleep(POLL);
            continue;
        };
        let Some((entry, lock, plan)) = take_one(&store, device, &key, &mut skipped)? else {
            drop(slot);
            std::thread::sleep(POLL);
            continue;
        };
        let mut plan = plan;
        plan.config.device = device;
        eprintln!(
            "worker {key}: run {}{}",
            entry.id,
            plan.checkpoint
                .as_ref()
                .map_or(String::new(), |c| format!(" from {}", c.display()))
        );
        let outcome = launch(&plan.dir, plan.record, plan.config, plan.checkpoint, lock);
        let status = RunRecord::load(&entry.dir).map(|r| r.status).ok();
        if ctrl_c_pressed() && status == Some(RunStatus::Cancelled) {
            requeue(&entry.dir)?;
            requeued = Some(entry.id.clone());
        }
        if let Err(e) = &outcome {
            eprintln!("worker {key}: run {} ended: {e:#}", entry.id);
        }
        ran.push(json!({
            "run_id": entry.id,
            "status": status.map(RunStatus::as_str),
            "error": outcome.err().map(|e| format!("{e:#}")),
        }));
        drop(slot);
    }
    let text = format!(
        "worker {key}: {} run(s){}\n",
        ran.len(),
        requeued
            .as_ref()
            .map_or(String::new(), |id| format!("; {id} back in the queue"))
    );
    Ok(Report {
        text,
        json: json!({ "device": key, "runs": ran, "requeued": requeued }),
    })
}

/// Takes the first waiting run it can: claimed, and planned for resuming.
/// A run that cannot be claimed or planned (a read-only folder, a broken
/// record) is reported once with its reason and skipped for a while, longer
/// each time; it never stops the worker.
fn take_one(
    store: &Store,
    device: Device,
    key: &str,
    skipped: &mut Skipped,
) -> Result<Option<(RunEntry, RunLock, ResumePlan)>> {
    for entry in waiting(store, device, skipped)? {
        let lock = match claim(&entry.dir) {
            Ok(Some(lock)) => lock,
            Ok(None) => continue, // another process has it
            Err(e) => {
                skipped.failed(&entry.id, key, &format!("cannot claim it: {e:#}"));
                continue;
            }
        };
        match plan_resume(&entry.dir) {
            Ok(plan) => {
                skipped.cleared(&entry.id);
                return Ok(Some((entry, lock, plan)));
            }
            Err(e) => skipped.failed(&entry.id, key, &format!("cannot resume it: {e:#}")),
        }
    }
    Ok(None)
}

/// Runs this worker could not take, each with when to try again.
#[derive(Default)]
struct Skipped {
    until: HashMap<String, (Instant, Duration)>,
}

impl Skipped {
    const FIRST: Duration = Duration::from_secs(2);
    const LONGEST: Duration = Duration::from_secs(120);

    fn failed(&mut self, id: &str, key: &str, why: &str) {
        let backoff = match self.until.get(id) {
            Some((_, last)) => (*last * 2).min(Self::LONGEST),
            None => {
                // Said once per run; the retries stay quiet.
                eprintln!("worker {key}: skipping run {id}: {why}");
                Self::FIRST
            }
        };
        self.until
            .insert(id.to_string(), (Instant::now() + backoff, backoff));
    }

    fn cleared(&mut self, id: &str) {
        self.until.remove(id);
    }

    fn skips(&self, id: &str) -> bool {
        self.until.get(id).is_some_and(|(t, _)| Instant::now() < *t)
    }
}

/// The claimable runs (queued, or interrupted with their holder dead) this
/// worker's device may train, oldest first, less those it skips for now.
fn waiting(store: &Store, device: Device, skipped: &Skipped) -> Result<Vec<RunEntry>> {
    let mut runs: Vec<RunEntry> = store
        .list()?
        .into_iter()
        .filter(|e| {
            is_claimable(e)
                && !skipped.skips(&e.id)
                && e.record
                    .as_ref()
                    .and_then(|r| r.config.as_ref())
                    .is_some_and(|c| c.device == Device::Auto || c.device == device)
        })
        .collect();
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(runs)
}
