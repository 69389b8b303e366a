//! Starting and resuming runs: the rules the CLI and the GUI share, so both
//! refuse the same things with the same words.

use super::record::{RunKind, RunRecord, RunStatus};
use super::scan::{RunEntry, Shown};
use super::Store;
use crate::config::RunConfig;
use crate::train::checkpoint::list_checkpoints;
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

/// A validated config in a fresh run folder of `store`, with its queued record.
pub fn new_run(
    store: &Store,
    config: &RunConfig,
    tags: &[String],
    notes: &str,
) -> Result<(PathBuf, RunRecord)> {
    config.validate()?;
    let (id, dir) = store.new_run_dir()?;
    let record = RunRecord {
        id,
        name: config.name.clone(),
        tags: tags.to_vec(),
        notes: notes.to_string(),
        status: RunStatus::Queued,
        config: Some(config.clone()),
        ..RunRecord::default()
    };
    Ok((dir, record))
}

/// What continuing an unfinished run needs.
pub struct ResumePlan {
    pub dir: PathBuf,
    pub record: RunRecord,
    pub config: RunConfig,
    /// The newest checkpoint; none trains again from step 0.
    pub checkpoint: Option<PathBuf>,
}

/// Checks that the run in `dir` can continue (interrupted, cancelled, failed
/// or diverged; not finished, imported, or held by a live process).
pub fn plan_resume(dir: &Path) -> Result<ResumePlan> {
    let entry = RunEntry::load_record(dir);
    let Some(mut record) = entry.record.clone() else {
        bail!(
            "{} is damaged: {}",
            dir.display(),
            entry.problems.join("; ")
        );
    };
    if let RunKind::Imported { .. } = record.kind {
        bail!(
            "{} holds imported predictions; there is nothing to resume",
            entry.id
        );
    }
    match entry.shown {
        Shown::Is(RunStatus::Finished) => bail!("run {} already finished", entry.id),
        Shown::Is(s) if s.is_active() => {
            bail!("run {} is {} in a live process", entry.id, s.as_str())
        }
        _ => {}
    }
    let config = record
        .config
        .clone()
        .ok_or_else(|| anyhow!("{}: run.ron holds no config to resume with", dir.display()))?;
    record.status = RunStatus::Queued;
    Ok(ResumePlan {
        dir: dir.to_path_buf(),
        record,
        config,
        checkpoint: list_checkpoints(dir).pop().map(|(_, path)| path),
    })
}
