//! The queue the store holds: a run folder marked queued and not locked is
//! waiting for any process to train it (a worker, the app). So is a run
//! whose last holder died mid-run (interrupted): the next taker resumes it.
//!
//! A process takes a run by taking its lock (`RunLock`, `store::exclusive`):
//! one taker wins, on one host or on shared storage, and a dead holder's
//! lock is taken over by exactly one process.
//!
//! One run trains per device per host, across the app, every worker and the
//! CLI's train and resume: a device slot is the same kind of exclusive file,
//! under `<store>/devices/<host>/<device>.slot`.

use super::exclusive;
pub use super::exclusive::Held;
use super::lock::{holder, hostname, pid_alive, Holder, RunLock};
use super::record::{RunRecord, RunStatus};
use super::scan::{RunEntry, Shown};
use crate::config::Device;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Whether a live process holds the run in `dir`.
pub fn is_claimed(dir: &Path) -> bool {
    matches!(holder(dir), Holder::Alive(_))
}

/// A run any worker may take: queued and not held, or interrupted (marked
/// running or queued, its holder gone).
pub fn is_claimable(entry: &RunEntry) -> bool {
    match entry.shown {
        Shown::Is(RunStatus::Queued) => !is_claimed(&entry.dir),
        Shown::Interrupted => true,
        _ => false,
    }
}

/// Takes the run in `dir` for this process if it is waiting: queued, or
/// interrupted (its dead holder's lock taken over); `Ok(None)` when another
/// process has it or it has started and ended since it was listed. Hold the
/// lock until the run is done: `RunRecorder::open` keeps it.
pub fn claim(dir: &Path) -> Result<Option<RunLock>> {
    let Ok(lock) = RunLock::try_acquire(dir)? else {
        return Ok(None);
    };
    let record = RunRecord::load(dir)?;
    Ok(record.status.is_active().then_some(lock))
}

/// Puts a run back in the queue (a worker stopped mid-run, with a
/// checkpoint): the next claimer resumes it through `plan_resume`.
pub fn requeue(dir: &Path) -> Result<()> {
    RunRecord::update(dir, |record| record.status = RunStatus::Queued).map(|_| ())
}

/// The slot name of the device a run with this config trains on: `auto` is
/// the first CUDA device in a CUDA build, else the CPU.
pub fn device_key(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        Device::Auto if crate::model::CUDA_BUILT => "cuda:0".into(),
        Device::Auto => "cpu".into(),
    }
}

/// The device a run trains on, as a slot name: `cpu`, `cuda:0`.
pub fn slot_path(store_root: &Path, device: &str) -> PathBuf {
    store_root
        .join("devices")
        .join(hostname())
        .join(format!("{}.slot", device.replace(':', "-")))
}

/// The one training run of `device` on this host; `Ok(None)` while another
/// process trains there.
pub fn take_device(store_root: &Path, device: &str) -> Result<Option<Held>> {
    let path = slot_path(store_root, device);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        crate::fsutil::remove_stale_temporaries(dir, 0);
    }
    // Only processes on this host take its slots, so a dead pid is the rule.
    let taken = exclusive::take(&path, |info| {
        info.is_none_or(|i| i.host == hostname() && !pid_alive(i.pid))
    })?;
    Ok(taken.ok())
}

/// Who holds a device slot, if a live process does.
pub fn device_holder(store_root: &Path, device: &str) -> Option<exclusive::LockInfo> {
    let info = exclusive::read_info(&slot_path(store_root, device))?;
    (info.host == hostname() && pid_alive(info.pid)).then_some(info)
}
