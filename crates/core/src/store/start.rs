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

/// Checks that the run in `dir` can continue (queued, interrupted,
/// cancelled, failed or diverged; not finished, imported, or held by another
/// live process).
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
    if entry.shown == Shown::Is(RunStatus::Finished) {
        bail!("run {} already finished", entry.id);
    }
    // The caller takes (or has taken) the run's lock, which is what keeps two
    // processes from training it; this says early who has it.
    if let super::Holder::Alive(info) = super::holder(dir) {
        let ours = info.pid == std::process::id() && info.host == super::hostname();
        if !ours {
            bail!(
                "run {} is {} by {}",
                entry.id,
                record.status.as_str(),
                info.describe()
            );
        }
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
