//! Starting and resuming runs: the rules the CLI and the GUI share, so both
//! refuse the same things with the same words.

use super::record::{RunKind, RunRecord, RunStatus};
use super::scan::{RunEntry, Shown};
use super::Store;
use crate::config::RunConfig;
use crate::schema::checkpoint::{list_checkpoints, load_state};
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
    let record = |id: &str| RunRecord {
        id: id.to_string(),
        name: config.name.clone(),
        tags: tags.to_vec(),
        notes: notes.to_string(),
        status: RunStatus::Queued,
        config: Some(config.clone()),
        ..RunRecord::default()
    };
    let (id, dir) = store.create_run(|id, dir| record(id).save(dir))?;
    Ok((dir, record(&id)))
}

/// What continuing an unfinished run needs.
pub struct ResumePlan {
    pub dir: PathBuf,
    pub record: RunRecord,
    pub config: RunConfig,
    /// The newest whole checkpoint; none trains again from step 0.
    pub checkpoint: Option<PathBuf>,
    /// Newer checkpoints passed over, each with why it cannot be read.
    pub unreadable: Vec<String>,
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
        // Queued in the store with no lock: the caller has claimed it.
        Shown::Is(RunStatus::Queued) if super::holder(dir) == super::Holder::None => {}
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
    // A damaged newest checkpoint (a disk fault, a hand edit) costs only the
    // steps since the one before it.
    let mut unreadable = Vec::new();
    let mut checkpoint = None;
    for (_, path) in list_checkpoints(dir).into_iter().rev() {
        match load_state(&path) {
            Ok(_) => {
                checkpoint = Some(path);
                break;
            }
            Err(e) => unreadable.push(format!("{e:#}")),
        }
    }
    Ok(ResumePlan {
        dir: dir.to_path_buf(),
        record,
        config,
        checkpoint,
        unreadable,
    })
}
