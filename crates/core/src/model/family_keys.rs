//! Each family's config.json keys, read into the shared encoder config and
//! written back. BERT, RoBERTa and ELECTRA share BERT's keys (with their
//! own defaults); DistilBERT names everything differently.

use super::BertConfig;
use crate::family::Family;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::Path;

impl BertConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let origin = path.display();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read model config {origin}"))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "{origin}:{}:{}: bad model config: {e}",
                e.line(),
                e.column()
            )
        })?;
        Self::from_json(json).map_err(|e| anyhow!("{origin}: {e}"))
    }

    /// Reads a config.json's keys by its family (`model_type`). A config
    /// without `model_type` is BERT's only if it has BERT's keys.
    pub fn from_json(json: serde_json::Value) -> Result<Self> {
        let serde_json::Value::Object(keys) = json else {
            bail!("bad model config: not a JSON object");
        };
        let family = match keys.get("model_type") {
            None => {
                let bert_keys = ["hidden_size", "num_hidden_layers", "num_attention_heads"];
                if !bert_keys.iter().all(|k| keys.contains_key(*k)) {
                    bail!(
                        "bad model config: no model_type, and not BERT's keys ({}); \
                         set model_type to one of: {}",
                        bert_keys.join(", "),
                        Family::supported()
                    );
                }
                Family::Bert
            }
            Some(t) => {
                let t = t.as_str().unwrap_or_default();
                Family::from_model_type(t).ok_or_else(|| {
                    anyhow!(
                        "model_type {t:?} is not supported: squadlab trains {}",
                        Family::supported()
                    )
                })?
            }
        };
        let config = read(family, keys)?;
        config.validate()?;
        Ok(config)
    }

    /// The config.json of a saved `*ForQuestionAnswering` folder, in the
    /// family's own keys.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        write(self)
    }
}

/// Reads `keys` as `family`'s config; absent keys take that family's
/// Hugging Face defaults.
pub fn read(family: Family, keys: Map<String, Value>) -> Result<BertConfig> {
    let mut config = match family {
        Family::DistilBert => from_distilbert(keys)?,
        _ => {
            let mut merged = defaults(family);
            merged.extend(keys);
            from_value::<BertConfig>(Value::Object(merged))?
        }
    };
    config.model_type = family.model_type().into();
    // Keys that mean something to one family only are kept as read for
    // the others.
    if !matches!(family, Family::Electra | Family::Albert) {
        if let Some(e) = config.embedding_size.take() {
            config.extra.insert("embedding_size".into(), json!(e));
        }
    }
    if family != Family::Albert {
        for (key, v) in [
            ("num_hidden_groups", config.num_hidden_groups.take()),
            ("inner_group_num", config.inner_group_num.take()),
        ] {
            if let Some(v) = v {
                config.extra.insert(key.into(), json!(v));
            }
        }
    }
    Ok(config)
}

/// The family's keys for `config`, with `architectures` naming its QA class.
pub fn write(config: &BertConfig) -> Result<Value> {
    let family = config.family();
    let mut json = match family {
        Family::DistilBert => to_distilbert(config)?,
        _ => serde_json::to_value(config)?,
    };
    json["architectures"] = json!([family.architecture()]);
    json["model_type"] = json!(family.model_type());
    // The weights squadlab writes are f32, whatever the source folder held.
    for key in ["dtype", "torch_dtype"] {
        if json.get(key).is_some() {
            json[key] = json!("float32");
        }
    }
    Ok(json)
}

fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| anyhow!("bad model config: {e}"))
}

/// The keys transformers' config classes default, where they differ from BERT's.
fn defaults(family: Family) -> Map<String, Value> {
    let v = match family {
        Family::Roberta => json!({"pad_token_id": 1, "vocab_size": 50265}),
        Family::Electra => json!({
            "embedding_size": 128, "hidden_size": 256, "num_attention_heads": 4,
            "intermediate_size": 1024,
        }),
        Family::Albert => json!({
            "vocab_size": 30000, "embedding_size": 128, "hidden_size": 4096,
            "num_hidden_layers": 12, "num_hidden_groups": 1, "num_attention_heads": 64,
            "intermediate_size": 16384, "inner_group_num": 1, "hidden_act": "gelu_new",
            "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        }),
        _ => json!({}),
    };
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// DistilBERT's config.json keys (`DistilBertConfig`'s defaults).
#[derive(Serialize, Deserialize)]
#[serde(default)]
struct DistilBertKeys {
    vocab_size: usize,
    max_position_embeddings: usize,
    sinusoidal_pos_embds: bool,
    n_layers: usize,
    n_heads: usize,
    dim: usize,
    hidden_dim: usize,
    dropout: f64,
    attention_dropout: f64,
    activation: String,
    initializer_range: f64,
    qa_dropout: f64,
    pad_token_id: usize,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

impl Default for DistilBertKeys {
    fn default() -> Self {
        Self {
            vocab_size: 30522,
            max_position_embeddings: 512,
            sinusoidal_pos_embds: false,
            n_layers: 6,
            n_heads: 12,
            dim: 768,
            hidden_dim: 3072,
            dropout: 0.1,
            attention_dropout: 0.1,
            activation: "gelu".into(),
            initializer_range: 0.02,
            qa_dropout: 0.1,
            pad_token_id: 0,
            extra: Map::new(),
        }
    }
}

/// DistilBERT's LayerNorms hard-code this epsilon.
const DISTILBERT_EPS: f64 = 1e-12;

fn from_distilbert(keys: Map<String, Value>) -> Result<BertConfig> {
    let d: DistilBertKeys = from_value(Value::Object(keys))?;
    if d.sinusoidal_pos_embds {
        bail!(
            "sinusoidal_pos_embds is true: squadlab trains DistilBERT with learned position \
             embeddings only (as distilbert-base-uncased has them)"
        );
    }
    let mut extra = d.extra;
    extra.remove("model_type");
    Ok(BertConfig {
        vocab_size: d.vocab_size,
        hidden_size: d.dim,
        num_hidden_layers: d.n_layers,
        num_attention_heads: d.n_heads,
        intermediate_size: d.hidden_dim,
        hidden_act: d.activation,
        hidden_dropout_prob: d.dropout,
        attention_probs_dropout_prob: d.attention_dropout,
        max_position_embeddings: d.max_position_embeddings,
        type_vocab_size: 0,
        layer_norm_eps: DISTILBERT_EPS,
        initializer_range: d.initializer_range,
        pad_token_id: d.pad_token_id,
        model_type: Family::DistilBert.model_type().into(),
        embedding_size: None,
        num_hidden_groups: None,
        inner_group_num: None,
        qa_dropout: d.qa_dropout,
        extra,
    })
}

fn to_distilbert(c: &BertConfig) -> Result<Value> {
    let keys = DistilBertKeys {
        vocab_size: c.vocab_size,
        max_position_embeddings: c.max_position_embeddings,
        sinusoidal_pos_embds: false,
        n_layers: c.num_hidden_layers,
        n_heads: c.num_attention_heads,
        dim: c.hidden_size,
        hidden_dim: c.intermediate_size,
        dropout: c.hidden_dropout_prob,
        attention_dropout: c.attention_probs_dropout_prob,
        activation: c.hidden_act.clone(),
        initializer_range: c.initializer_range,
        qa_dropout: c.qa_dropout,
        pad_token_id: c.pad_token_id,
        extra: c.extra.clone(),
    };
    Ok(serde_json::to_value(keys)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_distilbert_config_reads_its_own_keys_and_writes_them_back() {
        let json = json!({"model_type": "distilbert", "dim": 32, "n_layers": 2, "n_heads": 4,
                          "hidden_dim": 37, "qa_dropout": 0.2, "seq_classif_dropout": 0.3});
        let c = BertConfig::from_json(json).unwrap();
        assert_eq!(
            (c.hidden_size, c.num_hidden_layers, c.intermediate_size),
            (32, 2, 37)
        );
        assert_eq!(
            (c.family(), c.type_vocab_size, c.qa_dropout),
            (Family::DistilBert, 0, 0.2)
        );
        let back = c.to_json().unwrap();
        assert_eq!(back["dim"], 32);
        assert_eq!(back["qa_dropout"], 0.2);
        assert_eq!(back["seq_classif_dropout"], 0.3);
        assert_eq!(back["architectures"][0], "DistilBertForQuestionAnswering");
        assert!(back.get("hidden_size").is_none());
        let mut again = BertConfig::from_json(back).unwrap();
        again.extra.remove("architectures");
        assert_eq!(again, c);
    }

    #[test]
    fn unknown_or_unstated_families_are_refused_by_name() {
        let e = BertConfig::from_json(json!({"model_type": "gpt2"})).unwrap_err();
        assert!(e.to_string().contains("\"gpt2\""), "{e}");
        assert!(e.to_string().contains("roberta"), "{e}");
        let e = BertConfig::from_json(json!({"dim": 32, "n_layers": 2})).unwrap_err();
        assert!(e.to_string().contains("no model_type"), "{e}");
        let bert = BertConfig::from_json(
            json!({"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}),
        )
        .unwrap();
        assert_eq!(bert.family(), Family::Bert);
    }

    #[test]
    fn roberta_and_electra_take_their_defaults() {
        let r = BertConfig::from_json(json!({"model_type": "roberta"})).unwrap();
        assert_eq!((r.pad_token_id, r.longest_window()), (1, 510));
        let e = BertConfig::from_json(json!({"model_type": "electra"})).unwrap();
        assert_eq!((e.embedding_width(), e.hidden_size), (128, 256));
        assert_eq!(e.to_json().unwrap()["embedding_size"], 128);
    }
}
