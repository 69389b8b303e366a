//! The queue the store holds: a run folder marked queued, with no claim and
//! no live lock, is waiting for any process to train it (a worker, the app).
//!
//! A process takes a run by creating `run.claim` exclusively (one creator
//! wins, on one host or on shared storage), then takes the run's lock. A
//! claim whose writer is gone (its process dead on this host, or older than
//! the lock's staleness with no live lock behind it) is taken over through a
//! second exclusive file, so two processes never both decide to replace it.
//!
//! One run trains per device per host, across the app and every worker: a
//! `DeviceSlot` is the same kind of exclusive file, under
//! `<store>/devices/<host>/<device>.slot`.

use super::lock::{holder, hostname, Holder, LockInfo};
use super::record::{RunRecord, RunStatus};
use super::scan::{RunEntry, Shown};
use anyhow::{Context, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub const CLAIM_FILE: &str = "run.claim";
/// As the lock's: a claim this old with no live lock behind it is abandoned.
const STALE_AFTER_SECS: f64 = 60.0;

/// An exclusive file naming its writer, removed on drop.
pub struct Held {
    path: PathBuf,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn read_info(path: &Path) -> Option<LockInfo> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Creates `path` exclusively with this process's pid and host; `Ok(None)`
/// when another process already holds it.
fn create_exclusive(path: &Path) -> Result<Option<Held>> {
    let mut file = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    let info = LockInfo {
        pid: std::process::id(),
        host: hostname(),
        heartbeat: now(),
    };
    file.write_all(&serde_json::to_vec(&info)?)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(Held {
        path: path.to_path_buf(),
    }))
}

/// Whether the writer of an exclusive file is gone: its process is dead on
/// this host, or the file is old and `backed` (a live lock it led to) is false.
fn writer_gone(info: Option<&LockInfo>, backed: bool) -> bool {
    let Some(info) = info else {
        return true; // unreadable: a writer died mid-write
    };
    if info.host == hostname() && !super::lock::pid_alive(info.pid) {
        return true;
    }
    !backed && now() - info.heartbeat > STALE_AFTER_SECS
}

/// Takes `path`, replacing it when `stale` says its writer is gone. The
/// replacement goes through `path.takeover`, itself exclusive, so of two
/// processes that both find the file stale only one replaces it.
fn take(path: &Path, stale: impl Fn(Option<&LockInfo>) -> bool) -> Result<Option<Held>> {
    if let Some(held) = create_exclusive(path)? {
        return Ok(Some(held));
    }
    if !stale(read_info(path).as_ref()) {
        return Ok(None);
    }
    let takeover = path.with_extension("takeover");
    let Some(_turn) = take_turn(&takeover)? else {
        return Ok(None);
    };
    // Checked again under the takeover: the file may have changed hands.
    if path.exists() && !stale(read_info(path).as_ref()) {
        return Ok(None);
    }
    let _ = std::fs::remove_file(path);
    create_exclusive(path)
}

/// The takeover file, itself replaced when its writer is gone.
fn take_turn(path: &Path) -> Result<Option<Held>> {
    if let Some(held) = create_exclusive(path)? {
        return Ok(Some(held));
    }
    if writer_gone(read_info(path).as_ref(), false) {
        let _ = std::fs::remove_file(path);
        return create_exclusive(path);
    }
    Ok(None)
}

/// Whether the run in `dir` has a claim whose writer is alive.
pub fn is_claimed(dir: &Path) -> bool {
    let path = dir.join(CLAIM_FILE);
    path.exists() && !claim_stale(dir, read_info(&path).as_ref())
}

fn claim_stale(dir: &Path, info: Option<&LockInfo>) -> bool {
    let locked = matches!(holder(dir), Holder::Alive(_));
    writer_gone(info, locked)
}

/// A queued run no process has claimed: any worker may take it.
pub fn is_claimable(entry: &RunEntry) -> bool {
    entry.shown == Shown::Is(RunStatus::Queued) && !is_claimed(&entry.dir)
}

/// Claims the queued run in `dir` for this process; `Ok(None)` when another
/// process has it. Hold the claim until the run's lock is released.
pub fn claim(dir: &Path) -> Result<Option<Held>> {
    let held = take(&dir.join(CLAIM_FILE), |info| claim_stale(dir, info))?;
    // Claimed: it must still be queued (it may have started and ended
    // between the listing and the claim).
    if held.is_some() {
        let record = RunRecord::load(dir)?;
        if record.status != RunStatus::Queued {
            return Ok(None);
        }
    }
    Ok(held)
}

/// Puts a run back in the queue (a worker stopped mid-run, with a
/// checkpoint): the next claimer resumes it through `plan_resume`.
pub fn requeue(dir: &Path) -> Result<()> {
    let mut record = RunRecord::load(dir)?;
    record.status = RunStatus::Queued;
    record.save(dir)
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
    }
    // Only processes on this host take its slots, so a dead pid is the rule.
    take(&path, |info| {
        info.is_none_or(|i| i.host == hostname() && !super::lock::pid_alive(i.pid))
    })
}
