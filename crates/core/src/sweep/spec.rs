//! A sweep file (RON): a base config and the axes that vary it.
//!
//! ```ron
//! Sweep(
//!     name: "minilm lr x epochs",
//!     base: File("experiments/minilm-300q.ron"),
//!     grid: {"learning_rate": [5e-5, 3e-5], "num_train_epochs": [2.0, 3.0]},
//!     random: {"warmup_ratio": Uniform(0.0, 0.1), "weight_decay": LogUniform(1e-4, 1e-1)},
//!     trials: 4,
//!     seed: 0,
//!     seeds: [42, 43, 44],
//!     run_cap: Some(40),
//! )
//! ```
//!
//! Axis names are `RunConfig` fields, dotted into nested ones
//! (`data.max_train_samples`). Points are the grid's product, times `trials`
//! random draws when there are random axes, times the seeds.

use crate::config::RunConfig;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub name: String,
    pub base: Base,
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<ron::Value>>,
    #[serde(default)]
    pub random: BTreeMap<String, Draw>,
    /// Random points to draw now (`sweep add` draws more).
    #[serde(default = "one")]
    pub trials: usize,
    /// The random stream's seed.
    #[serde(default)]
    pub seed: u64,
    /// Each point once per training seed (the `seed` field); empty: the base's.
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// The most runs the sweep may hold, seeds included.
    #[serde(default)]
    pub run_cap: Option<usize>,
}

fn one() -> usize {
    1
}

/// The config the axes vary: a file (relative to the sweep file) or inline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Base {
    File(PathBuf),
    Inline(Box<RunConfig>),
}

/// How a random axis draws.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Draw {
    Uniform(f64, f64),
    LogUniform(f64, f64),
    Choice(Vec<ron::Value>),
}

impl Sweep {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sweep {}", path.display()))?;
        let sweep: Sweep = ron::Options::default().from_str(&text).map_err(|e| {
            anyhow!(
                "{}:{}:{}: {}",
                path.display(),
                e.span.start.line,
                e.span.start.col,
                e.code
            )
        })?;
        if sweep.name.trim().is_empty() {
            bail!("{}: the sweep needs a name", path.display());
        }
        Ok(sweep)
    }

    /// The base config, a file read relative to `dir` (the sweep file's folder).
    pub fn base_config(&self, dir: &Path) -> Result<RunConfig> {
        match &self.base {
            Base::Inline(c) => Ok((**c).clone()),
            Base::File(p) => {
                let path = if p.is_absolute() {
                    p.clone()
                } else {
                    dir.join(p)
                };
                RunConfig::load(&path)
            }
        }
    }

    /// The id the store files it under: its name, lowercased, with runs of
    /// other characters turned into single dashes.
    pub fn id(&self) -> String {
        let mut id = String::new();
        for c in self.name.trim().chars() {
            if c.is_ascii_alphanumeric() {
                id.push(c.to_ascii_lowercase());
            } else if !id.ends_with('-') {
                id.push('-');
            }
        }
        id.trim_matches('-').to_string()
    }
}
