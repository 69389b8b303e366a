//! Reading run folders back, whatever state a crash or a user left them in:
//! a listing never fails on one bad run, it shows the run with its reasons.

use super::lock::{holder, Holder};
use super::record::{RunKind, RunRecord, RunStatus};
use super::tail::read_tail;
use crate::eval::{PREDICTIONS_FILE, RESULTS_FILE};
use crate::schema::StepLog;
use std::path::{Path, PathBuf};

/// The status a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    Is(RunStatus),
    /// Marked running or queued, but no live process holds its lock.
    Interrupted,
    /// Unreadable: no usable `run.ron`.
    Damaged,
}

impl Shown {
    pub fn as_str(self) -> &'static str {
        match self {
            Shown::Is(s) => s.as_str(),
            Shown::Interrupted => "interrupted",
            Shown::Damaged => "damaged",
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunEntry {
    /// The folder's name.
    pub id: String,
    pub dir: PathBuf,
    pub record: Option<RunRecord>,
    pub shown: Shown,
    /// Why it is damaged or interrupted, and anything else found wrong.
    pub problems: Vec<String>,
    pub last_step: Option<StepLog>,
}

impl RunEntry {
    /// The run for a listing: its record and the end of its event log, read
    /// back from the end (see [`read_tail`]), so listing a store of long runs
    /// stays fast. [`read_metrics`] reads the whole history.
    pub fn load(dir: &Path) -> Self {
        let mut entry = Self::load_record(dir);
        let tail = read_tail(dir);
        entry.problems.extend(tail.problems);
        entry.last_step = tail.last_step;
        entry
    }

    /// The run without its event log, for a caller that follows the log itself.
    pub fn load_record(dir: &Path) -> Self {
        let id = dir
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut problems = Vec::new();
        let record = match RunRecord::load(dir) {
            Ok(r) => Some(r),
            Err(e) => {
                problems.insert(0, format!("{e:#}"));
                None
            }
        };
        let shown = match &record {
            None => Shown::Damaged,
            Some(r) if r.status.is_active() => match holder(dir) {
                Holder::Alive(_) => Shown::Is(r.status),
                Holder::Gone(why) => {
                    problems.insert(0, why);
                    Shown::Interrupted
                }
                // Queued in the store with no lock: waiting for a worker.
                Holder::None if r.status == RunStatus::Queued => Shown::Is(r.status),
                Holder::None => {
                    problems.insert(0, "no process holds the run's lock".into());
                    Shown::Interrupted
                }
            },
            Some(r) => Shown::Is(r.status),
        };
        if let Some(r) = &record {
            problems.extend(missing_outputs(dir, r));
        }
        Self {
            id,
            dir: dir.to_path_buf(),
            record,
            shown,
            problems,
            last_step: None,
        }
    }

    pub fn name(&self) -> &str {
        self.record.as_ref().map_or("", |r| r.name.as_str())
    }

    /// Whether the run can be read for comparison (a record and scores).
    pub fn is_scored(&self) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.outcome.exact_match.is_some() && r.outcome.f1.is_some())
    }
}

/// Files a finished run must have; their absence is reported, not fatal.
fn missing_outputs(dir: &Path, record: &RunRecord) -> Vec<String> {
    if record.status != RunStatus::Finished {
        return Vec::new();
    }
    let mut needed = vec![RESULTS_FILE, PREDICTIONS_FILE];
    if record.kind == RunKind::Trained {
        needed.push("model");
    }
    needed
        .into_iter()
        .filter(|f| !dir.join(f).exists())
        .map(|f| format!("{f} is missing"))
        .collect()
}

/// Bytes under `path`, links not followed.
pub fn disk_use(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| disk_use(&e.path())).sum())
        .unwrap_or(0)
}
