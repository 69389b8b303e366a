//! A model's trainable parameters by Hugging Face name, loaded from a
//! checkpoint (safetensors, or pickle through candle's restricted reader) or
//! freshly initialised.

use super::layout::{Layout, Module, ParamSpec};
use super::{BertConfig, Family};
use crate::rng::SeededRng;
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub struct Params {
    vars: BTreeMap<String, Var>,
}

/// What loading found beside the expected tensors.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Expected tensors the checkpoint lacked and that were initialised (the QA head).
    pub initialised: Vec<String>,
    /// Checkpoint tensors that the model does not use (pre-training heads excluded).
    pub unused: Vec<String>,
}

/// Every parameter of the family's `*ForQuestionAnswering` with its shape.
pub fn expected_shapes(c: &BertConfig) -> Vec<(String, Vec<usize>)> {
    param_specs(c)
        .into_iter()
        .map(|p| (p.name, p.shape))
        .collect()
}

/// Every parameter with its shape and module kind.
pub fn param_specs(c: &BertConfig) -> Vec<ParamSpec> {
    Layout::new(c).specs(c)
}

/// The canonical name of a checkpoint tensor, or `None` for tensors the QA
/// model ignores (pre-training heads, pooler, position ids). Names without
/// the family's prefix (a bare encoder's checkpoint) get it.
fn canonical_name(family: Family, name: &str) -> Option<String> {
    let prefix = format!("{}.", family.prefix());
    let bare = name.strip_prefix(&prefix).unwrap_or(name);
    if family.ignored(bare) {
        return None;
    }
    // TF-era checkpoints call LayerNorm's weight and bias gamma and beta.
    let bare = match (bare.strip_suffix(".gamma"), bare.strip_suffix(".beta")) {
        (Some(stem), _) => format!("{stem}.weight"),
        (_, Some(stem)) => format!("{stem}.bias"),
        _ => bare.to_string(),
    };
    Some(if bare.starts_with("qa_outputs.") {
        bare
    } else {
        format!("{prefix}{bare}")
    })
}

impl Params {
    pub fn tensor(&self, name: &str) -> candle_core::Result<Tensor> {
        self.vars
            .get(name)
            .map(|v| v.as_tensor().clone())
            .ok_or_else(|| candle_core::Error::Msg(format!("no parameter named {name}")))
    }

    /// Parameters from named tensors (copied into fresh variables).
    pub fn from_tensors(tensors: impl IntoIterator<Item = (String, Tensor)>) -> Result<Self> {
        let vars = tensors
            .into_iter()
            .map(|(name, t)| Ok((name, Var::from_tensor(&t)?)))
            .collect::<Result<_>>()?;
        Ok(Self { vars })
    }

    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    pub fn vars(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Reads `model.safetensors` (else `pytorch_model.bin`) from `dir` into f32
    /// variables on `device`, checking every name and shape against `config`.
    /// A missing QA head is initialised like Hugging Face's: normal(0, 0.02) and zero bias.
    pub fn load(
        dir: &Path,
        config: &BertConfig,
        device: &Device,
        seed: u64,
    ) -> Result<(Self, LoadReport)> {
        let (file, raw) = read_checkpoint(dir)?;
        let mut by_name: HashMap<String, Tensor> = HashMap::new();
        let mut report = LoadReport::default();
        for (name, tensor) in raw {
            if let Some(canon) = canonical_name(config.family(), &name) {
                by_name.insert(canon, tensor);
            }
        }
        let mut rng = SeededRng::new(seed);
        let mut vars = BTreeMap::new();
        for ParamSpec {
            name,
            shape,
            module,
        } in param_specs(config)
        {
            let tensor = match by_name.remove(&name) {
                Some(t) if t.dims() == shape.as_slice() => {
                    t.to_dtype(DType::F32)?.to_device(device)?
                }
                Some(t) => bail!(
                    "{}: tensor {name} has shape {:?}, but config.json implies {shape:?}",
                    file.display(),
                    t.dims()
                ),
                None if name.starts_with("qa_outputs.") => {
                    report.initialised.push(name.clone());
                    init_tensor(module, &shape, config.initializer_range, &mut rng, device)?
                }
                None => bail!(
                    "{}: missing tensor {name} (shape {shape:?})",
                    file.display()
                ),
            };
            vars.insert(name, Var::from_tensor(&tensor)?);
        }
        report.unused = by_name.into_keys().collect();
        report.unused.sort();
        Ok((Self { vars }, report))
    }

    /// Fresh parameters as Hugging Face initialises each module:
    /// normal(0, initializer_range) linear weights and embeddings (an
    /// embedding's `padding_idx` row zero), zero biases, norms' weight 1
    /// and bias 0.
    pub fn random(config: &BertConfig, device: &Device, seed: u64) -> Result<Self> {
        let mut rng = SeededRng::new(seed);
        let mut vars = BTreeMap::new();
        for ParamSpec {
            name,
            shape,
            module,
        } in param_specs(config)
        {
            let t = init_tensor(module, &shape, config.initializer_range, &mut rng, device)?;
            vars.insert(name, Var::from_tensor(&t)?);
        }
        Ok(Self { vars })
    }

    /// Writes every parameter to a safetensors file under its Hugging Face name.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let tensors: HashMap<String, Tensor> = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_detached_tensor()))
            .collect();
        candle_core::safetensors::save(&tensors, path)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

fn init_tensor(
    module: Module,
    shape: &[usize],
    std: f64,
    rng: &mut SeededRng,
    device: &Device,
) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let values: Vec<f32> = match module {
        Module::NormWeight => vec![1.0; n],
        Module::NormBias | Module::LinearBias => vec![0.0; n],
        Module::LinearWeight | Module::Embedding { .. } => {
            let mut v: Vec<f32> = (0..n).map(|_| (rng.next_normal() * std) as f32).collect();
            if let (
                Module::Embedding {
                    padding_idx: Some(row),
                },
                [rows, width],
            ) = (module, shape)
            {
                if row < *rows {
                    v[row * *width..(row + 1) * *width].fill(0.0);
                }
            }
            v
        }
    };
    Ok(Tensor::from_vec(values, shape, device)?)
}

/// All tensors of the checkpoint in `dir`, with the file they came from.
fn read_checkpoint(dir: &Path) -> Result<(std::path::PathBuf, Vec<(String, Tensor)>)> {
    let safetensors = dir.join("model.safetensors");
    if safetensors.is_file() {
        let map = candle_core::safetensors::load(&safetensors, &Device::Cpu).map_err(|e| {
            anyhow!(
                "{}: not a readable safetensors file: {e}",
                safetensors.display()
            )
        })?;
        return Ok((safetensors, map.into_iter().collect()));
    }
    let pickle = dir.join("pytorch_model.bin");
    if pickle.is_file() {
        // candle's pickle reader only rebuilds tensors; it never executes code.
        let tensors = candle_core::pickle::read_all(&pickle).map_err(|e| {
            anyhow!(
                "{}: not a readable PyTorch checkpoint: {e}",
                pickle.display()
            )
        })?;
        return Ok((pickle, tensors));
    }
    bail!(
        "{}: no model.safetensors or pytorch_model.bin",
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::canonical_name;
    use crate::model::Family::{self, Bert};

    #[test]
    fn checkpoint_names_map_to_the_qa_layout() {
        assert_eq!(
            canonical_name(Bert, "embeddings.LayerNorm.gamma").unwrap(),
            "bert.embeddings.LayerNorm.weight"
        );
        assert_eq!(
            canonical_name(Bert, "bert.encoder.layer.0.output.LayerNorm.beta").unwrap(),
            "bert.encoder.layer.0.output.LayerNorm.bias"
        );
        assert_eq!(
            canonical_name(Bert, "encoder.layer.3.attention.self.query.weight").unwrap(),
            "bert.encoder.layer.3.attention.self.query.weight"
        );
        assert_eq!(
            canonical_name(Bert, "qa_outputs.weight").unwrap(),
            "qa_outputs.weight"
        );
        for ignored in [
            "cls.predictions.bias",
            "bert.pooler.dense.weight",
            "pooler.dense.bias",
            "embeddings.position_ids",
        ] {
            assert_eq!(canonical_name(Bert, ignored), None, "{ignored}");
        }
    }

    #[test]
    fn each_family_keeps_its_prefix_and_drops_its_pretraining_heads() {
        assert_eq!(
            canonical_name(Family::Roberta, "encoder.layer.0.output.dense.weight").unwrap(),
            "roberta.encoder.layer.0.output.dense.weight"
        );
        assert_eq!(
            canonical_name(Family::Roberta, "lm_head.dense.weight"),
            None
        );
        assert_eq!(
            canonical_name(
                Family::DistilBert,
                "distilbert.transformer.layer.1.sa_layer_norm.weight"
            )
            .unwrap(),
            "distilbert.transformer.layer.1.sa_layer_norm.weight"
        );
        assert_eq!(
            canonical_name(Family::DistilBert, "vocab_projector.bias"),
            None
        );
        assert_eq!(
            canonical_name(Family::Electra, "discriminator_predictions.dense.weight"),
            None
        );
        assert_eq!(
            canonical_name(Family::Electra, "electra.embeddings_project.weight").unwrap(),
            "electra.embeddings_project.weight"
        );
    }
}
