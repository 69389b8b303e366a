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
            project: (embedding_width != c.hidden_size).then(|| format!("{p}.embeddings_project")),
            head: "qa_outputs".into(),
            embedding_width,
        }
    }

    pub fn layer(&self, l: usize) -> LayerNames {
        let p = self.family.prefix();
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
        for l in 0..c.num_hidden_layers {
            let n = self.layer(l);
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

/// Whether a parameter of any family's layout decays: by the module it
/// names (the layouts above), so DistilBERT's `sa_layer_norm` is a norm.
pub fn decays(name: &str) -> bool {
    module_of(name).decays()
}

/// The module kind of a parameter name in any family's layout.
pub fn module_of(name: &str) -> Module {
    const NORMS: [&str; 4] = [
        "LayerNorm",
        "sa_layer_norm",
        "output_layer_norm",
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
