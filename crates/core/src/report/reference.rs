//! Published results (`assets/reference_results.ron`), each with its source.

use crate::family::Family;
use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

const REFERENCE_RON: &str = include_str!("../../../../assets/reference_results.ron");

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// A family's paper row at one size: what its runs' deltas are
    /// measured against.
    Paper,
    #[default]
    Reference,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub id: String,
    pub label: String,
    /// The model family the row reports (BERT for rows from before families).
    #[serde(default)]
    pub family: Family,
    /// `base`, `large`, `xlarge` or `xxlarge`: which runs this row compares with.
    pub size: String,
    /// The SQuAD version it was scored on.
    #[serde(default = "squad_v1")]
    pub version: String,
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

    /// The paper row of this family at this size, on this SQuAD version
    /// ("1.1" or "2.0").
    pub fn paper_for(&self, family: Family, size: &str, version: &str) -> Option<&Reference> {
        self.results.iter().find(|r| {
            r.role == Role::Paper && r.family == family && r.size == size && r.version == version
        })
    }
}

pub use crate::data::{SQUAD_V1, SQUAD_V2};

fn squad_v1() -> String {
    SQUAD_V1.into()
}

/// The size a model id or path says (`xxlarge`, `xlarge`, `large`, `base`),
/// longest first, so ALBERT's `xxlarge` is not read as `large`.
pub fn model_size(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_lowercase();
    ["xxlarge", "xlarge", "large", "base"]
        .into_iter()
        .find(|size| m.contains(size))
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
        assert_eq!(
            refs.paper_for(Family::Bert, "large", SQUAD_V1).unwrap().id,
            "paper-large"
        );
        // Each family's published rows, with its paper row at each size.
        for (family, size, id, em, f1) in [
            (
                Family::Roberta,
                "base",
                "paper-roberta-base",
                Some(84.6),
                Some(91.5),
            ),
            (
                Family::Roberta,
                "large",
                "paper-roberta-large",
                Some(88.9),
                Some(94.6),
            ),
            (
                Family::DistilBert,
                "base",
                "paper-distilbert-base",
                Some(77.7),
                Some(85.8),
            ),
            (
                Family::Electra,
                "base",
                "paper-electra-base",
                Some(86.8),
                None,
            ),
            (
                Family::Electra,
                "large",
                "paper-electra-large",
                Some(89.7),
                None,
            ),
            (
                Family::Albert,
                "base",
                "paper-albert-base-v2",
                Some(83.2),
                Some(90.2),
            ),
            (
                Family::Albert,
                "xxlarge",
                "paper-albert-xxlarge-v2",
                Some(89.1),
                Some(94.6),
            ),
        ] {
            let row = refs
                .paper_for(family, size, SQUAD_V1)
                .unwrap_or_else(|| panic!("{id}"));
            assert_eq!((row.id.as_str(), row.exact_match, row.f1), (id, em, f1));
            assert_eq!(row.version, "1.1");
        }
        assert_eq!(model_size("albert-xxlarge-v2"), Some("xxlarge"));
        assert_eq!(model_size("google-bert/bert-base-uncased"), Some("base"));
        assert_eq!(
            model_size("bert-large-uncased-whole-word-masking"),
            Some("large")
        );
        assert_eq!(model_size("sentence-transformers/all-MiniLM-L6-v2"), None);
    }
}
