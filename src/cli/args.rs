//! Argument groups shared by several commands.

use crate::data::WindowParams;
use crate::eval::PostprocessParams;
use crate::report::significance::BootstrapOptions;
use anyhow::{bail, Result};
use clap::Args;

/// How bootstrap intervals are drawn (`diff`, `breakdown`).
#[derive(Args)]
pub struct BootstrapArgs {
    /// Bootstrap resamples for every interval.
    #[arg(long, default_value_t = BootstrapOptions::default().resamples)]
    pub resamples: usize,
    /// The bootstrap's seed: the same seed gives the same intervals.
    #[arg(long, default_value_t = BootstrapOptions::default().seed)]
    pub bootstrap_seed: u64,
}

impl BootstrapArgs {
    pub fn options(&self) -> Result<BootstrapOptions> {
        if self.resamples < 100 {
            bail!(
                "--resamples {}: a 95% interval needs at least 100",
                self.resamples
            );
        }
        Ok(BootstrapOptions {
            resamples: self.resamples,
            seed: self.bootstrap_seed,
        })
    }
}

/// How questions and contexts are cut into windows.
#[derive(Args)]
pub struct WindowArgs {
    /// Tokens per window, question and special tokens included.
    #[arg(long, default_value_t = 384)]
    pub max_length: usize,
    /// Tokens shared by consecutive windows of a long context.
    #[arg(long, default_value_t = 128)]
    pub stride: usize,
    /// Longest context accepted, in characters; a longer one is an error.
    #[arg(long, default_value_t = crate::config::DEFAULT_MAX_CONTEXT_CHARS)]
    pub max_context_chars: usize,
    /// SQuAD 2.0: keep questions without an answer, and let the answer be "".
    #[arg(long)]
    pub version_2_with_negative: bool,
}

impl WindowArgs {
    pub fn params(&self) -> WindowParams {
        WindowParams {
            max_length: self.max_length,
            stride: self.stride,
        }
    }
}

/// How logits become answers.
#[derive(Args)]
pub struct AnswerArgs {
    /// Start and end positions considered per window.
    #[arg(long, default_value_t = 20)]
    pub n_best: usize,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 30)]
    pub max_answer_length: usize,
    /// With --version-2-with-negative: answer "" when the null score beats
    /// the best span by more than this.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub null_score_diff_threshold: f64,
}

impl AnswerArgs {
    /// The post-processing; `version_2` lets it answer "".
    pub fn params(&self, version_2: bool) -> Result<PostprocessParams> {
        if self.n_best == 0 || self.max_answer_length == 0 {
            bail!("--n-best and --max-answer-length must be at least 1");
        }
        if !self.null_score_diff_threshold.is_finite() {
            bail!("--null-score-diff-threshold must be a finite number");
        }
        Ok(PostprocessParams {
            n_best_size: self.n_best,
            max_answer_length: self.max_answer_length,
            null_score_diff_threshold: version_2.then_some(self.null_score_diff_threshold),
        })
    }
}

/// Which store holds the runs.
#[derive(Args, Default)]
pub struct StoreArgs {
    /// The store holding `runs/` (default: $SQUADLAB_HOME, else experiments/).
    #[arg(long)]
    pub store: Option<std::path::PathBuf>,
}

impl StoreArgs {
    pub fn open(&self) -> crate::store::Store {
        crate::store::Store::open(self.store.as_deref())
    }
}

/// Tags and notes kept with a run.
#[derive(Args)]
pub struct LabelArgs {
    /// A tag for the run; repeat for several.
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Free-text notes kept with the run.
    #[arg(long, default_value = "")]
    pub notes: String,
}
