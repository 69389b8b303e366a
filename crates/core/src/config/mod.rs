//! `RunConfig`: every knob of a run, in RON, with the reference notebook's defaults.
//! Field names follow Hugging Face's `TrainingArguments` (and `run_qa.py` for the
//! data fields) so a researcher can carry settings over unchanged.

mod error;
mod source;
mod validate;

pub use error::ConfigError;
pub use source::{
    data_dir, DataLocation, DataSource, ModelLocation, ModelSource, DATA_ENV, DEFAULT_DATA_DIR,
};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Free-text name shown in listings.
    pub name: String,
    pub model: ModelSource,
    pub data: DataConfig,
    /// Tokens per window, question and special tokens included (`max_seq_length` in run_qa.py).
    pub max_seq_length: usize,
    /// Tokens shared by consecutive windows of a long context.
    pub doc_stride: usize,
    /// Pad each training batch to its longest window instead of
    /// `max_seq_length`. Most SQuAD windows are far shorter than 384, so this
    /// saves much of the compute; the padded positions then drop out of the
    /// loss's softmax, a small change from the reference. Inference always pads
    /// to the longest window, which leaves every real position's logits as they were.
    pub dynamic_padding: bool,
    pub per_device_train_batch_size: usize,
    pub per_device_eval_batch_size: usize,
    pub gradient_accumulation_steps: usize,
    pub num_train_epochs: f64,
    /// Stop after this many optimizer steps, whatever the epochs say.
    pub max_steps: Option<u64>,
    pub learning_rate: f64,
    /// Layer-wise learning-rate decay, ELECTRA's recipe (0.8 for base, 0.9
    /// for large): the QA head trains at the rate, encoder layer l of L at
    /// rate × decay^(L + 1 − l), the embeddings at rate × decay^(L + 2)
    /// (`model::layout::layerwise_lr_scales`). 1 (the default, and Hugging
    /// Face's Trainer) is one rate for all.
    pub layerwise_lr_decay: f64,
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_epsilon: f64,
    /// Hugging Face's `lr_scheduler_type`: linear (the default), cosine,
    /// cosine_with_restarts, polynomial, constant, constant_with_warmup.
    pub lr_scheduler_type: LrSchedulerType,
    /// Its keyword arguments, with Hugging Face's defaults when absent:
    /// `num_cycles` (cosine 0.5, cosine_with_restarts 1), `power` (1.0) and
    /// `lr_end` (1e-7) for polynomial.
    pub lr_scheduler_kwargs: LrSchedulerKwargs,
    /// Warmup in optimizer steps; when 0, `warmup_ratio` decides.
    pub warmup_steps: u64,
    /// Warmup as a share of all steps: `ceil(ratio × total steps)`, Hugging
    /// Face's `TrainingArguments.get_warmup_steps`.
    pub warmup_ratio: f64,
    pub max_grad_norm: f64,
    pub seed: u64,
    pub logging_steps: u64,
    pub save_strategy: SaveStrategy,
    pub save_steps: u64,
    /// Checkpoints kept on disk; `None` keeps all. Rotation never deletes
    /// the newest checkpoint nor the best one (see `metric_for_best_model`).
    pub save_total_limit: Option<usize>,
    /// Evaluation during training, as Hugging Face's `eval_strategy`: `no`
    /// (only the final evaluation), `epoch`, or `steps` (every `eval_steps`).
    pub eval_strategy: EvalStrategy,
    /// Steps between evaluations with `eval_strategy: steps`; when unset,
    /// `logging_steps`, as in Hugging Face.
    pub eval_steps: Option<u64>,
    /// squadlab's own (Hugging Face has none): evaluations during training
    /// score only the first N questions of the evaluation set, to keep them
    /// quick. The final evaluation always scores the whole set (up to
    /// `data.max_eval_samples`); unset, in-training evaluations do too.
    pub in_training_eval_samples: Option<usize>,
    /// Load the checkpoint with the best `metric_for_best_model` at the end:
    /// the final `model/` and the final evaluation are of it. As in Hugging
    /// Face, `save_strategy` must match `eval_strategy` (and `save_steps` be a
    /// multiple of `eval_steps`).
    pub load_best_model_at_end: bool,
    /// `f1` or `exact_match` (`eval_f1`, `eval_exact_match` also read); unset,
    /// `f1`. Hugging Face defaults to the evaluation loss, which squadlab's
    /// evaluation does not compute.
    pub metric_for_best_model: Option<BestMetric>,
    /// Whether a larger metric is better; unset, true (Hugging Face's rule
    /// for any metric but a loss).
    pub greater_is_better: Option<bool>,
    pub n_best_size: usize,
    pub max_answer_length: usize,
    /// SQuAD 2.0, run_qa.py's `--version_2_with_negative`: questions without
    /// an answer are kept and labelled at the CLS position, and the answer
    /// may be "" (no answer). Off, such a question is a bad record.
    pub version_2_with_negative: bool,
    /// With `version_2_with_negative`: answer "" when the question's null
    /// score (CLS start + end, its lowest over the windows) beats the best
    /// span's score by more than this (run_qa.py's name and default, 0).
    pub null_score_diff_threshold: f64,
    pub device: Device,
    pub dtype: DType,
    /// `auto`: the lean step (train::lean: an explicit backward pass over
    /// fused ops, Philox dropout) for f32 on the CPU, candle's ops
    /// elsewhere. `autograd`: candle's autograd over the fused CPU kernels,
    /// the step before the lean one, with its `SeededRng` dropout (runs
    /// checkpointed before the lean step resume on it). `generic`: candle's
    /// ops on every device, the graph a CUDA build trains with, so the CUDA
    /// path can be checked on the CPU (it also lets f16 autocast run there).
    /// Like `device`, it is not part of the run's course.
    pub graph: Graph,
    /// On CUDA, f32 matrix products on the TF32 tensor cores (PyTorch's
    /// `allow_tf32`): several times faster, with a 10-bit mantissa in the
    /// products. bf16/f16 autocast and the CPU are unaffected. Like `device`,
    /// not part of the run's course.
    pub tf32: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub train: DataSource,
    pub validation: DataSource,
    /// Use only the first N training questions, in file order.
    pub max_train_samples: Option<usize>,
    /// Evaluate only the first N questions, in file order.
    pub max_eval_samples: Option<usize>,
    /// Skip records that fail validation (and report how many) instead of stopping.
    pub skip_bad_records: bool,
    /// Longest context accepted, in characters. A longer one fails the load
    /// (or is skipped with `skip_bad_records`) before it costs memory.
    pub max_context_chars: usize,
    /// Train on these articles only: `Some((from, to))`, indices into the
    /// file's `data` list, `to` exclusive. With `eval_articles`, one file can
    /// give a training part and an evaluation part with no article in both
    /// (a smoke protocol, not an official split). JSON files only.
    pub train_articles: Option<(usize, usize)>,
    /// Evaluate on these articles only, as `train_articles`.
    pub eval_articles: Option<(usize, usize)>,
}

/// When checkpoints are written, as in Hugging Face: `no`, `epoch` or `steps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaveStrategy {
    No,
    Epoch,
    Steps,
}

/// When evaluations run during training, as in Hugging Face.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalStrategy {
    #[default]
    No,
    Epoch,
    Steps,
}

/// The metric that ranks in-training evaluations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BestMetric {
    #[default]
    #[serde(alias = "eval_f1")]
    F1,
    #[serde(alias = "eval_exact_match")]
    ExactMatch,
}

impl BestMetric {
    pub fn name(self) -> &'static str {
        match self {
            BestMetric::F1 => "f1",
            BestMetric::ExactMatch => "exact_match",
        }
    }

    /// This metric of an evaluation.
    pub fn of(self, exact_match: f64, f1: f64) -> f64 {
        match self {
            BestMetric::F1 => f1,
            BestMetric::ExactMatch => exact_match,
        }
    }
}

/// Compute precision: `f32`, or `bf16`/`f16` autocast with f32 master weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    Bf16,
    F16,
}

/// The learning-rate schedule after warmup (see `train::schedule`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedulerType {
    #[default]
    Linear,
    Cosine,
    CosineWithRestarts,
    Polynomial,
    Constant,
    ConstantWithWarmup,
}

/// `lr_scheduler_kwargs`: each absent one takes Hugging Face's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrSchedulerKwargs {
    pub num_cycles: Option<f64>,
    pub power: Option<f64>,
    pub lr_end: Option<f64>,
}

/// Which graph trains: see `RunConfig::graph`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Graph {
    #[default]
    Auto,
    Autograd,
    Generic,
}

/// `"auto"` (CUDA when built with it and present, else CPU), `"cpu"`, or `"cuda:N"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Device {
    Auto,
    Cpu,
    Cuda(usize),
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| {
                    format!("unknown device {other:?}: expected \"auto\", \"cpu\" or \"cuda:N\"")
                }),
        }
    }
}

impl TryFrom<String> for Device {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Device> for String {
    fn from(d: Device) -> String {
        d.to_string()
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            model: ModelSource::try_from("google-bert/bert-base-uncased".to_string())
                .expect("valid hub id"),
            data: DataConfig::default(),
            max_seq_length: 384,
            doc_stride: 128,
            dynamic_padding: false,
            per_device_train_batch_size: 32,
            per_device_eval_batch_size: 32,
            gradient_accumulation_steps: 1,
            num_train_epochs: 3.0,
            max_steps: None,
            learning_rate: 2e-5,
            layerwise_lr_decay: 1.0,
            weight_decay: 0.01,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            lr_scheduler_type: LrSchedulerType::Linear,
            lr_scheduler_kwargs: LrSchedulerKwargs::default(),
            warmup_steps: 0,
            warmup_ratio: 0.0,
            max_grad_norm: 1.0,
            seed: 42,
            logging_steps: 1,
            save_strategy: SaveStrategy::Epoch,
            save_steps: 500,
            save_total_limit: Some(3),
            eval_strategy: EvalStrategy::No,
            eval_steps: None,
            in_training_eval_samples: None,
            load_best_model_at_end: false,
            metric_for_best_model: None,
            greater_is_better: None,
            n_best_size: 20,
            max_answer_length: 30,
            version_2_with_negative: false,
            null_score_diff_threshold: 0.0,
            device: Device::Auto,
            dtype: DType::F32,
            graph: Graph::Auto,
            tf32: true,
        }
    }
}

/// SQuAD's longest context is about 25,000 characters; a context far beyond
/// that is a broken file, and would take memory in proportion before failing.
pub const DEFAULT_MAX_CONTEXT_CHARS: usize = 1_000_000;

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            train: DataSource::hub("rajpurkar/squad"),
            validation: DataSource::hub("rajpurkar/squad"),
            max_train_samples: None,
            max_eval_samples: None,
            skip_bad_records: false,
            max_context_chars: DEFAULT_MAX_CONTEXT_CHARS,
            train_articles: None,
            eval_articles: None,
        }
    }
}

impl RunConfig {
    /// Parses RON; syntax errors, unknown fields and wrong types name `origin:line:col`.
    pub fn from_ron(text: &str, origin: &str) -> Result<Self, ConfigError> {
        ron::Options::default()
            .from_str(text)
            .map_err(|e| ConfigError::Parse {
                origin: origin.to_string(),
                line: e.span.start.line,
                col: e.span.start.col,
                message: e.code.to_string(),
            })
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let config = Self::from_ron(&text, &path.display().to_string())?;
        config.validate().map_err(|e| e.in_file(path))?;
        Ok(config)
    }

    pub fn to_ron(&self) -> String {
        let pretty = ron::ser::PrettyConfig::new().struct_names(true);
        ron::ser::to_string_pretty(self, pretty).expect("a RunConfig always serializes")
    }

    /// The settings that decide a run's course: everything but its name,
    /// device, logging, saving and eval batch size, which are cleared.
    pub fn course(&self) -> RunConfig {
        RunConfig {
            name: String::new(),
            device: Device::Auto,
            graph: Graph::Auto,
            tf32: true,
            logging_steps: 1,
            save_strategy: SaveStrategy::No,
            save_steps: 1,
            save_total_limit: None,
            per_device_eval_batch_size: 1,
            ..self.clone()
        }
    }

    /// Steps between in-training evaluations with `eval_strategy: steps`:
    /// `eval_steps`, else `logging_steps` (Hugging Face's rule).
    pub fn eval_every(&self) -> u64 {
        self.eval_steps.unwrap_or(self.logging_steps)
    }

    /// The metric ranking evaluations, and whether larger is better.
    pub fn best_metric(&self) -> (BestMetric, bool) {
        (
            self.metric_for_best_model.unwrap_or_default(),
            self.greater_is_better.unwrap_or(true),
        )
    }

    /// Warmup steps for a run of `total_steps` optimizer steps, by Hugging
    /// Face's rule (`TrainingArguments.get_warmup_steps`): `warmup_steps` when
    /// set, else `ceil(warmup_ratio × total_steps)`: 17 for 10% of 161.
    /// squadlab before it took this rule floored the ratio (16); `legacy_warmup_steps_for`
    /// keeps that rule to read old runs.
    pub fn warmup_steps_for(&self, total_steps: u64) -> u64 {
        if self.warmup_steps > 0 {
            self.warmup_steps
        } else {
            (self.warmup_ratio * total_steps as f64).ceil() as u64
        }
    }

    /// The warmup squadlab derived before it took Hugging Face's rule
    /// (`floor`), for runs whose record predates `RunRecord::warmup_steps`.
    pub fn legacy_warmup_steps_for(&self, total_steps: u64) -> u64 {
        if self.warmup_steps > 0 {
            self.warmup_steps
        } else {
            (self.warmup_ratio * total_steps as f64).floor() as u64
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Auto => f.write_str("auto"),
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests;
