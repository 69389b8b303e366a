//! The only ways anything in the store is deleted: `rm` of a whole run and
//! `prune` of checkpoints, both on a user's explicit request.

use super::lock::{holder, Holder};
use super::record::{RunKind, RunRecord, RunStatus};
use crate::schema::checkpoint::{list_checkpoints, load_run_config, load_state};
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
    /// The N best by the run's in-training evaluation metric when every
    /// checkpoint was evaluated at its step, else the N with the lowest mean
    /// training loss over their last `BEST_WINDOW` steps.
    KeepBest(usize),
}

/// Steps of training loss that rank a checkpoint for `--keep-best` when
/// checkpoints have no evaluation.
pub const BEST_WINDOW: usize = 50;

/// What `prune` did: the checkpoints deleted, and what ranked them.
#[derive(Debug)]
pub struct Pruned {
    pub deleted: Vec<(u64, PathBuf)>,
    /// `"step"`, `"f1"`/`"exact_match"` (in-training evaluation) or `"training loss"`.
    pub ranked_by: String,
    /// Why the training loss ranked them when the run has evaluations.
    pub note: Option<String>,
}

/// Deletes the checkpoints `rule` does not keep. An unfinished run always
/// keeps its newest checkpoint, which resume needs.
pub fn prune_checkpoints(dir: &Path, rule: Prune) -> Result<Pruned> {
    ensure_idle(dir)?;
    let record = RunRecord::load(dir)?;
    if let RunKind::Imported { .. } = record.kind {
        bail!(
            "{} holds imported predictions, not checkpoints",
            dir.display()
        );
    }
    let all = list_checkpoints(dir);
    // Lower scores rank first; equal ones by the tie-break.
    let (scores, ranked_by, note) = match rule {
        Prune::KeepLast(_) => (
            all.iter().map(|(step, _)| -(*step as f64)).collect(),
            "step".into(),
            None,
        ),
        Prune::KeepBest(_) => rank_best(&all)?,
    };
    let evaluated = ranked_by.starts_with("in-training");
    let mut ranked: Vec<(f64, u64, PathBuf)> = scores
        .into_iter()
        .zip(&all)
        .map(|(score, (step, path))| (score, *step, path.clone()))
        .collect();
    // Equal evaluations keep the earlier step, as the trainer's best does;
    // equal losses, the newer.
    ranked.sort_by(|a, b| {
        let by_step = if evaluated {
            a.1.cmp(&b.1)
        } else {
            b.1.cmp(&a.1)
        };
        a.0.total_cmp(&b.0).then(by_step)
    });
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
    Ok(Pruned {
        deleted,
        ranked_by,
        note,
    })
}

/// Scores for `--keep-best`: the in-training evaluation metric when every
/// checkpoint has an evaluation at its own step, else the recent training loss.
type Ranking = (Vec<f64>, String, Option<String>);

fn rank_best(all: &[(u64, PathBuf)]) -> Result<Ranking> {
    let mut evaluated = Vec::new();
    let mut unevaluated = Vec::new();
    let mut any_eval = false;
    for (step, path) in all {
        let state = load_state(path)?;
        any_eval |= !state.eval_history.is_empty();
        match state.eval_history.iter().rev().find(|e| e.step == *step) {
            Some(e) => evaluated.push((e.exact_match, e.f1)),
            None => unevaluated.push(*step),
        }
    }
    if unevaluated.is_empty() && !all.is_empty() && any_eval {
        let (metric, greater) = load_run_config(&all[0].1)?.best_metric();
        let sign = if greater { -1.0 } else { 1.0 };
        let scores = evaluated
            .iter()
            .map(|&(em, f1)| sign * metric.of(em, f1))
            .collect();
        return Ok((scores, format!("in-training {}", metric.name()), None));
    }
    let note = any_eval.then(|| {
        format!(
            "checkpoints at steps {} have no evaluation at their step",
            unevaluated
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    let scores = all
        .iter()
        .map(|(_, path)| recent_loss(path))
        .collect::<Result<_>>()?;
    Ok((
        scores,
        format!("training loss over the last {BEST_WINDOW} steps"),
        note,
    ))
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
