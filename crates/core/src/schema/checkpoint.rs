//! A checkpoint's layout on disk: `checkpoints/checkpoint-N/` holds a Hugging
//! Face model folder, the optimizer's moments, the run's config and the
//! trainer state below. The trainer writes them (train::checkpoint); the
//! store and the CLI read them to list, resume and prune runs.

use super::events::{BestModel, EpochLog, EvalSummary, StepLog};
use crate::config::RunConfig;
use crate::rng::{DropoutGenerator, SeededRng};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "trainer_state.json";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const RUN_CONFIG_FILE: &str = "run_config.ron";
pub const FORMAT_VERSION: u32 = 1;

/// Where a run stands, saved with every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    pub format_version: u32,
    pub global_step: u64,
    /// The epoch in progress, 0-based.
    pub epoch: u32,
    /// Optimizer steps already taken in that epoch.
    pub steps_done_in_epoch: u64,
    /// That epoch's window order.
    pub epoch_order: Vec<u32>,
    pub dropout_rng: SeededRng,
    pub train_seconds: f64,
    pub samples_seen: u64,
    pub total_flos: f64,
    pub step_history: Vec<StepLog>,
    pub epoch_history: Vec<EpochLog>,
    /// The warmup steps the schedule was derived with; none in checkpoints
    /// from before squadlab recorded it, which used the floor rule.
    #[serde(default)]
    pub warmup_steps: Option<u64>,
    /// The evaluations during training so far.
    #[serde(default)]
    pub eval_history: Vec<EvalSummary>,
    /// The best of them by the run's `metric_for_best_model`.
    #[serde(default)]
    pub best: Option<BestModel>,
    /// The generator of the dropout masks. Absent in checkpoints from before
    /// the lean step, which all drew with `dropout_rng` (or the device's):
    /// they resume on the autograd graph that drew them.
    #[serde(default)]
    pub dropout_generator: DropoutGenerator,
}

impl TrainerState {
    pub fn new(dropout_rng: SeededRng, dropout_generator: DropoutGenerator) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            global_step: 0,
            epoch: 0,
            steps_done_in_epoch: 0,
            epoch_order: Vec::new(),
            dropout_rng,
            train_seconds: 0.0,
            samples_seen: 0,
            total_flos: 0.0,
            step_history: Vec::new(),
            epoch_history: Vec::new(),
            warmup_steps: None,
            eval_history: Vec::new(),
            best: None,
            dropout_generator,
        }
    }
}

/// The folder for the checkpoint at `step`.
pub fn checkpoint_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir
        .join("checkpoints")
        .join(format!("checkpoint-{step}"))
}

/// Checkpoints of a run, oldest first.
pub fn list_checkpoints(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(run_dir.join("checkpoints")) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let step = name.strip_prefix("checkpoint-")?.parse().ok()?;
            e.path()
                .join(STATE_FILE)
                .is_file()
                .then(|| (step, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// A checkpoint's trainer state, refused when it is of another format.
pub fn load_state(dir: &Path) -> Result<TrainerState> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is not a training checkpoint: cannot read {STATE_FILE}",
            dir.display()
        )
    })?;
    let state: TrainerState = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}:{}:{}: bad trainer state: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    if state.format_version != FORMAT_VERSION {
        bail!(
            "{}: trainer state format {} is not the supported {FORMAT_VERSION}",
            path.display(),
            state.format_version
        );
    }
    Ok(state)
}

pub fn load_run_config(dir: &Path) -> Result<RunConfig> {
    RunConfig::load(&dir.join(RUN_CONFIG_FILE))
}
