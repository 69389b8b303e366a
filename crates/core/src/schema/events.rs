//! The one stream a run reports through, and its form on disk: each event is
//! one line of a run's `metrics.jsonl`. The trainer emits `TrainEvent`s and
//! knows nothing of who listens: the CLI's progress bar, the run store and the
//! GUI are all consumers of the same stream.

use crate::config::RunConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A run's event log in its folder: one `TrainEvent` of JSON a line.
pub const EVENTS_FILE: &str = "metrics.jsonl";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    /// Progress while data and model are prepared, before `Started`.
    Status {
        message: String,
    },
    Started(Box<StartInfo>),
    Step(StepLog),
    EpochEnd(EpochLog),
    CheckpointSaved {
        step: u64,
        path: PathBuf,
    },
    Paused {
        step: u64,
    },
    Resumed {
        step: u64,
    },
    Evaluated(EvalSummary),
    /// Training and evaluation are done; always the last event of a good run.
    Finished(Box<TrainSummary>),
    /// A loss or gradient became NaN or infinite; no checkpoint is written for
    /// that step, so the last one on disk is the last good state.
    Diverged {
        step: u64,
        #[serde(deserialize_with = "nan_if_null")]
        loss: f64,
        #[serde(deserialize_with = "nan_if_null")]
        grad_norm: f64,
        last_checkpoint: Option<PathBuf>,
    },
    /// Stopped on request at a step boundary, with a checkpoint to resume from.
    Cancelled {
        step: u64,
        checkpoint: Option<PathBuf>,
    },
    Failed {
        error: String,
    },
    /// Something the run goes on despite, that its reader should know: a
    /// fused kernel the self-check switched off, say.
    Warning {
        message: String,
    },
    /// What the training process costs, sampled every few seconds off the
    /// training thread.
    System(SystemSample),
    /// An event this version does not know, from a newer squadlab: skipped
    /// by every reader, never written.
    #[serde(other)]
    Unknown,
}

/// One sample of the training process and its GPUs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SystemSample {
    /// Seconds since the process began training this run (wall clock,
    /// preparation included).
    pub elapsed_seconds: f64,
    /// The last step logged when sampled (0 before the first).
    pub step: u64,
    /// CPU time over wall time since the last sample, as `top` shows it: 200
    /// is two cores busy.
    pub cpu_percent: Option<f64>,
    /// Resident memory of the process.
    pub rss_bytes: Option<u64>,
    /// CUDA runs: every GPU nvidia-smi lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuUsage>,
    /// Why the GPUs could not be read (nvidia-smi missing or failing), once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_error: Option<String>,
}

/// What one GPU is doing; None where nvidia-smi says `[N/A]` (power on some
/// boards) or gives no number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpuUsage {
    pub index: u32,
    pub utilization_percent: Option<f64>,
    pub memory_used_mib: Option<f64>,
    pub power_watts: Option<f64>,
    pub temperature_c: Option<f64>,
}

/// JSON has no NaN or infinity: serde_json writes them as `null`, so a
/// diverged run's log reads them back as NaN rather than as a broken line.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

impl TrainEvent {
    /// Whether the stream ends with this event.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            TrainEvent::Finished(_)
                | TrainEvent::Diverged { .. }
                | TrainEvent::Cancelled { .. }
                | TrainEvent::Failed { .. }
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartInfo {
    pub config: RunConfig,
    pub run_dir: PathBuf,
    pub total_steps: u64,
    pub steps_per_epoch: u64,
    pub warmup_steps: u64,
    /// The data files the run read (SQuAD JSON or parquet).
    pub train_data: String,
    pub eval_data: String,
    pub train_examples: usize,
    pub train_windows: usize,
    pub eval_examples: usize,
    pub eval_windows: usize,
    /// Windows per optimizer step: batch size × accumulation.
    pub effective_batch_size: usize,
    pub device: String,
    pub dtype: String,
    pub parameters: usize,
    /// The step a resumed run continues from (0 for a fresh run).
    pub resumed_from_step: u64,
    /// What draws the dropout masks (`DropoutGenerator::name`); absent in
    /// logs from before it was recorded.
    #[serde(default)]
    pub dropout_generator: Option<String>,
    /// The fused kernels this run's step runs (`model::fused::Kernel`
    /// names); the rest of its ops are candle's generic ones. Absent in
    /// logs from before it was recorded.
    #[serde(default)]
    pub fused_kernels: Option<Vec<String>>,
    /// The model's family (its config's `model_type`); absent in logs from
    /// before squadlab trained more than BERT.
    #[serde(default)]
    pub family: Option<crate::family::Family>,
}

/// One optimizer step. `learning_rate` is the rate this step used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: u64,
    /// Fractional: 1.5 is halfway through the second epoch.
    pub epoch: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub loss: f64,
    /// The global gradient norm before clipping.
    #[serde(deserialize_with = "nan_if_null")]
    pub grad_norm: f64,
    pub learning_rate: f64,
    /// Windows per second of training time so far in this session.
    pub samples_per_second: f64,
    /// Seconds of training so far, pauses excluded, earlier sessions included.
    pub elapsed_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based: the epoch that just ended.
    pub epoch: u32,
    pub step: u64,
    #[serde(deserialize_with = "nan_if_null")]
    pub mean_loss: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub mean_grad_norm: f64,
    pub learning_rate: f64,
    pub elapsed_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSummary {
    pub exact_match: f64,
    pub f1: f64,
    /// Questions scored.
    pub total: usize,
    pub windows: usize,
    pub seconds: f64,
    /// The optimizer step whose weights were scored (0 in logs from before
    /// squadlab recorded it).
    #[serde(default)]
    pub step: u64,
    /// Fractional epoch at that step.
    #[serde(default)]
    pub epoch: f64,
    /// During training (`eval_strategy`) or the run's final evaluation;
    /// logs from before in-training evaluation hold only final ones.
    #[serde(default)]
    pub kind: EvalKind,
    /// SQuAD 2.0 runs: HasAns/NoAns EM/F1 and the best null thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub squad_v2: Option<V2Breakdown>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalKind {
    InTraining,
    /// The one evaluation that gives the run its headline EM/F1.
    #[default]
    Final,
}

/// The best in-training evaluation so far (Hugging Face's `best_metric` and
/// `best_model_checkpoint`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestModel {
    pub step: u64,
    pub metric: crate::config::BestMetric,
    pub value: f64,
    /// Its checkpoint, when one was saved at that step.
    pub checkpoint: Option<PathBuf>,
}

/// What Hugging Face's `TrainOutput` reports, plus the evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    pub global_step: u64,
    pub epoch: f64,
    pub train_runtime: f64,
    pub train_samples_per_second: f64,
    pub train_steps_per_second: f64,
    /// Hugging Face's estimate: 6 × non-embedding parameters × padded tokens.
    pub total_flos: f64,
    /// The mean loss over all steps.
    pub train_loss: f64,
    pub log_history: Vec<EpochLog>,
    pub eval: Option<EvalSummary>,
    /// The best in-training evaluation, when there were any.
    #[serde(default)]
    pub best: Option<BestModel>,
    /// Whether the final `model/` (and its evaluation) is the best
    /// checkpoint's weights (`load_best_model_at_end`) rather than the last step's.
    #[serde(default)]
    pub loaded_best: bool,
}

impl TrainSummary {
    /// The train output as `key: value` lines, in Hugging Face's names.
    pub fn describe(&self) -> String {
        format!(
            "steps: {} ({:.2} epochs)\ntrain_runtime: {:.1} s\ntrain_samples_per_second: {:.3}\ntrain_steps_per_second: {:.3}\ntotal_flos: {:.3e}\ntrain_loss: {:.4}\n",
            self.global_step,
            self.epoch,
            self.train_runtime,
            self.train_samples_per_second,
            self.train_steps_per_second,
            self.total_flos,
            self.train_loss
        ) + &self.best.as_ref().map_or(String::new(), |b| {
            format!(
                "best in-training {}: {:.2} at step {}{}\n",
                b.metric.name(),
                b.value,
                b.step,
                if self.loaded_best {
                    " (the final model)"
                } else {
                    ""
                }
            )
        })
    }
}

/// A consumer of the event stream (progress bar, run store, GUI).
pub trait EventSink {
    fn on_event(&mut self, event: &TrainEvent) -> anyhow::Result<()>;
}

/// The v2 keys beyond `exact`, `f1` and `total` (`HasAns_exact` is
/// `has_ans_exact`; [`V2Breakdown::official_keys`] gives the official names).
/// A part with no question (no unanswerable one, say) is None, as the
/// official script leaves its keys out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct V2Breakdown {
    pub has_ans_exact: Option<f64>,
    pub has_ans_f1: Option<f64>,
    pub has_ans_total: Option<usize>,
    pub no_ans_exact: Option<f64>,
    pub no_ans_f1: Option<f64>,
    pub no_ans_total: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best: Option<BestThresholds>,
}

impl V2Breakdown {
    /// The keys as evaluate-v2.0.py prints them, in its order.
    pub fn official_keys(&self) -> Vec<(&'static str, serde_json::Value)> {
        use serde_json::json;
        let mut out = Vec::new();
        let mut put = |k: &'static str, v: Option<serde_json::Value>| {
            if let Some(v) = v {
                out.push((k, v));
            }
        };
        put("HasAns_exact", self.has_ans_exact.map(|v| json!(v)));
        put("HasAns_f1", self.has_ans_f1.map(|v| json!(v)));
        put("HasAns_total", self.has_ans_total.map(|v| json!(v)));
        put("NoAns_exact", self.no_ans_exact.map(|v| json!(v)));
        put("NoAns_f1", self.no_ans_f1.map(|v| json!(v)));
        put("NoAns_total", self.no_ans_total.map(|v| json!(v)));
        if let Some(b) = &self.best {
            put("best_exact", Some(json!(b.best_exact)));
            put("best_exact_thresh", Some(json!(b.best_exact_thresh)));
            put("best_f1", Some(json!(b.best_f1)));
            put("best_f1_thresh", Some(json!(b.best_f1_thresh)));
        }
        out
    }
}

/// The scores at the best no-answer threshold, and the thresholds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestThresholds {
    pub best_exact: f64,
    pub best_exact_thresh: f64,
    pub best_f1: f64,
    pub best_f1_thresh: f64,
}
