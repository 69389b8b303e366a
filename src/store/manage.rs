//! The only ways anything in the store is deleted: `rm` of a whole run and
//! `prune` of checkpoints, both on a user's explicit request.

use super::lock::{holder, Holder};
use super::record::{RunKind, RunRecord, RunStatus};
use crate::train::checkpoint::{list_checkpoints, load_state};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Refuses while a live process writes the run.
fn ensure_idle(dir: &Path) -> Result<()> {
    if let Holder::Alive(info) = holder(dir) {
        bail!(
            "{} is being written by process {} on {}; cancel it first",
            dir.display(),
            info.pid,
            info.host
        );
    }
    Ok(())
}

/// Deletes a run folder. It is first renamed to a hidden name, so a listing
/// never sees it half deleted.
pub fn remove_run(dir: &Path) -> Result<()> {
    ensure_idle(dir)?;
    let trash = crate::fsutil::hide_for_deletion(dir)
        .with_context(|| format!("cannot delete {}", dir.display()))?;
    std::fs::remove_dir_all(&trash).with_context(|| {
        format!(
            "{} was hidden but not fully deleted; remove {} by hand",
            dir.display(),
            trash.display()
        )
    })
}

/// Which checkpoints `prune` keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prune {
    KeepLast(usize),
    /// The N with the lowest mean training loss over their last `BEST_WINDOW` steps.
    KeepBest(usize),
}

/// Steps of training loss that rank a checkpoint for `--keep-best`.
pub const BEST_WINDOW: usize = 50;

/// Deletes the checkpoints `rule` does not keep; returns the deleted ones.
/// An unfinished run always keeps its newest checkpoint, which resume needs.
pub fn prune_checkpoints(dir: &Path, rule: Prune) -> Result<Vec<(u64, PathBuf)>> {
    ensure_idle(dir)?;
    let record = RunRecord::load(dir)?;
    if let RunKind::Imported { .. } = record.kind {
        bail!(
            "{} holds imported predictions, not checkpoints",
            dir.display()
        );
    }
    let all = list_checkpoints(dir);
    let mut ranked: Vec<(f64, u64, PathBuf)> = Vec::new();
    for (step, path) in &all {
        let score = match rule {
            Prune::KeepLast(_) => -(*step as f64),
            Prune::KeepBest(_) => recent_loss(path)?,
        };
        ranked.push((score, *step, path.clone()));
    }
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
    let keep = match rule {
        Prune::KeepLast(n) | Prune::KeepBest(n) => n,
    };
    let newest = all.last().map(|(s, _)| *s);
    let mut deleted = Vec::new();
    for (_, step, path) in ranked.into_iter().skip(keep) {
        if record.status != RunStatus::Finished && Some(step) == newest {
            continue;
        }
        crate::fsutil::remove_dir_hidden_first(&path)
            .with_context(|| format!("cannot delete {}", path.display()))?;
        deleted.push((step, path));
    }
    deleted.sort();
    Ok(deleted)
}

/// The checkpoint's mean training loss over its last `BEST_WINDOW` steps.
fn recent_loss(checkpoint: &Path) -> Result<f64> {
    let state = load_state(checkpoint)?;
    let recent: Vec<f64> = state
        .step_history
        .iter()
        .rev()
        .take(BEST_WINDOW)
        .map(|s| s.loss)
        .collect();
    if recent.is_empty() {
        bail!(
            "{}: no steps in its history to rank it by",
            checkpoint.display()
        );
    }
    Ok(recent.iter().sum::<f64>() / recent.len() as f64)
}
