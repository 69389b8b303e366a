//! Argument groups shared by several commands.

use crate::data::WindowParams;
use crate::eval::PostprocessParams;
use anyhow::{bail, Result};
use clap::Args;

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
}

impl AnswerArgs {
    pub fn params(&self) -> Result<PostprocessParams> {
        if self.n_best == 0 || self.max_answer_length == 0 {
            bail!("--n-best and --max-answer-length must be at least 1");
        }
        Ok(PostprocessParams {
            n_best_size: self.n_best,
            max_answer_length: self.max_answer_length,
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
