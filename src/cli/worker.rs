//! `squadlab worker`: trains the store's queued runs on one device, one after
//! another. Several workers (and the app) may share a store, here or on
//! shared storage: each run is claimed by exactly one of them, and one run
//! trains per device per host (`store::queue`). Ctrl-C stops the current run
//! at the next step with a checkpoint and puts it back in the queue, where
//! the next worker resumes it.

use super::args::StoreArgs;
use super::train::{ctrl_c_pressed, launch};
use super::Report;
use crate::config::Device;
use crate::store::queue::{claim, is_claimable, requeue, take_device};
use crate::store::{plan_resume, RunEntry, RunRecord, RunStatus, Store};
use anyhow::{anyhow, Result};
use clap::Args;
use serde_json::json;
use std::time::Duration;

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
    let mut ran = Vec::new();
    let mut requeued = None;
    while !ctrl_c_pressed() {
        if waiting(&store, device)?.is_empty() {
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
        let Some((entry, claimed)) = waiting(&store, device)?
            .into_iter()
            .find_map(|e| claim(&e.dir).ok().flatten().map(|c| (e, c)))
        else {
            continue;
        };
        let mut plan = plan_resume(&entry.dir)?;
        plan.config.device = device;
        eprintln!(
            "worker {key}: run {}{}",
            entry.id,
            plan.checkpoint
                .as_ref()
                .map_or(String::new(), |c| format!(" from {}", c.display()))
        );
        let outcome = launch(&plan.dir, plan.record, plan.config, plan.checkpoint);
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
        drop(claimed);
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

/// The claimable runs this worker's device may train, oldest first.
fn waiting(store: &Store, device: Device) -> Result<Vec<RunEntry>> {
    let mut runs: Vec<RunEntry> = store
        .list()?
        .into_iter()
        .filter(|e| {
            is_claimable(e)
                && e.record
                    .as_ref()
                    .and_then(|r| r.config.as_ref())
                    .is_some_and(|c| c.device == Device::Auto || c.device == device)
        })
        .collect();
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(runs)
}
