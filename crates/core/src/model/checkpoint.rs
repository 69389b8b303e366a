//! A model folder in Hugging Face's layout: config.json, weights, tokenizer.

use super::{BertConfig, BertQa, LoadReport, Params};
use crate::fsutil::{temp_path, write_atomically};
use anyhow::{Context, Result};
use candle_core::Device;
use std::path::Path;

pub struct LoadedModel {
    pub config: BertConfig,
    pub params: Params,
    pub model: BertQa,
    pub report: LoadReport,
}

/// Loads a family's QA model from a folder holding config.json and weights.
/// `seed` initialises a missing QA head.
pub fn load_qa_model(dir: &Path, device: &Device, seed: u64) -> Result<LoadedModel> {
    let config = BertConfig::load(&dir.join("config.json"))?;
    let (params, report) = Params::load(dir, &config, device, seed)?;
    let model = BertQa::new(config.clone(), &params)?;
    Ok(LoadedModel {
        config,
        params,
        model,
        report,
    })
}

/// A tokenizer file held in memory: saving a model never depends on where the
/// tokenizer came from (a resumed run's source checkpoint may be rotated away).
#[derive(Clone, Debug)]
pub struct TokenizerFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl TokenizerFile {
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read tokenizer {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tokenizer.json".into());
        Ok(Self { name, bytes })
    }
}

/// Saves the family's `*ForQuestionAnswering` folder that Python's
/// transformers loads: model.safetensors, config.json in the family's keys
/// with `architectures`, and the tokenizer.
pub fn save_pretrained(
    dir: &Path,
    config: &BertConfig,
    params: &Params,
    tokenizer: Option<&TokenizerFile>,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let json = config.to_json()?;
    let weights = dir.join("model.safetensors");
    let staged = temp_path(&weights);
    params.save_safetensors(&staged)?;
    std::fs::rename(&staged, &weights)
        .with_context(|| format!("cannot write {}", weights.display()))?;
    write_atomically(&dir.join("config.json"), &serde_json::to_vec_pretty(&json)?)?;
    if let Some(t) = tokenizer {
        write_atomically(&dir.join(&t.name), &t.bytes)?;
    }
    Ok(())
}
