//! A BERT `config.json`, with Hugging Face's defaults for absent keys.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

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
        if max_length > self.max_position_embeddings {
            bail!(
                "{what} {max_length} exceeds the model's max_position_embeddings ({})",
                self.max_position_embeddings
            );
        }
        Ok(())
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
            extra: Default::default(),
        }
    }
}

impl BertConfig {
    /// The published configs of the models the paper reports, by hub id, so
    /// a census or a memory plan needs no download.
    pub fn known(model_id: &str) -> Option<Self> {
        let base = Self::default();
        match model_id.trim_start_matches("google-bert/") {
            "bert-base-uncased" => Some(base),
            "bert-large-uncased" => Some(Self {
                hidden_size: 1024,
                num_hidden_layers: 24,
                num_attention_heads: 16,
                intermediate_size: 4096,
                ..base
            }),
            _ => None,
        }
    }

    pub fn load(path: &Path) -> Result<Self> {
        let origin = path.display();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read model config {origin}"))?;
        let config: Self = serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "{origin}:{}:{}: bad model config: {e}",
                e.line(),
                e.column()
            )
        })?;
        config.validate().map_err(|e| anyhow!("{origin}: {e}"))?;
        Ok(config)
    }

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
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                bail!("{name} must be positive");
            }
        }
        if !matches!(self.hidden_act.as_str(), "gelu" | "gelu_python") {
            bail!(
                "hidden_act {:?} is not supported: squadlab implements BERT's gelu (erf)",
                self.hidden_act
            );
        }
        Ok(())
    }
}
