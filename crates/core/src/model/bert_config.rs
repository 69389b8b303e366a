//! A model's `config.json`, read by its family (`model_type`) with Hugging
//! Face's defaults for absent keys, into the one encoder config every family
//! shares; and written back in the family's own keys.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::family::Family;

/// The GELU a config's `hidden_act` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// `x · Φ(x)`: BERT's `gelu`.
    GeluErf,
    /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`: `gelu_new`.
    GeluTanh,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: String,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub initializer_range: f64,
    pub pad_token_id: usize,
    pub model_type: String,
    /// ELECTRA's and ALBERT's embedding width, projected to `hidden_size`
    /// (ELECTRA's only when it differs, ALBERT's always).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_size: Option<usize>,
    /// ALBERT's layer groups: consecutive layers share one group's weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_hidden_groups: Option<usize>,
    /// ALBERT's layers per group; squadlab trains 1, as every released ALBERT has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_group_num: Option<usize>,
    /// DistilBERT's dropout before the QA head (`qa_dropout`); the other
    /// families have none. Written back by `family_keys`.
    #[serde(skip)]
    pub qa_dropout: f64,
    /// Keys we don't use are kept, so a saved config.json loses nothing.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl BertConfig {
    /// Refuses a tokenizer with ids beyond the embedding table, or windows
    /// longer than the learned positions (`what` names the length's origin).
    pub fn check_inputs(
        &self,
        tokenizer: &crate::data::QaTokenizer,
        max_length: usize,
        what: &str,
    ) -> Result<()> {
        if tokenizer.vocab_size > self.vocab_size {
            bail!(
                "tokenizer {} has {} tokens but the model's vocab_size is {}: they do not belong together",
                tokenizer.origin.display(),
                tokenizer.vocab_size,
                self.vocab_size
            );
        }
        if max_length > self.longest_window() {
            let offset = match self.family() {
                Family::Roberta => format!(
                    " less RoBERTa's first position, {}: {} tokens at most",
                    self.pad_token_id + 1,
                    self.longest_window()
                ),
                _ => String::new(),
            };
            bail!(
                "{what} {max_length} exceeds the model's max_position_embeddings ({}){offset}",
                self.max_position_embeddings
            );
        }
        Ok(())
    }

    pub fn family(&self) -> Family {
        Family::from_model_type(&self.model_type).unwrap_or_default()
    }

    /// The longest window the positions cover: RoBERTa's first position
    /// is `pad_token_id + 1`, so 514 positions hold 512 tokens.
    pub fn longest_window(&self) -> usize {
        match self.family() {
            Family::Roberta => self
                .max_position_embeddings
                .saturating_sub(self.pad_token_id + 1),
            _ => self.max_position_embeddings,
        }
    }

    /// The embeddings' width: ELECTRA's `embedding_size`, else `hidden_size`.
    pub fn embedding_width(&self) -> usize {
        self.embedding_size.unwrap_or(self.hidden_size)
    }

    /// The GELU of `hidden_act`: the erf form, or the tanh approximation
    /// (`gelu_new`, ALBERT's).
    pub fn activation(&self) -> Activation {
        match self.hidden_act.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            _ => Activation::GeluErf,
        }
    }

    /// The layer group layer `l` uses: its own, but in ALBERT, whose
    /// `num_hidden_groups` groups each serve consecutive layers.
    pub fn layer_group(&self, l: usize) -> usize {
        match self.num_hidden_groups {
            Some(groups) if self.family().shares_layers() => {
                l * groups / self.num_hidden_layers.max(1)
            }
            _ => l,
        }
    }
}

impl Default for BertConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: "gelu".into(),
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            initializer_range: 0.02,
            pad_token_id: 0,
            model_type: "bert".into(),
            embedding_size: None,
            num_hidden_groups: None,
            inner_group_num: None,
            qa_dropout: 0.0,
            extra: Default::default(),
        }
    }
}

impl BertConfig {
    /// The published configs of the models the paper reports, by hub id, so
    /// a census or a memory plan needs no download.
    pub fn known(model_id: &str) -> Option<Self> {
        let base = Self::default();
        // (hidden, layers, heads, intermediate) of the large sizes.
        let large = (1024, 24, 16, 4096);
        let id = model_id.trim_start_matches("google-bert/");
        let id = id.rsplit_once('/').map_or(id, |(org, name)| {
            // Organisations whose names the hub ids may carry.
            match org {
                "FacebookAI" | "distilbert" | "albert" => name,
                _ => id,
            }
        });
        Some(match id {
            "bert-base-uncased" => base,
            "bert-large-uncased" => base.sized(large),
            "roberta-base" => Self::roberta(base),
            "roberta-large" => Self::roberta(base).sized(large),
            "distilbert-base-uncased" | "distilbert-base-uncased-distilled-squad" => Self {
                num_hidden_layers: 6,
                type_vocab_size: 0,
                qa_dropout: 0.1,
                model_type: "distilbert".into(),
                ..base
            },
            "albert-base-v2" => Self::albert(base),
            "albert-large-v2" => Self::albert(base).sized(large),
            "albert-xlarge-v2" => Self::albert(base).sized((2048, 24, 16, 8192)),
            "albert-xxlarge-v2" => Self::albert(base).sized((4096, 12, 64, 16384)),
            "google/electra-base-discriminator" => Self {
                embedding_size: Some(768),
                model_type: "electra".into(),
                ..base
            },
            "google/electra-large-discriminator" => Self {
                embedding_size: Some(1024),
                model_type: "electra".into(),
                ..base.sized(large)
            },
            _ => return None,
        })
    }

    /// This config at another size: hidden width, layers, heads and the
    /// feed-forward width.
    fn sized(self, (hidden, layers, heads, intermediate): (usize, usize, usize, usize)) -> Self {
        Self {
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: intermediate,
            ..self
        }
    }

    fn albert(base: Self) -> Self {
        Self {
            vocab_size: 30000,
            embedding_size: Some(128),
            num_hidden_groups: Some(1),
            inner_group_num: Some(1),
            hidden_act: "gelu_new".into(),
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            model_type: "albert".into(),
            ..base
        }
    }

    fn roberta(base: Self) -> Self {
        Self {
            vocab_size: 50265,
            max_position_embeddings: 514,
            type_vocab_size: 1,
            layer_norm_eps: 1e-5,
            pad_token_id: 1,
            model_type: "roberta".into(),
            ..base
        }
    }

    // `load`, `from_json` and `to_json` are in family_keys.rs, by family.

    pub fn validate(&self) -> Result<()> {
        if self.hidden_size == 0
            || self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            bail!(
                "hidden_size ({}) must be a positive multiple of num_attention_heads ({})",
                self.hidden_size,
                self.num_attention_heads
            );
        }
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                bail!("{name} must be positive");
            }
        }
        let family = self.family();
        if family.has_token_types() && self.type_vocab_size == 0 {
            bail!("type_vocab_size must be positive");
        }
        if self.embedding_size == Some(0) {
            bail!("embedding_size must be positive");
        }
        if self.pad_token_id >= self.vocab_size {
            bail!(
                "pad_token_id {} is outside the vocabulary ({} tokens)",
                self.pad_token_id,
                self.vocab_size
            );
        }
        if !matches!(
            self.hidden_act.as_str(),
            "gelu" | "gelu_python" | "gelu_new" | "gelu_pytorch_tanh"
        ) {
            bail!(
                "hidden_act {:?} is not supported: squadlab implements gelu (erf) and gelu_new (tanh)",
                self.hidden_act
            );
        }
        if family.shares_layers() {
            let groups = self.num_hidden_groups.unwrap_or(1);
            if groups == 0 || !self.num_hidden_layers.is_multiple_of(groups) {
                bail!(
                    "num_hidden_groups ({groups}) must divide num_hidden_layers ({})",
                    self.num_hidden_layers
                );
            }
            if self.inner_group_num.unwrap_or(1) != 1 {
                bail!(
                    "inner_group_num {} is not supported: squadlab trains ALBERT with one layer \
                     per group, as every released ALBERT has",
                    self.inner_group_num.unwrap_or(1)
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offered_hub_model_has_its_config_built_in() {
        for f in Family::ALL {
            for id in f.hub_models() {
                let c = BertConfig::known(id).unwrap_or_else(|| panic!("{id}"));
                assert_eq!(c.family(), f, "{id}");
                c.validate().unwrap();
            }
        }
    }
}
