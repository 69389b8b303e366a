//! Checkpoints: a Hugging Face model folder plus everything needed to resume
//! the run exactly (optimizer moments, step, epoch, RNG state, data order).
//!
//! A checkpoint is written into `checkpoint-N.tmp/`, each file atomically, and
//! only then renamed to `checkpoint-N/`: a crash never leaves a half checkpoint
//! under a real name.

use super::optimizer::AdamW;
use crate::config::RunConfig;
use crate::fsutil::write_atomically;
use crate::model::{save_pretrained, BertConfig, Params, TokenizerFile};
pub use crate::schema::checkpoint::{
    checkpoint_dir, list_checkpoints, load_run_config, load_state, TrainerState, OPTIMIZER_FILE,
    RUN_CONFIG_FILE, STATE_FILE,
};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Everything a checkpoint holds besides the trainer state.
pub struct CheckpointParts<'a> {
    pub config: &'a RunConfig,
    pub model_config: &'a BertConfig,
    pub params: &'a Params,
    pub optimizer: &'a AdamW,
    pub tokenizer: &'a TokenizerFile,
}

/// Writes the checkpoint at `state.global_step`. On failure (a full disk)
/// the half-written staging folder is removed and older checkpoints are untouched.
pub fn save_checkpoint(
    run_dir: &Path,
    state: &TrainerState,
    parts: &CheckpointParts,
) -> Result<PathBuf> {
    let dir = checkpoint_dir(run_dir, state.global_step);
    let staging = dir.with_extension("tmp");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    let written = write_staged(&staging, state, parts);
    if written.is_err() {
        std::fs::remove_dir_all(&staging).ok();
    }
    written.with_context(|| format!("cannot save checkpoint {}", dir.display()))?;
    // Replace an older checkpoint of the same step (a resumed run passing it again).
    if dir.exists() {
        crate::fsutil::remove_dir_hidden_first(&dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::rename(&staging, &dir).with_context(|| format!("cannot write {}", dir.display()))?;
    if let Some(parent) = dir.parent() {
        std::fs::File::open(parent)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync {}", parent.display()))?;
    }
    Ok(dir)
}

/// Every file of a checkpoint, into `staging`, synced.
fn write_staged(staging: &Path, state: &TrainerState, parts: &CheckpointParts) -> Result<()> {
    save_pretrained(
        staging,
        parts.model_config,
        parts.params,
        Some(parts.tokenizer),
    )?;
    let optimizer = staging.join(OPTIMIZER_FILE);
    let tmp = crate::fsutil::temp_path(&optimizer);
    parts.optimizer.save(&tmp)?;
    std::fs::rename(&tmp, &optimizer)
        .with_context(|| format!("cannot write {}", optimizer.display()))?;
    write_atomically(
        &staging.join(RUN_CONFIG_FILE),
        parts.config.to_ron().as_bytes(),
    )?;
    write_atomically(&staging.join(STATE_FILE), &serde_json::to_vec(state)?)?;
    // On disk before it gets its real name, and before rotation deletes older ones.
    crate::fsutil::sync_dir(staging)
}

/// Deletes the oldest checkpoints beyond `keep`, never one in `protect` (the
/// newest and the best): like Hugging Face, a limit of 1 keeps two when the
/// best is not the newest.
pub fn rotate_checkpoints(run_dir: &Path, keep: usize, protect: &[&Path]) -> Result<()> {
    let all = list_checkpoints(run_dir);
    let excess = all.len().saturating_sub(keep.max(1));
    for (_, dir) in all
        .into_iter()
        .filter(|(_, d)| !protect.contains(&d.as_path()))
        .take(excess)
    {
        crate::fsutil::remove_dir_hidden_first(&dir)
            .with_context(|| format!("cannot delete old checkpoint {}", dir.display()))?;
    }
    Ok(())
}

/// Refuses to resume with settings that would change the run's course.
/// Only presentation, device and saving settings may differ.
pub fn check_resumable(saved: &RunConfig, now: &RunConfig, dir: &Path) -> Result<()> {
    if saved.course() != now.course() {
        bail!(
            "the config differs from the one checkpoint {} was trained with ({}); resume with that config",
            dir.display(),
            dir.join(RUN_CONFIG_FILE).display()
        );
    }
    Ok(())
}

/// Refuses to resume a checkpoint whose schedule was derived with other
/// warmup steps than this squadlab derives (checkpoints from before the
/// Hugging Face ceil rule floored `warmup_ratio × total steps`): the rest of
/// the run would follow another learning-rate curve.
pub fn check_warmup(
    state: &TrainerState,
    config: &RunConfig,
    total_steps: u64,
    dir: &Path,
) -> Result<()> {
    let then = state
        .warmup_steps
        .unwrap_or_else(|| config.legacy_warmup_steps_for(total_steps));
    let now = config.warmup_steps_for(total_steps);
    if then != now {
        bail!(
            "checkpoint {} was trained with {then} warmup steps of {total_steps}, but this squadlab derives {now} \
             (Hugging Face's rule, ceil(warmup_ratio × steps)); resuming would change the learning-rate schedule. \
             Finish it with the squadlab that started it, or start a new run",
            dir.display()
        );
    }
    Ok(())
}
