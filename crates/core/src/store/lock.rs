//! The lock of a run: `run.lock`, the one claim every path that trains a run
//! takes first (train, resume, a worker, a sweep task, the app), through
//! `store::exclusive`. It names the writer (pid, host, since when) and a
//! heartbeat refreshed every few seconds. A run marked running whose lock is
//! gone, whose process is dead, or whose heartbeat stopped was interrupted,
//! and the next taker takes the lock over.

pub use super::exclusive::LockInfo;
use super::exclusive::{self, Held};
pub use crate::host::{hostname, pid_alive};
use anyhow::{bail, Result};
use std::path::Path;

pub const LOCK_FILE: &str = "run.lock";
/// A heartbeat this old means the writer is gone (or frozen) even if its pid
/// cannot be checked, e.g. from another host sharing the store.
const STALE_AFTER_SECS: f64 = 60.0;

/// What the lock of a run folder says about its writer.
#[derive(Clone, Debug, PartialEq)]
pub enum Holder {
    None,
    Alive(LockInfo),
    /// The reason the holder is taken for gone.
    Gone(String),
}

pub fn holder(dir: &Path) -> Holder {
    let path = dir.join(LOCK_FILE);
    if !path.exists() {
        return Holder::None;
    }
    match exclusive::read_info(&path) {
        None => Holder::Gone(format!("{} is unreadable", path.display())),
        Some(info) => match gone_because(&info) {
            Some(why) => Holder::Gone(why),
            None => Holder::Alive(info),
        },
    }
}

/// Why the holder named in a lock is gone; `None` while it lives.
fn gone_because(info: &LockInfo) -> Option<String> {
    let age = exclusive::now() - info.heartbeat;
    if info.host == hostname() && !pid_alive(info.pid) {
        return Some(format!(
            "process {} is gone (last heartbeat {age:.0} s ago)",
            info.pid
        ));
    }
    (age > STALE_AFTER_SECS).then(|| {
        format!(
            "no heartbeat from process {} on {} for {age:.0} s",
            info.pid, info.host
        )
    })
}

/// Whether a lock may be taken over: its holder is gone, and not a process
/// of this host that still exists (a frozen writer could wake up and write).
fn may_take_over(info: Option<&LockInfo>) -> bool {
    match info {
        None => true, // unreadable: not written by squadlab's whole writes
        Some(i) if i.host == hostname() && pid_alive(i.pid) => false,
        Some(i) => gone_because(i).is_some(),
    }
}

/// Held while a process trains or writes a run; the heartbeat stops and the
/// file goes on drop.
pub struct RunLock {
    _held: Held,
}

impl RunLock {
    /// Takes the run's lock, or says who holds it: a live process (named,
    /// with since when), or one of this host that still exists but stopped
    /// its heartbeat.
    pub fn acquire(dir: &Path) -> Result<Self> {
        match Self::try_acquire(dir)? {
            Ok(lock) => Ok(lock),
            Err(Some(info)) if gone_because(&info).is_some() => bail!(
                "{} is held by process {}, which still exists but stopped its heartbeat; \
                 stop it first (or delete {LOCK_FILE} if that process is not squadlab)",
                dir.display(),
                info.pid
            ),
            Err(Some(info)) => bail!(
                "{} is being written by {}; stop it first",
                dir.display(),
                info.describe()
            ),
            Err(None) => bail!("{} is being taken by another process", dir.display()),
        }
    }

    /// Locks a run folder that is being made under a hidden name, so it is
    /// held from the moment it appears; `adopt` it once it is in place.
    pub fn prepare(hidden_dir: &Path) -> Result<u64> {
        exclusive::create_unwatched(&hidden_dir.join(LOCK_FILE))
    }

    /// The lock `prepare` made, in the run's real folder.
    pub fn adopt(dir: &Path, token: u64) -> Result<Self> {
        Ok(Self {
            _held: exclusive::adopt(&dir.join(LOCK_FILE), token)?,
        })
    }

    /// Takes the run's lock; `Ok(Err(holder))` while another process holds it.
    pub fn try_acquire(dir: &Path) -> Result<std::result::Result<Self, Option<LockInfo>>> {
        Ok(exclusive::take(&dir.join(LOCK_FILE), may_take_over)?.map(|held| Self { _held: held }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_alive_while_held_and_gone_after() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()), Holder::None);
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert!(matches!(holder(dir.path()), Holder::Alive(i) if i.pid == std::process::id()));
        drop(lock);
        assert_eq!(holder(dir.path()), Holder::None);

        // A dead pid on this host, or a silent one elsewhere, is gone.
        let dead = LockInfo {
            pid: u32::MAX - 1,
            host: hostname(),
            heartbeat: exclusive::now(),
            since: 0.0,
            token: 1,
        };
        std::fs::write(
            dir.path().join(LOCK_FILE),
            serde_json::to_vec(&dead).unwrap(),
        )
        .unwrap();
        assert!(matches!(holder(dir.path()), Holder::Gone(r) if r.contains("is gone")));
        let silent = LockInfo {
            pid: 1,
            host: "elsewhere".into(),
            heartbeat: exclusive::now() - 600.0,
            since: 0.0,
            token: 2,
        };
        std::fs::write(
            dir.path().join(LOCK_FILE),
            serde_json::to_vec(&silent).unwrap(),
        )
        .unwrap();
        assert!(matches!(holder(dir.path()), Holder::Gone(r) if r.contains("no heartbeat")));
        // A gone holder's lock can be taken over.
        drop(RunLock::acquire(dir.path()).unwrap());
    }

    #[test]
    fn a_second_taker_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let _first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).err().unwrap().to_string();
        let pid = std::process::id();
        assert!(
            err.contains(&format!("process {pid} on {} since 20", hostname())),
            "{err}"
        );
    }
}
