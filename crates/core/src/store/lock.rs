//! The lock a live run holds: `run.lock` with the writer's pid, host and a
//! heartbeat refreshed every few seconds. A run marked running whose lock is
//! gone, whose process is dead, or whose heartbeat stopped was interrupted.

use crate::fsutil::write_atomically;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const LOCK_FILE: &str = "run.lock";
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A heartbeat this old means the writer is gone (or frozen) even if its pid
/// cannot be checked, e.g. from another host sharing the store.
const STALE_AFTER_SECS: f64 = 60.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub heartbeat: f64,
}

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
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Holder::None;
    };
    let Ok(info) = serde_json::from_str::<LockInfo>(&text) else {
        return Holder::Gone(format!("{} is unreadable", path.display()));
    };
    let age = now() - info.heartbeat;
    if info.host == hostname() && !pid_alive(info.pid) {
        return Holder::Gone(format!(
            "process {} is gone (last heartbeat {age:.0} s ago)",
            info.pid
        ));
    }
    if age > STALE_AFTER_SECS {
        return Holder::Gone(format!(
            "no heartbeat from process {} on {} for {age:.0} s",
            info.pid, info.host
        ));
    }
    Holder::Alive(info)
}

/// Held while a process writes a run; the heartbeat stops and the file goes on drop.
pub struct RunLock {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    beat: Option<std::thread::JoinHandle<()>>,
}

impl RunLock {
    /// Takes the run's lock, refusing while another live process holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        if let Some(info) = info_of(&path) {
            let ours = info.pid == std::process::id() && info.host == hostname();
            match holder(dir) {
                Holder::Alive(_) if !ours => bail!(
                    "{} is being written by process {} on {}; stop it first",
                    dir.display(),
                    info.pid,
                    info.host
                ),
                // A frozen writer could wake up and write again.
                Holder::Gone(_) if !ours && info.host == hostname() && pid_alive(info.pid) => {
                    bail!(
                        "{} is held by process {}, which still exists but stopped its heartbeat; \
                         stop it first (or delete {LOCK_FILE} if that process is not squadlab)",
                        dir.display(),
                        info.pid
                    )
                }
                _ => {}
            }
        }
        write_heartbeat(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let beat = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::Builder::new()
                .name("squadlab-heartbeat".into())
                .spawn(move || {
                    while !sleep_unless(&stop, HEARTBEAT_EVERY) {
                        let _ = write_heartbeat(&path);
                    }
                })
                .context("cannot start the heartbeat thread")?
        };
        Ok(Self {
            path,
            stop,
            beat: Some(beat),
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(beat) = self.beat.take() {
            let _ = beat.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn info_of(path: &Path) -> Option<LockInfo> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn write_heartbeat(path: &Path) -> Result<()> {
    let info = LockInfo {
        pid: std::process::id(),
        host: hostname(),
        heartbeat: now(),
    };
    write_atomically(path, &serde_json::to_vec(&info)?)
}

/// Sleeps up to `total`, waking early to return true once `stop` is set.
fn sleep_unless(stop: &AtomicBool, total: Duration) -> bool {
    let tick = Duration::from_millis(100);
    let mut slept = Duration::ZERO;
    while slept < total {
        if stop.load(Ordering::SeqCst) {
            return true;
        }
        std::thread::sleep(tick);
        slept += tick;
    }
    stop.load(Ordering::SeqCst)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

pub fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; the name is NUL-terminated or truncated.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).into_owned();
        }
    }
    std::env::var("COMPUTERNAME").unwrap_or_default()
}

/// Whether a process with this pid exists (and is not a zombie) on this host.
pub(crate) fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists.
        let exists = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
        if !exists {
            return false;
        }
        // A killed child not yet reaped by its parent still answers signal 0.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
            Err(_) => true,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true // only the heartbeat can tell
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
            heartbeat: now(),
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
            heartbeat: now() - 600.0,
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
}
