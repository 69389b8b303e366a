//! A family's parameters by role: which Hugging Face name holds the word
//! embeddings, layer 3's query or the output norm, with its shape and the
//! kind of module it belongs to. Initialisation and weight decay follow the
//! module kind, as Hugging Face's do, never a name suffix.

use super::BertConfig;
use crate::family::{position_padding_row, Family};

/// What kind of module a parameter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    /// An `nn.Embedding`; `padding_idx`'s row starts at zero.
    Embedding { padding_idx: Option<usize> },
    /// An `nn.Linear`'s weight.
    LinearWeight,
    /// An `nn.Linear`'s bias.
    LinearBias,
    /// An `nn.LayerNorm`'s weight (starts at one).
    NormWeight,
    /// An `nn.LayerNorm`'s bias.
    NormBias,
}

impl Module {
    /// Hugging Face's Trainer decays every parameter but biases and norms.
    pub fn decays(self) -> bool {
        matches!(self, Module::Embedding { .. } | Module::LinearWeight)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub module: Module,
}

/// The names of one encoder layer's modules (each a weight and bias pair).
#[derive(Clone, Debug)]
pub struct LayerNames {
    pub query: String,
    pub key: String,
    pub value: String,
    pub attention_out: String,
    pub attention_norm: String,
    pub intermediate: String,
    pub output: String,
    pub output_norm: String,
}

/// A family's module names and widths.
#[derive(Clone, Debug)]
pub struct Layout {
    pub family: Family,
    pub word: String,
    pub position: String,
    pub token_type: Option<String>,
    pub embed_norm: String,
    /// ELECTRA's projection from the embedding width to the hidden width.
    pub project: Option<String>,
    pub head: String,
    /// The embeddings' width (ELECTRA's `embedding_size`; else hidden).
    pub embedding_width: usize,
}

impl Layout {
    pub fn new(c: &BertConfig) -> Self {
        let family = c.family();
        let p = family.prefix();
        let embedding_width = c.embedding_width();
        Self {
            family,
            word: format!("{p}.embeddings.word_embeddings.weight"),
            position: format!("{p}.embeddings.position_embeddings.weight"),
            token_type: family
                .has_token_types()
                .then(|| format!("{p}.embeddings.token_type_embeddings.weight")),
            embed_norm: format!("{p}.embeddings.LayerNorm"),
            // ALBERT maps its embeddings to the hidden width whatever their widths.
            project: match family {
                Family::Albert => Some(format!("{p}.encoder.embedding_hidden_mapping_in")),
                _ => (embedding_width != c.hidden_size).then(|| format!("{p}.embeddings_project")),
            },
            head: "qa_outputs".into(),
            embedding_width,
        }
    }

    /// The names of layer `l`'s modules: in ALBERT, those of the group it
    /// shares (`BertConfig::layer_group`, which the caller resolved).
    pub fn layer(&self, l: usize) -> LayerNames {
        let p = self.family.prefix();
        if self.family == Family::Albert {
            let at =
                |name: &str| format!("{p}.encoder.albert_layer_groups.{l}.albert_layers.0.{name}");
            return LayerNames {
                query: at("attention.query"),
                key: at("attention.key"),
                value: at("attention.value"),
                attention_out: at("attention.dense"),
                attention_norm: at("attention.LayerNorm"),
                intermediate: at("ffn"),
                output: at("ffn_output"),
                output_norm: at("full_layer_layer_norm"),
            };
        }
        let at = |name: &str| match self.family {
            Family::DistilBert => format!("{p}.transformer.layer.{l}.{name}"),
            _ => format!("{p}.encoder.layer.{l}.{name}"),
        };
        match self.family {
            Family::DistilBert => LayerNames {
                query: at("attention.q_lin"),
                key: at("attention.k_lin"),
                value: at("attention.v_lin"),
                attention_out: at("attention.out_lin"),
                attention_norm: at("sa_layer_norm"),
                intermediate: at("ffn.lin1"),
                output: at("ffn.lin2"),
                output_norm: at("output_layer_norm"),
            },
            _ => LayerNames {
                query: at("attention.self.query"),
                key: at("attention.self.key"),
                value: at("attention.self.value"),
                attention_out: at("attention.output.dense"),
                attention_norm: at("attention.output.LayerNorm"),
                intermediate: at("intermediate.dense"),
                output: at("output.dense"),
                output_norm: at("output.LayerNorm"),
            },
        }
    }

    /// Every parameter of the family's `*ForQuestionAnswering`, in the
    /// model's order.
    pub fn specs(&self, c: &BertConfig) -> Vec<ParamSpec> {
        let (h, i, e) = (c.hidden_size, c.intermediate_size, self.embedding_width);
        let mut out = Vec::new();
        let mut push = |name: String, shape: Vec<usize>, module| {
            out.push(ParamSpec {
                name,
                shape,
                module,
            })
        };
        let linear = |push: &mut dyn FnMut(String, Vec<usize>, Module), at: &str, o, n| {
            push(format!("{at}.weight"), vec![o, n], Module::LinearWeight);
            push(format!("{at}.bias"), vec![o], Module::LinearBias);
        };
        let norm = |push: &mut dyn FnMut(String, Vec<usize>, Module), at: &str, w| {
            push(format!("{at}.weight"), vec![w], Module::NormWeight);
            push(format!("{at}.bias"), vec![w], Module::NormBias);
        };
        push(
            self.word.clone(),
            vec![c.vocab_size, e],
            Module::Embedding {
                padding_idx: Some(c.pad_token_id),
            },
        );
        push(
            self.position.clone(),
            vec![c.max_position_embeddings, e],
            Module::Embedding {
                padding_idx: position_padding_row(self.family, c.pad_token_id as u32)
                    .map(|r| r as usize),
            },
        );
        if let Some(tt) = &self.token_type {
            push(
                tt.clone(),
                vec![c.type_vocab_size, e],
                Module::Embedding { padding_idx: None },
            );
        }
        norm(&mut push, &self.embed_norm, e);
        if let Some(project) = &self.project {
            linear(&mut push, project, h, e);
        }
        // A shared group's parameters are listed once.
        let groups: std::collections::BTreeSet<usize> =
            (0..c.num_hidden_layers).map(|l| c.layer_group(l)).collect();
        for g in groups {
            let n = self.layer(g);
            for at in [&n.query, &n.key, &n.value, &n.attention_out] {
                linear(&mut push, at, h, h);
            }
            norm(&mut push, &n.attention_norm, h);
            linear(&mut push, &n.intermediate, i, h);
            linear(&mut push, &n.output, h, i);
            norm(&mut push, &n.output_norm, h);
        }
        linear(&mut push, &self.head, 2, h);
        out
    }
}

/// Each parameter's share of the learning rate under layer-wise decay
/// `decay`, as ELECTRA's fine-tuning code (`_get_layer_lrs`) sets it: the
/// QA head 1, encoder layer l of L decay^(L + 1 − l), the embeddings (and
/// their projection) decay^(L + 2). A group ALBERT's layers share takes the
/// share of the topmost layer that uses it.
pub fn layerwise_lr_scales(c: &BertConfig, decay: f64) -> std::collections::BTreeMap<String, f64> {
    let layout = Layout::new(c);
    let layers = c.num_hidden_layers;
    let mut exponents: std::collections::BTreeMap<String, usize> = Default::default();
    for l in 0..layers {
        let n = layout.layer(c.layer_group(l));
        for module in [
            &n.query,
            &n.key,
            &n.value,
            &n.attention_out,
            &n.attention_norm,
            &n.intermediate,
            &n.output,
            &n.output_norm,
        ] {
            for leaf in ["weight", "bias"] {
                let e = exponents
                    .entry(format!("{module}.{leaf}"))
                    .or_insert(usize::MAX);
                *e = (*e).min(layers + 1 - l);
            }
        }
    }
    layout
        .specs(c)
        .into_iter()
        .map(|p| {
            let e = if p.name.starts_with(&format!("{}.", layout.head)) {
                0
            } else {
                exponents.get(&p.name).copied().unwrap_or(layers + 2)
            };
            (p.name, decay.powi(e as i32))
        })
        .collect()
}

/// Whether a parameter of any family's layout decays: by the module it
/// names (the layouts above), so DistilBERT's `sa_layer_norm` is a norm.
pub fn decays(name: &str) -> bool {
    module_of(name).decays()
}

/// The module kind of a parameter name in any family's layout.
pub fn module_of(name: &str) -> Module {
    const NORMS: [&str; 5] = [
        "LayerNorm",
        "sa_layer_norm",
        "output_layer_norm",
        "full_layer_layer_norm",
        "layer_norm",
    ];
    let (module, leaf) = name.rsplit_once('.').unwrap_or(("", name));
    let module_name = module.rsplit('.').next().unwrap_or(module);
    let is_norm = NORMS.contains(&module_name);
    match (is_norm, leaf) {
        (true, "bias") => Module::NormBias,
        (true, _) => Module::NormWeight,
        (false, "bias") => Module::LinearBias,
        _ if module_name.ends_with("embeddings") => Module::Embedding { padding_idx: None },
        _ => Module::LinearWeight,
    }
}
