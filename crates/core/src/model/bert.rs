//! A BERT-family encoder with a question-answering head, in the layout of
//! Hugging Face's `*ForQuestionAnswering` for each family (`layout.rs`),
//! trainable end to end. The families differ only in their embeddings and
//! dropout sites (`family.rs`).

use super::census::scope;
use super::cuda_layout::matmul;
use super::kernels::{self, AttentionDropout};
use super::layers::{activation, additive_mask, dropout, LayerNorm, Linear};
use super::layout::Layout;
use super::params::Params;
use super::{position_ids, position_padding_row, BertConfig, Family};
use crate::rng::SeededRng;
use candle_core::{DType, Result, Tensor, D};

pub struct Embeddings {
    word: Tensor,
    position: Tensor,
    /// None for DistilBERT.
    token_type: Option<Tensor>,
    norm: LayerNorm,
    /// ELECTRA's projection to the hidden width.
    project: Option<Linear>,
}

pub struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

pub struct BertQa {
    pub config: BertConfig,
    /// The dtype of the matrix products; LayerNorm, softmax and the embeddings stay f32.
    compute: DType,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    qa_outputs: Linear,
}

/// One batch of windows: `[batch, seq]` u32 tensors.
pub struct Batch<'a> {
    pub input_ids: &'a Tensor,
    pub token_type_ids: &'a Tensor,
    pub attention_mask: &'a Tensor,
}

impl BertQa {
    /// Builds the model on the parameters (which hold its weights as trainable variables).
    pub fn new(config: BertConfig, params: &Params) -> candle_core::Result<Self> {
        Self::with_dtype(config, params, DType::F32)
    }

    /// The model computing its matrix products in `compute` (autocast): the
    /// linear weights are cast copies of the f32 master weights, and gradients
    /// flow back through the casts to them. Rebuild after each optimizer step
    /// unless `compute` is f32 (then the weights are shared, not copied).
    pub fn with_dtype(
        config: BertConfig,
        params: &Params,
        compute: DType,
    ) -> candle_core::Result<Self> {
        let p = |name: &str| params.tensor(name);
        let linear = |prefix: &str| -> Result<Linear> {
            Ok(Linear {
                weight: p(&format!("{prefix}.weight"))?.to_dtype(compute)?,
                bias: p(&format!("{prefix}.bias"))?.to_dtype(compute)?,
            })
        };
        let norm = |prefix: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                weight: p(&format!("{prefix}.weight"))?,
                bias: p(&format!("{prefix}.bias"))?,
                eps: config.layer_norm_eps,
            })
        };
        let layout = Layout::new(&config);
        let embeddings = Embeddings {
            word: p(&layout.word)?,
            position: p(&layout.position)?,
            token_type: layout.token_type.as_deref().map(p).transpose()?,
            norm: norm(&layout.embed_norm)?,
            project: layout.project.as_deref().map(linear).transpose()?,
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = layout.layer(config.layer_group(i));
                Ok(Layer {
                    query: linear(&l.query)?,
                    key: linear(&l.key)?,
                    value: linear(&l.value)?,
                    attention_out: linear(&l.attention_out)?,
                    attention_norm: norm(&l.attention_norm)?,
                    intermediate: linear(&l.intermediate)?,
                    output: linear(&l.output)?,
                    output_norm: norm(&l.output_norm)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            qa_outputs: linear(&layout.head)?,
            compute,
            config,
            embeddings,
            layers,
        })
    }

    /// Start and end logits, each `[batch, seq]`, differentiable. Dropout is
    /// active exactly when `rng` is given (training).
    pub fn forward(&self, batch: &Batch, rng: Option<&mut SeededRng>) -> Result<(Tensor, Tensor)> {
        self.run(batch, Mode::Graph(rng))
    }

    /// The same logits for inference: candle's fused softmax and LayerNorm
    /// kernels and no dropout, on weights detached from the trainable
    /// variables, so no graph is recorded. Never differentiate these.
    pub fn forward_inference(&self, batch: &Batch) -> Result<(Tensor, Tensor)> {
        self.detached().run(batch, Mode::Inference)
    }

    /// This model on detached weights (shared storage, no autograd tracking).
    fn detached(&self) -> Self {
        let linear = |l: &Linear| Linear {
            weight: l.weight.detach(),
            bias: l.bias.detach(),
        };
        let norm = |n: &LayerNorm| LayerNorm {
            weight: n.weight.detach(),
            bias: n.bias.detach(),
            eps: n.eps,
        };
        Self {
            config: self.config.clone(),
            compute: self.compute,
            embeddings: Embeddings {
                word: self.embeddings.word.detach(),
                position: self.embeddings.position.detach(),
                token_type: self.embeddings.token_type.as_ref().map(Tensor::detach),
                norm: norm(&self.embeddings.norm),
                project: self.embeddings.project.as_ref().map(linear),
            },
            layers: self
                .layers
                .iter()
                .map(|l| Layer {
                    query: linear(&l.query),
                    key: linear(&l.key),
                    value: linear(&l.value),
                    attention_out: linear(&l.attention_out),
                    attention_norm: norm(&l.attention_norm),
                    intermediate: linear(&l.intermediate),
                    output: linear(&l.output),
                    output_norm: norm(&l.output_norm),
                })
                .collect(),
            qa_outputs: linear(&self.qa_outputs),
        }
    }

    fn run(&self, batch: &Batch, mut mode: Mode) -> Result<(Tensor, Tensor)> {
        let c = &self.config;
        let s = batch.input_ids.dim(1)?;
        let dtype = self.compute;
        let x = scope("embeddings", || {
            let family = c.family();
            let pad = c.pad_token_id as u32;
            let words = rows_without_grad_at(&self.embeddings.word, batch.input_ids, Some(pad))?;
            let with_types = match &self.embeddings.token_type {
                Some(table) => words.add(&table.embedding_rows(batch.token_type_ids)?)?,
                None => words,
            };
            let pos = match family {
                Family::Roberta => {
                    let ids = batch.input_ids.flatten_all()?.to_vec1::<u32>()?;
                    let positions = Tensor::from_vec(
                        position_ids(family, &ids, s, pad),
                        batch.input_ids.shape(),
                        batch.input_ids.device(),
                    )?;
                    rows_without_grad_at(
                        &self.embeddings.position,
                        &positions,
                        position_padding_row(family, pad),
                    )?
                }
                _ => {
                    let positions = Tensor::arange(0u32, s as u32, batch.input_ids.device())?;
                    self.embeddings
                        .position
                        .index_select(&positions, 0)?
                        .unsqueeze(0)?
                }
            };
            with_types.broadcast_add(&pos)
        })?;
        let mut x = mode.dropout(
            &mode.norm(&self.embeddings.norm, &x, dtype)?,
            c.hidden_dropout_prob,
        )?;
        if let Some(project) = &self.embeddings.project {
            x = project.forward(&x)?;
        }
        let site_p = |applies: bool| if applies { c.hidden_dropout_prob } else { 0.0 };
        let attention_output_dropout = site_p(c.family().drops_attention_output());
        let ffn_output_dropout = site_p(c.family().drops_ffn_output());

        let fused = kernels::applies(&[&x]);
        let mask = if fused {
            None
        } else {
            Some(scope("attention mask", || {
                additive_mask(batch.attention_mask, dtype)
            })?)
        };
        for layer in &self.layers {
            let context = match &mask {
                None => self.fused_attention(layer, &x, batch.attention_mask, &mut mode)?,
                Some(mask) => self.attention(layer, &x, mask, &mut mode)?,
            };
            let attended = mode.dropout(
                &layer.attention_out.forward(&context)?,
                attention_output_dropout,
            )?;
            let residual = scope("residual add", || attended.add(&x))?;
            let h = mode.norm(&layer.attention_norm, &residual, dtype)?;
            let inner = activation(&layer.intermediate.forward(&h)?, c.activation())?;
            let out = mode.dropout(&layer.output.forward(&inner)?, ffn_output_dropout)?;
            let residual = scope("residual add", || out.add(&h))?;
            x = mode.norm(&layer.output_norm, &residual, dtype)?;
        }
        // DistilBERT drops out the last hidden states before its head.
        let x = mode.dropout(&x, c.qa_dropout)?;
        let logits = self.qa_outputs.forward(&x)?;
        scope("qa head", || {
            let start = logits.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?;
            let end = logits.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?;
            Ok((start.to_dtype(DType::F32)?, end.to_dtype(DType::F32)?))
        })
    }
}

impl BertQa {
    /// Self-attention from primitive ops (any device and dtype).
    fn attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        mask: &Tensor,
        mode: &mut Mode,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, s, _) = x.dims3()?;
        let heads = c.num_attention_heads;
        let head_dim = c.hidden_size / heads;
        let split = |t: Tensor| {
            t.reshape((b, s, heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        // Scaling q (b·h·s·d values) is cheaper than scaling the scores (b·h·s·s).
        let scale = 1.0 / (head_dim as f64).sqrt();
        let (q, k, v) = (
            layer.query.forward(x)?,
            layer.key.forward(x)?,
            layer.value.forward(x)?,
        );
        let scores = scope("attention scores", || {
            let (q, k) = (split((q * scale)?)?, split(k)?);
            matmul(&q, &k.t()?)?.broadcast_add(mask)
        })?;
        let probs = mode.dropout(&mode.softmax(&scores)?, c.attention_probs_dropout_prob)?;
        scope("attention context", || {
            matmul(&probs, &split(v)?)?
                .transpose(1, 2)?
                .reshape((b, s, c.hidden_size))
        })
    }

    /// Self-attention as one fused CPU kernel (f32).
    fn fused_attention(
        &self,
        layer: &Layer,
        x: &Tensor,
        key_mask: &Tensor,
        mode: &mut Mode,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (q, k, v) = (
            layer.query.forward(x)?,
            layer.key.forward(x)?,
            layer.value.forward(x)?,
        );
        let (dropout, differentiable) = match mode {
            Mode::Graph(rng) => (
                rng.as_deref_mut().map(|rng| AttentionDropout {
                    p: c.attention_probs_dropout_prob as f32,
                    seed: rng.next_u64(),
                }),
                true,
            ),
            Mode::Inference => (None, false),
        };
        kernels::attention(
            &q,
            &k,
            &v,
            key_mask,
            c.num_attention_heads,
            dropout,
            differentiable,
        )
    }
}

/// How a forward pass computes: a differentiable graph (with dropout when an
/// RNG is given) or inference with fused kernels.
enum Mode<'a> {
    Graph(Option<&'a mut SeededRng>),
    Inference,
}

impl Mode<'_> {
    fn dropout(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        match self {
            Mode::Graph(rng) => scope("dropout", || dropout(x, p, rng.as_deref_mut())),
            Mode::Inference => Ok(x.clone()),
        }
    }

    /// Softmax in f32 whatever the compute dtype, as autocast does.
    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        scope("softmax", || {
            let x32 = x.to_dtype(DType::F32)?;
            match self {
                Mode::Graph(_) => candle_nn::ops::softmax(&x32, D::Minus1),
                Mode::Inference => candle_nn::ops::softmax_last_dim(&x32),
            }?
            .to_dtype(x.dtype())
        })
    }

    /// LayerNorm in f32 with f32 parameters, its output in the compute dtype.
    fn norm(&self, norm: &LayerNorm, x: &Tensor, compute: DType) -> Result<Tensor> {
        scope("layer_norm", || {
            let x32 = x.to_dtype(DType::F32)?;
            match self {
                Mode::Graph(_) if kernels::applies(&[&x32, &norm.weight, &norm.bias]) => {
                    kernels::layer_norm(&x32, &norm.weight, &norm.bias, norm.eps)
                }
                Mode::Graph(_) => norm.forward(&x32),
                Mode::Inference => {
                    candle_nn::ops::layer_norm(&x32, &norm.weight, &norm.bias, norm.eps as f32)
                }
            }?
            .to_dtype(compute)
        })
    }
}

/// Rows of `table` for `[b, s]` ids, where the `padding_idx` row gets no
/// gradient, as with PyTorch's `padding_idx`: those ids read the row
/// detached from the graph.
fn rows_without_grad_at(table: &Tensor, ids: &Tensor, padding_idx: Option<u32>) -> Result<Tensor> {
    let rows = table.embedding_rows(ids)?;
    let Some(pad) = padding_idx else {
        return Ok(rows);
    };
    let is_pad = ids.eq(pad)?.to_dtype(rows.dtype())?.unsqueeze(D::Minus1)?;
    let keep = (1.0 - &is_pad)?;
    rows.broadcast_mul(&keep)?
        .add(&rows.detach().broadcast_mul(&is_pad)?)
}

/// The mean of the start and end cross-entropies; positions are `[batch]` u32.
pub fn qa_loss(
    start: &Tensor,
    end: &Tensor,
    start_positions: &Tensor,
    end_positions: &Tensor,
) -> Result<Tensor> {
    scope("loss", || {
        let start_loss = candle_nn::loss::cross_entropy(start, start_positions)?;
        let end_loss = candle_nn::loss::cross_entropy(end, end_positions)?;
        (start_loss + end_loss)? / 2.0
    })
}

trait EmbeddingRows {
    fn embedding_rows(&self, ids: &Tensor) -> Result<Tensor>;
}

impl EmbeddingRows for Tensor {
    /// Rows of this `[vocab, hidden]` table for `[b, s]` ids, as `[b, s, hidden]`.
    fn embedding_rows(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let hidden = self.dim(1)?;
        self.index_select(&ids.flatten_all()?, 0)?
            .reshape((b, s, hidden))
    }
}
