//! Turning CLI arguments into data and tokenizers, shared by the commands.

use crate::config::{DataSource, ModelSource};
use crate::data::{load_source, LoadOptions, QaTokenizer, Split, SquadDataset};
use crate::model::locate_model;
use anyhow::{anyhow, bail, Result};
use std::path::Path;

pub fn load_data(
    spec: &str,
    split: Split,
    limit: Option<usize>,
    skip_bad_records: bool,
    max_context_chars: usize,
    version_2_with_negative: bool,
) -> Result<SquadDataset> {
    if max_context_chars == 0 {
        bail!("--max-context-chars must be at least 1");
    }
    let source =
        DataSource::try_from(spec.to_string()).map_err(|e| anyhow!("--data {spec:?}: {e}"))?;
    let data = load_source(
        &source,
        split,
        &LoadOptions {
            limit,
            skip_bad_records,
            max_context_chars,
            version_2_with_negative,
            articles: None,
        },
    )?;
    if !data.skipped.is_empty() {
        eprintln!(
            "skipped {} bad records of {}; first: {}",
            data.skipped.len(),
            data.origin,
            data.skipped[0]
        );
    }
    Ok(data)
}

/// A tokenizer file or folder, or any model source (`pip:…`, a hub id).
pub fn load_tokenizer(spec: &str) -> Result<QaTokenizer> {
    let path = Path::new(spec);
    if path.exists() {
        return QaTokenizer::from_path(path);
    }
    let source = ModelSource::try_from(spec.to_string())
        .map_err(|e| anyhow!("--tokenizer {spec:?}: {e}"))?;
    let files = locate_model(&source, true)?;
    QaTokenizer::from_path(&files.tokenizer())
}
