//! The run store on disk: one folder per run under `<store>/runs/<run-id>/`,
//! holding its record (`run.ron`), its event log and everything the trainer
//! writes. The CLI and the GUI share it.

mod exclusive;
mod lock;
mod manage;
mod metrics_log;
pub mod queue;
mod record;
mod recorder;
mod scan;
mod stamps;
mod start;
mod tail;

pub use crate::schema::events::EVENTS_FILE;
pub use exclusive::{folder_lock, Held};
pub use lock::{holder, hostname, Holder, LockInfo, RunLock, LOCK_FILE};
pub use manage::{prune_checkpoints, remove_run, Prune};
pub use metrics_log::{read_metrics, step_history, MetricsLog};
pub use record::{
    md5_file, relabel_run, DataFile, Outcome, Relabel, RunKind, RunRecord, RunStatus, SweepTag,
    Versions, RECORD_FILE, RECORD_FORMAT,
};
pub use recorder::RunRecorder;
pub use scan::{disk_use, RunEntry, Shown};
pub use stamps::{parse_rfc3339, rfc3339, utc_stamp};
pub use start::{new_run, plan_resume, ResumePlan};
pub use tail::{read_tail, LogTail};

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

pub const HOME_ENV: &str = "SQUADLAB_HOME";
pub const SUMMARY_FILE: &str = "summary.json";

/// The store: `explicit` if given, else `$SQUADLAB_HOME`, else `experiments/`.
pub fn store_root(explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os(HOME_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("experiments")),
    }
}

pub struct Store {
    pub root: PathBuf,
}

impl Store {
    pub fn open(explicit: Option<&Path>) -> Self {
        Self {
            root: store_root(explicit),
        }
    }

    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// A new run folder with a fresh id (UTC time plus a random suffix),
    /// filled by `fill(id, folder)` (at least its `run.ron`) under a hidden
    /// name and only then renamed into place: a process killed at any moment
    /// leaves either no run or a run with its record, never an empty folder.
    pub fn create_run(
        &self,
        fill: impl FnOnce(&str, &Path) -> Result<()>,
    ) -> Result<(String, PathBuf)> {
        let runs = self.runs_dir();
        std::fs::create_dir_all(&runs)
            .with_context(|| format!("cannot create {}", runs.display()))?;
        // Runs are results, not sources: keep them out of any repository the store is in.
        let ignore = runs.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "*\n").ok();
        }
        self.remove_stale_temporaries();
        for _ in 0..100 {
            let id = new_run_id();
            let (staging, dir) = (runs.join(format!(".new-{id}")), runs.join(&id));
            if dir.exists() {
                continue;
            }
            // create_dir fails if it exists, so two launches never share a folder.
            match std::fs::create_dir(&staging) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", staging.display()))
                }
            }
            let placed = fill(&id, &staging).and_then(|()| {
                std::fs::rename(&staging, &dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                crate::fsutil::sync_dir_only(&runs)
            });
            if let Err(e) = placed {
                // Nothing of a half-made folder is worth keeping.
                std::fs::remove_dir_all(&staging).ok();
                return Err(e);
            }
            return Ok((id, dir));
        }
        bail!("cannot find a free run id in {}", runs.display())
    }

    /// Clears what writers killed mid-write left (`fsutil::TEMP_PREFIX`
    /// files no live process can own) in every run folder and device slot
    /// folder: done whenever the store is opened for writing (a new run, a
    /// worker starting). Returns how many went.
    pub fn remove_stale_temporaries(&self) -> usize {
        // runs/<id>/checkpoints/checkpoint-N/<file>: three folders down.
        crate::fsutil::remove_stale_temporaries(&self.runs_dir(), 3)
            + crate::fsutil::remove_stale_temporaries(&self.root.join("devices"), 1)
    }

    /// A new run folder as `create_run` makes it, locked by this process from
    /// the moment it appears: no worker can take it for a queued or an
    /// interrupted run before this process trains it.
    pub fn create_locked_run(
        &self,
        fill: impl FnOnce(&str, &Path) -> Result<()>,
    ) -> Result<(String, PathBuf, RunLock)> {
        let mut token = 0;
        let (id, dir) = self.create_run(|id, staging| {
            fill(id, staging)?;
            token = RunLock::prepare(staging)?;
            Ok(())
        })?;
        let lock = RunLock::adopt(&dir, token)?;
        Ok((id, dir, lock))
    }

    /// Every run folder, oldest first; damaged ones included, with their reasons.
    pub fn list(&self) -> Result<Vec<RunEntry>> {
        Ok(self.run_dirs()?.iter().map(|d| RunEntry::load(d)).collect())
    }

    /// Every run folder, oldest first.
    pub fn run_dirs(&self) -> Result<Vec<PathBuf>> {
        let runs = self.runs_dir();
        let entries = match std::fs::read_dir(&runs) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", runs.display())),
        };
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        Ok(dirs)
    }

    /// A run folder from what a user typed: a path, an id, a unique id prefix,
    /// a unique name, or `latest`.
    pub fn find(&self, spec: &str) -> Result<PathBuf> {
        let as_path = Path::new(spec);
        if as_path.join(RECORD_FILE).is_file() || as_path.join(EVENTS_FILE).is_file() {
            return Ok(as_path.to_path_buf());
        }
        let runs = self.runs_dir();
        if is_plain_name(spec) && runs.join(spec).is_dir() {
            return Ok(runs.join(spec));
        }
        let all = self.list()?;
        if spec == "latest" {
            return all
                .last()
                .map(|e| e.dir.clone())
                .ok_or_else(|| anyhow!("no runs in {}", runs.display()));
        }
        let mut matches: Vec<&RunEntry> = all.iter().filter(|e| e.id.starts_with(spec)).collect();
        if matches.is_empty() {
            matches = all
                .iter()
                .filter(|e| e.record.as_ref().is_some_and(|r| r.name == spec))
                .collect();
        }
        match matches.as_slice() {
            [one] => Ok(one.dir.clone()),
            [] => bail!(
                "no run {spec:?} in {} (see `squadlab runs`)",
                runs.display()
            ),
            many => bail!(
                "{spec:?} matches {} runs: {}",
                many.len(),
                many.iter()
                    .map(|e| e.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl Store {
    /// As [`Store::find`], but only a folder directly inside this store's
    /// `runs/`: what deleting commands act on, so no spec (`..`, an absolute
    /// path, a link) reaches anything outside the store.
    pub fn find_own(&self, spec: &str) -> Result<PathBuf> {
        let dir = self.find(spec)?;
        let real = |p: &Path| {
            p.canonicalize()
                .with_context(|| format!("cannot resolve {}", p.display()))
        };
        let (run, runs) = (real(&dir)?, real(&self.runs_dir())?);
        if run.parent() != Some(runs.as_path()) {
            bail!(
                "{} is not a run of the store {}; only the store's own runs are deleted here",
                dir.display(),
                runs.display()
            );
        }
        Ok(run)
    }
}

/// A name that stays inside the folder it is joined to: one component, not
/// `.`, `..`, hidden, absolute or with a separator.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && Path::new(name).components().count() == 1
}

/// Makes `dir` ready for a new run, refusing one that already holds a run.
pub fn claim_run_dir(dir: &Path) -> Result<()> {
    if dir.join(EVENTS_FILE).exists() || dir.join(RECORD_FILE).exists() {
        bail!(
            "{} already holds a run; choose another --out, or continue it with `squadlab resume {}`",
            dir.display(),
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// `YYYYMMDD-HHMMSS-xxxx`: sortable by time, unique by a random suffix.
pub fn new_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!(
        "{}-{:04x}",
        utc_stamp(std::time::SystemTime::now()),
        h.finish() & 0xffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_utc_time_and_a_random_suffix() {
        let id = new_run_id();
        assert_eq!(id.len(), "20261128-170512-abcd".len(), "{id}");
        assert_ne!(id, new_run_id(), "the suffix is random");
    }
}
