//! The one way a process takes something in the store for itself: a run
//! (`run.lock`) or a device (`devices/<host>/<device>.slot`). The file names
//! its holder (pid, host, since when, a heartbeat, a token of its own) and
//! exists while the holder lives:
//!
//! - **Taken whole.** The holder's name is written to a temporary file, then
//!   hard-linked to the real name, which fails if the name exists: of many
//!   takers exactly one wins, on one host or on shared storage, and no one
//!   ever sees the file empty or half written.
//! - **Taken over once.** A file whose holder is gone (the caller's rule) is
//!   replaced under the folder's lock (`folder_lock`), which also covers every
//!   heartbeat and release. So of two processes that find it stale one
//!   replaces it, and a holder that was taken over, waking up, finds another
//!   token in the file and never rewrites or deletes it.
//! - **Alive while held.** A thread refreshes the heartbeat every few
//!   seconds from the moment the file is made until it is released.

use crate::faults;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often a holder refreshes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// Who holds an exclusive file, as its holder wrote it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    pub host: String,
    /// Seconds since the Unix epoch of the last heartbeat.
    pub heartbeat: f64,
    /// When the holder took it (seconds since the Unix epoch); 0 in files
    /// from before squadlab recorded it.
    #[serde(default)]
    pub since: f64,
    /// The holder's own mark, so it can tell its file from a successor's.
    #[serde(default)]
    pub token: u64,
}

impl LockInfo {
    fn new(token: u64) -> Self {
        let now = now();
        Self {
            pid: std::process::id(),
            host: super::lock::hostname(),
            heartbeat: now,
            since: now,
            token,
        }
    }

    /// "process 123 on host since 2026-12-02T17:05:12Z".
    pub fn describe(&self) -> String {
        let since = UNIX_EPOCH + Duration::from_secs_f64(self.since.max(0.0));
        format!(
            "process {} on {} since {}",
            self.pid,
            self.host,
            if self.since > 0.0 {
                super::stamps::rfc3339(since)
            } else {
                "an unknown time".into()
            }
        )
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The holder named in `path`; `None` when it is missing or unreadable.
pub fn read_info(path: &Path) -> Option<LockInfo> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// An exclusive file this process holds: its heartbeat stops and the file
/// goes on drop, unless another process took it over meanwhile.
pub struct Held {
    path: PathBuf,
    token: u64,
    stop: Arc<AtomicBool>,
    beat: Option<std::thread::JoinHandle<()>>,
}

impl Held {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file on disk is still this holder's.
    pub fn still_ours(&self) -> bool {
        read_info(&self.path).is_some_and(|i| i.token == self.token)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(beat) = self.beat.take() {
            let _ = beat.join();
        }
        let (path, token) = (self.path.clone(), self.token);
        let _ = under_folder_lock(&path, || {
            if read_info(&path).is_some_and(|i| i.token == token) {
                let _ = std::fs::remove_file(&path);
            }
            Ok(())
        });
    }
}

/// Takes `path` for this process. `Ok(Err(holder))` when someone whose
/// holder `stale` calls alive has it (`None`: unreadable, and not stale).
pub fn take(
    path: &Path,
    stale: impl Fn(Option<&LockInfo>) -> bool,
) -> Result<std::result::Result<Held, Option<LockInfo>>> {
    let token = fresh_token();
    let info = LockInfo::new(token);
    if !create_whole(path, &info)? {
        let taken_over = under_folder_lock(path, || {
            // Checked again under the folder's lock: it may have changed hands.
            let current = read_info(path);
            if path.exists() && !stale(current.as_ref()) {
                return Ok(Err(current));
            }
            // The window a forced race widens: judged stale, not yet replaced.
            faults::claim_pause();
            let _ = std::fs::remove_file(path);
            Ok(if create_whole(path, &info)? {
                Ok(())
            } else {
                Err(read_info(path))
            })
        })?;
        if let Err(holder) = taken_over {
            return Ok(Err(holder));
        }
    }
    Ok(Ok(start_heartbeat(path, token)?))
}

/// Writes this process's claim at `path` in a folder no other process can
/// see yet (a run folder being made under a hidden name), with no
/// heartbeat; `adopt` it once the folder is in place. Returns its token.
pub fn create_unwatched(path: &Path) -> Result<u64> {
    let token = fresh_token();
    if !create_whole(path, &LockInfo::new(token))? {
        anyhow::bail!("{} exists already", path.display());
    }
    Ok(token)
}

/// Holds the claim `create_unwatched` made (its folder since renamed), with
/// its heartbeat from now on.
pub fn adopt(path: &Path, token: u64) -> Result<Held> {
    if read_info(path).is_none_or(|i| i.token != token) {
        anyhow::bail!("{} is not this process's claim any more", path.display());
    }
    start_heartbeat(path, token)
}

/// Writes `info` to a temporary file and links it to `path`; false when
/// `path` exists already.
fn create_whole(path: &Path, info: &LockInfo) -> Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(&crate::fsutil::temp_prefix())
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "cannot create {}: no temporary file in {}",
                path.display(),
                dir.display()
            )
        })?;
    tmp.write_all(&serde_json::to_vec(info)?)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    // Where the old code created the file empty and wrote it after: a taker
    // paused here shows that no one can see a claim before it is whole.
    faults::claim_pause();
    match std::fs::hard_link(tmp.path(), path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

fn start_heartbeat(path: &Path, token: u64) -> Result<Held> {
    let stop = Arc::new(AtomicBool::new(false));
    let beat = {
        let (path, stop) = (path.to_path_buf(), stop.clone());
        std::thread::Builder::new()
            .name("squadlab-heartbeat".into())
            .spawn(move || {
                while !sleep_unless(&stop, HEARTBEAT_EVERY) {
                    let _ = beat(&path, token);
                }
            })
            .context("cannot start the heartbeat thread")?
    };
    Ok(Held {
        path: path.to_path_buf(),
        token,
        stop,
        beat: Some(beat),
    })
}

/// Refreshes the heartbeat, if the file is still this holder's.
fn beat(path: &Path, token: u64) -> Result<()> {
    under_folder_lock(path, || {
        let Some(mut info) = read_info(path).filter(|i| i.token == token) else {
            return Ok(()); // taken over: the file is another holder's now
        };
        faults::claim_pause();
        info.heartbeat = now();
        crate::fsutil::write_atomically(path, &serde_json::to_vec(&info)?)
    })
}

/// Runs `f` holding the lock of the folder `path` is in (flock on the folder
/// itself): the same lock as every read-merge-write of a run's `run.ron`.
fn under_folder_lock<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let _guard = folder_lock(dir)?;
    f()
}

/// An exclusive advisory lock on `dir`, released when the file drops.
pub fn folder_lock(dir: &Path) -> Result<std::fs::File> {
    let folder = std::fs::File::open(dir)
        .with_context(|| format!("cannot open folder {}", dir.display()))?;
    folder
        .lock()
        .with_context(|| format!("cannot lock folder {}", dir.display()))?;
    Ok(folder)
}

/// A token no other holder has: the time, the pid and a counter, hashed.
fn fresh_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    h.write_u64(now().to_bits());
    h.finish().max(1)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn never_stale(_: Option<&LockInfo>) -> bool {
        false
    }

    #[test]
    fn one_taker_wins_and_the_file_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.slot");
        let held = take(&path, never_stale).unwrap().unwrap();
        let info = read_info(&path).unwrap();
        assert_eq!(info.pid, std::process::id());
        assert!(info.since > 0.0 && info.token != 0);
        let refused = take(&path, never_stale).unwrap().err().flatten().unwrap();
        assert_eq!(refused.token, info.token);
        drop(held);
        assert!(!path.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "no temporary is left");
    }

    #[test]
    fn a_holder_taken_over_never_deletes_its_successors_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.lock");
        let first = take(&path, never_stale).unwrap().unwrap();
        // Judged gone by another process, and replaced.
        let second = take(&path, |_| true).unwrap().unwrap();
        assert!(!first.still_ours() && second.still_ours());
        beat(&path, first.token).unwrap();
        assert_eq!(
            read_info(&path).unwrap().token,
            second.token,
            "the old heartbeat wrote"
        );
        drop(first);
        assert!(
            second.still_ours(),
            "the old holder deleted the new holder's file"
        );
        drop(second);
        assert!(!path.exists());
    }
}
