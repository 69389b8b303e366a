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
//!
//! A comparison of families needs one base per family, each with its own
//! published hyperparameters: `base: Each({"roberta-base": "../roberta-base-squad.ron", …})`
//! makes `base` an axis over the labelled configs, and every other axis
//! applies to each of them.

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

/// The config the axes vary: a file (relative to the sweep file) or inline;
/// or several, by label, each a value of the `base` axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Base {
    File(PathBuf),
    Inline(Box<RunConfig>),
    Each(BTreeMap<String, PathBuf>),
    EachInline(BTreeMap<String, RunConfig>),
}

/// The axis that picks one of several bases.
pub const BASE_AXIS: &str = "base";

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

    /// The base configs by label (one, labelled "", for a single base),
    /// files read relative to `dir` (the sweep file's folder).
    pub fn base_configs(&self, dir: &Path) -> Result<BTreeMap<String, RunConfig>> {
        let load = |p: &Path| {
            let path = if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            };
            RunConfig::load(&path)
        };
        let mut out = BTreeMap::new();
        match &self.base {
            Base::Inline(c) => {
                out.insert(String::new(), (**c).clone());
            }
            Base::File(p) => {
                out.insert(String::new(), load(p)?);
            }
            Base::EachInline(configs) => out.clone_from(configs),
            Base::Each(files) => {
                if files.is_empty() {
                    bail!("base: Each({{}}) names no config");
                }
                for (label, p) in files {
                    if label.trim().is_empty() {
                        bail!("base: Each has an empty label (for {})", p.display());
                    }
                    let config = load(p).with_context(|| format!("base {label:?}"))?;
                    out.insert(label.clone(), config);
                }
            }
        }
        Ok(out)
    }

    /// The labels of several bases (the `base` axis's values); empty for one.
    pub fn base_labels(&self) -> Vec<String> {
        match &self.base {
            Base::Each(files) => files.keys().cloned().collect(),
            Base::EachInline(configs) => configs.keys().cloned().collect(),
            Base::File(_) | Base::Inline(_) => Vec::new(),
        }
    }

    /// The same sweep with its bases read and inlined, as the store keeps it.
    pub fn inlined(mut self, dir: &Path) -> Result<Self> {
        let mut configs = self.base_configs(dir)?;
        self.base = match self.base {
            Base::File(_) | Base::Inline(_) => match configs.remove("") {
                Some(config) => Base::Inline(Box::new(config)),
                None => bail!("the sweep's base config is missing"),
            },
            Base::Each(_) | Base::EachInline(_) => Base::EachInline(configs),
        };
        Ok(self)
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
