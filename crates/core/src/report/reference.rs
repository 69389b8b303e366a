//! Published results (`assets/reference_results.ron`), each with its source.

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

const REFERENCE_RON: &str = include_str!("../../../../assets/reference_results.ron");

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A BERT paper row: what deltas are measured against.
    Paper,
    #[default]
    Reference,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub id: String,
    pub label: String,
    /// `base` or `large`: which runs this row compares with.
    pub size: String,
    #[serde(default)]
    pub role: Role,
    #[serde(default)]
    pub exact_match: Option<f64>,
    #[serde(default)]
    pub f1: Option<f64>,
    /// Standard deviation over `seeds` runs, where the source gives one.
    #[serde(default)]
    pub f1_std: Option<f64>,
    #[serde(default)]
    pub seeds: Option<u32>,
    #[serde(default)]
    pub train_runtime: Option<f64>,
    #[serde(default)]
    pub hardware: Option<String>,
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceResults {
    pub results: Vec<Reference>,
}

impl ReferenceResults {
    /// The table compiled into the binary.
    pub fn builtin() -> Self {
        Self::parse(REFERENCE_RON, "assets/reference_results.ron")
            .expect("the bundled reference results parse (tested)")
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        ron::Options::default().from_str(text).map_err(|e| {
            anyhow!(
                "{origin}:{}:{}: {}",
                e.span.start.line,
                e.span.start.col,
                e.code
            )
        })
    }

    pub fn get(&self, id: &str) -> Option<&Reference> {
        self.results.iter().find(|r| r.id == id)
    }

    /// The paper row for a model of this size.
    pub fn paper_for(&self, size: &str) -> Option<&Reference> {
        self.results
            .iter()
            .find(|r| r.role == Role::Paper && r.size == size)
    }
}

/// `large` or `base` from a model id or path, if it says.
pub fn model_size(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase();
    if m.contains("large") {
        Some("large")
    } else if m.contains("base") {
        Some("base")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_table_holds_the_published_numbers() {
        let refs = ReferenceResults::builtin();
        let get = |id: &str| refs.get(id).unwrap_or_else(|| panic!("{id}"));
        let pair = |id: &str| (get(id).exact_match, get(id).f1);
        assert_eq!(pair("paper-base"), (Some(80.8), Some(88.5)));
        assert_eq!(pair("paper-large"), (Some(84.1), Some(90.9)));
        assert_eq!(pair("notebook-base"), (Some(79.91), Some(87.69)));
        assert_eq!(pair("notebook-large"), (Some(83.26), Some(90.46)));
        assert_eq!(get("notebook-base").train_runtime, Some(4149.0));
        assert_eq!(get("notebook-large").train_runtime, Some(12761.0));
        assert_eq!(pair("google-base"), (Some(81.25), Some(88.41)));
        assert_eq!(pair("hf-example-base"), (Some(81.22), Some(88.52)));
        let nvidia = get("nvidia-large");
        assert_eq!(
            (nvidia.f1, nvidia.f1_std, nvidia.seeds),
            (Some(90.68), Some(0.16), Some(10))
        );
        assert!(refs.results.iter().all(|r| !r.source.is_empty()));
        assert_eq!(refs.paper_for("large").unwrap().id, "paper-large");
        assert_eq!(model_size("google-bert/bert-base-uncased"), Some("base"));
        assert_eq!(
            model_size("bert-large-uncased-whole-word-masking"),
            Some("large")
        );
        assert_eq!(model_size("sentence-transformers/all-MiniLM-L6-v2"), None);
    }
}
