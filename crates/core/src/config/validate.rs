//! Impossible values, each with one clear message naming its field.

use super::error::ConfigError;
use super::{DataLocation, EvalStrategy, RunConfig, SaveStrategy};
use std::path::Path;

impl RunConfig {
    /// Checks every field that can be checked without the model; see
    /// [`RunConfig::validate_positions`] for the model's own limit.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Problems::default();
        check_windows_and_batches(self, &mut p);
        check_schedule(self, &mut p);
        check_optimizer(self, &mut p);
        check_evaluation_and_checkpoints(self, &mut p);
        check_answers(self, &mut p);
        check_data(self, &mut p);
        check_device(self, &mut p);
        if p.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                origin: None,
                problems: p.0,
            })
        }
    }

    /// The model's learned positions bound the window length.
    pub fn validate_positions(&self, max_position_embeddings: usize) -> Result<(), ConfigError> {
        if self.max_seq_length > max_position_embeddings {
            return Err(ConfigError::Invalid {
                origin: None,
                problems: vec![format!(
                    "max_seq_length ({}) exceeds the model's max_position_embeddings ({max_position_embeddings})",
                    self.max_seq_length
                )],
            });
        }
        Ok(())
    }
}

/// The problems found so far, each naming its field.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn need(&mut self, ok: bool, message: String) {
        if !ok {
            self.0.push(message);
        }
    }
}

/// How questions and contexts are cut into windows, and the batches.
fn check_windows_and_batches(c: &RunConfig, p: &mut Problems) {
    // A window holds [CLS] question [SEP] context [SEP]: leave room for a question and context.
    p.need(
        c.max_seq_length >= 16,
        format!(
            "max_seq_length must be at least 16, got {}",
            c.max_seq_length
        ),
    );
    p.need(
        c.doc_stride < c.max_seq_length,
        format!(
            "doc_stride ({}) must be smaller than max_seq_length ({})",
            c.doc_stride, c.max_seq_length
        ),
    );
    p.need(
        c.per_device_train_batch_size > 0,
        "per_device_train_batch_size must be at least 1, got 0".into(),
    );
    p.need(
        c.per_device_eval_batch_size > 0,
        "per_device_eval_batch_size must be at least 1, got 0".into(),
    );
    p.need(
        c.gradient_accumulation_steps > 0,
        "gradient_accumulation_steps must be at least 1, got 0".into(),
    );
}

/// How long the run trains and its learning rate over the steps.
fn check_schedule(c: &RunConfig, p: &mut Problems) {
    p.need(
        c.num_train_epochs.is_finite() && c.num_train_epochs > 0.0,
        format!(
            "num_train_epochs must be a positive number, got {}",
            c.num_train_epochs
        ),
    );
    p.need(
        c.max_steps != Some(0),
        "max_steps must be at least 1 when set, got 0".into(),
    );
    p.need(
        c.learning_rate.is_finite() && c.learning_rate > 0.0,
        format!("learning_rate must be positive, got {}", c.learning_rate),
    );
    let k = &c.lr_scheduler_kwargs;
    p.need(
        k.num_cycles.is_none_or(|n| n.is_finite() && n > 0.0),
        format!(
            "lr_scheduler_kwargs.num_cycles must be positive, got {:?}",
            k.num_cycles
        ),
    );
    p.need(
        k.power.is_none_or(|p| p.is_finite() && p > 0.0),
        format!(
            "lr_scheduler_kwargs.power must be positive, got {:?}",
            k.power
        ),
    );
    p.need(
        k.lr_end
            .is_none_or(|e| e.is_finite() && e >= 0.0 && e <= c.learning_rate),
        format!(
            "lr_scheduler_kwargs.lr_end must be in [0, learning_rate ({})], got {:?}",
            c.learning_rate, k.lr_end
        ),
    );
    p.need(
        (0.0..1.0).contains(&c.warmup_ratio),
        format!("warmup_ratio must be in [0, 1), got {}", c.warmup_ratio),
    );
}

/// AdamW's settings, decay by layer, and clipping.
fn check_optimizer(c: &RunConfig, p: &mut Problems) {
    p.need(
        c.layerwise_lr_decay > 0.0 && c.layerwise_lr_decay <= 1.0,
        format!(
            "layerwise_lr_decay must be in (0, 1], got {}",
            c.layerwise_lr_decay
        ),
    );
    p.need(
        c.weight_decay.is_finite() && c.weight_decay >= 0.0,
        format!(
            "weight_decay must be zero or positive, got {}",
            c.weight_decay
        ),
    );
    for (name, beta) in [("adam_beta1", c.adam_beta1), ("adam_beta2", c.adam_beta2)] {
        p.need(
            (0.0..1.0).contains(&beta),
            format!("{name} must be in [0, 1), got {beta}"),
        );
    }
    p.need(
        c.adam_epsilon.is_finite() && c.adam_epsilon > 0.0,
        format!("adam_epsilon must be positive, got {}", c.adam_epsilon),
    );
    p.need(
        c.max_grad_norm.is_finite() && c.max_grad_norm >= 0.0,
        format!(
            "max_grad_norm must be zero (no clipping) or positive, got {}",
            c.max_grad_norm
        ),
    );
}

/// Logging, evaluation during training, the best model and checkpoints.
fn check_evaluation_and_checkpoints(c: &RunConfig, p: &mut Problems) {
    p.need(
        c.logging_steps > 0,
        "logging_steps must be at least 1, got 0".into(),
    );
    p.need(
        c.save_strategy != SaveStrategy::Steps || c.save_steps > 0,
        "save_steps must be at least 1 with save_strategy: Steps".into(),
    );
    p.need(
        c.eval_strategy != EvalStrategy::Steps || c.eval_every() > 0,
        "eval_steps must be at least 1 with eval_strategy: steps".into(),
    );
    p.need(
        c.in_training_eval_samples != Some(0),
        "in_training_eval_samples must be at least 1 when set, got 0".into(),
    );
    if c.load_best_model_at_end {
        // Hugging Face's rules: the best is chosen among saved checkpoints.
        let same = matches!(
            (c.eval_strategy, c.save_strategy),
            (EvalStrategy::Epoch, SaveStrategy::Epoch) | (EvalStrategy::Steps, SaveStrategy::Steps)
        );
        p.need(
                same,
                format!(
                    "load_best_model_at_end requires save_strategy ({}) and eval_strategy ({}) to match, both epoch or both steps",
                    format!("{:?}", c.save_strategy).to_lowercase(),
                    format!("{:?}", c.eval_strategy).to_lowercase()
                ),
            );
        p.need(
                !same
                    || c.eval_strategy != EvalStrategy::Steps
                    || c.eval_every() == 0
                    || c.save_steps.is_multiple_of(c.eval_every()),
                format!(
                    "load_best_model_at_end requires save_steps ({}) to be a round multiple of eval_steps ({})",
                    c.save_steps,
                    c.eval_every()
                ),
            );
    }
    p.need(
        c.save_total_limit != Some(0),
        "save_total_limit must be at least 1, or None to keep all".into(),
    );
}

/// How answers are decoded: n-best, span length, the SQuAD 2.0 null threshold.
fn check_answers(c: &RunConfig, p: &mut Problems) {
    p.need(
        c.null_score_diff_threshold.is_finite(),
        format!(
            "null_score_diff_threshold must be a finite number, got {}",
            c.null_score_diff_threshold
        ),
    );
    p.need(
        c.n_best_size > 0,
        "n_best_size must be at least 1, got 0".into(),
    );
    p.need(
        c.max_answer_length > 0,
        "max_answer_length must be at least 1, got 0".into(),
    );
}

/// The data: article ranges, question counts, and files that exist.
fn check_data(c: &RunConfig, p: &mut Problems) {
    for (name, range) in [
        ("data.train_articles", c.data.train_articles),
        ("data.eval_articles", c.data.eval_articles),
    ] {
        if let Some((from, to)) = range {
            p.need(
                from < to,
                format!("{name} ({from}, {to}) must have from < to"),
            );
        }
    }
    if let (Some((a, b)), Some((c0, d))) = (c.data.train_articles, c.data.eval_articles) {
        p.need(
            c.data.train != c.data.validation || b <= c0 || d <= a,
            format!(
                "data.train_articles ({a}, {b}) and data.eval_articles ({c0}, {d}) share \
                     articles of the same file: the evaluation would score questions the \
                     model trained on"
            ),
        );
    }
    p.need(
        c.data.max_train_samples != Some(0),
        "data.max_train_samples must be at least 1 when set, got 0".into(),
    );
    p.need(
        c.data.max_context_chars > 0,
        "data.max_context_chars must be at least 1, got 0".into(),
    );
    p.need(
        c.data.max_eval_samples != Some(0),
        "data.max_eval_samples must be at least 1 when set, got 0".into(),
    );
    for (field, source) in [
        ("data.train", &c.data.train),
        ("data.validation", &c.data.validation),
    ] {
        if let DataLocation::File(path) = source.location() {
            // Name what the config said when it was resolved (`data:FILE`).
            let given = source.as_str();
            let from = if Path::new(given) == path {
                String::new()
            } else {
                format!(" (from {given:?})")
            };
            p.need(
                path.is_file(),
                format!("{field}: file {} does not exist{from}", path.display()),
            );
        }
    }
}

/// What is known to fail on the device before any data loads.
fn check_device(c: &RunConfig, p: &mut Problems) {
    // On an explicit CPU the dtype is known to fail before any data loads.
    if c.device == super::Device::Cpu {
        p.need(
                c.dtype != super::DType::Bf16,
                "dtype bf16 needs a CUDA device (device is cpu): candle's CPU matrix product has no bf16; use f32".into(),
            );
        p.need(
                c.dtype != super::DType::F16 || c.graph == super::Graph::Generic,
                "dtype f16 on device cpu runs only with graph: generic (a check of the casts); train with f32".into(),
            );
    }
}
