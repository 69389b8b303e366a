//! One micro-batch of the lean step, forward then backward, as a sequence of
//! fused ops: llm.c's shape for a BERT-family encoder (each family's names,
//! embeddings and dropout sites from `model::layout` and `model::family`). The forward keeps what each backward
//! op reads; the backward calls them in reverse and adds every gradient
//! straight into its f32 buffer, with no autograd bookkeeping.
//!
//! Launches, by the rules in `ops.rs` (each GEMM one, each fused op one;
//! attention three forward and five backward; a LayerNorm's backward two),
//! per encoder layer: 12 forward, 28 backward.

use super::ops::{
    Attention, AttentionBackward, Buf, Dropout, EmbedPads, Gemm, Norm, NormBackward, Ops, Prec,
    StepInput,
};
use crate::model::layout::Layout;
use crate::model::{expected_shapes, position_padding_row, BertConfig};
use crate::rng::philox::MaskStream;
use anyhow::{anyhow, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// The model's parameters in a fixed order (by name, as `Params` keeps
/// them), with their shapes: what `Buf::Param(i)` and `Buf::Grad(i)` index.
#[derive(Clone, Debug)]
pub struct ParamTable {
    pub names: Vec<String>,
    pub shapes: Vec<Vec<usize>>,
}

impl ParamTable {
    pub fn new(config: &BertConfig) -> Self {
        let sorted: BTreeMap<String, Vec<usize>> = expected_shapes(config).into_iter().collect();
        let (names, shapes) = sorted.into_iter().unzip();
        Self { names, shapes }
    }

    pub fn index(&self, name: &str) -> Result<u16> {
        self.names
            .binary_search_by(|n| n.as_str().cmp(name))
            .map(|i| i as u16)
            .map_err(|_| anyhow!("the lean step has no parameter named {name}"))
    }

    pub fn elems(&self, i: usize) -> usize {
        self.shapes[i].iter().product()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Launches by kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Launches {
    pub by_kind: BTreeMap<&'static str, usize>,
}

impl Launches {
    pub fn add(&mut self, kind: &'static str, n: usize) {
        *self.by_kind.entry(kind).or_default() += n;
    }

    pub fn total(&self) -> usize {
        self.by_kind.values().sum()
    }
}

/// Dropout for one micro-batch: the stream's key and round, each site's
/// probability.
#[derive(Clone, Copy, Debug)]
pub struct MicroBatchDropout {
    pub key: [u32; 2],
    pub round: u32,
    pub hidden: f32,
    pub attention: f32,
}

impl MicroBatchDropout {
    /// Sites: 0 after the embeddings; for layer l, 1 + 3l on the attention
    /// probabilities, 2 + 3l after the attention output, 3 + 3l after the
    /// feed-forward output; 1 + 3L before the QA head (DistilBERT's
    /// `qa_dropout`).
    fn at(&self, site: u32, p: f32) -> Option<Dropout> {
        (p > 0.0).then_some(Dropout {
            p,
            stream: MaskStream {
                key: self.key,
                round: self.round,
                site,
            },
        })
    }
}

/// The parameters of one encoder layer, as handles.
struct LayerParams {
    query: (u16, u16),
    key: (u16, u16),
    value: (u16, u16),
    attention_out: (u16, u16),
    attention_norm: (u16, u16),
    intermediate: (u16, u16),
    output: (u16, u16),
    output_norm: (u16, u16),
}

fn pair(table: &ParamTable, prefix: &str) -> Result<(u16, u16)> {
    Ok((
        table.index(&format!("{prefix}.weight"))?,
        table.index(&format!("{prefix}.bias"))?,
    ))
}

impl LayerParams {
    fn new(table: &ParamTable, layout: &Layout, l: usize) -> Result<Self> {
        let n = layout.layer(l);
        let p = |name: &str| pair(table, name);
        Ok(Self {
            query: p(&n.query)?,
            key: p(&n.key)?,
            value: p(&n.value)?,
            attention_out: p(&n.attention_out)?,
            attention_norm: p(&n.attention_norm)?,
            intermediate: p(&n.intermediate)?,
            output: p(&n.output)?,
            output_norm: p(&n.output_norm)?,
        })
    }
}

/// What one layer's forward keeps for its backward.
struct LayerActs {
    x: Buf,
    q: Buf,
    k: Buf,
    v: Buf,
    context: Buf,
    norm1: Norm,
    r1: Buf,
    h: Buf,
    u: Buf,
    g: Buf,
    norm2: Norm,
    r2: Buf,
}

/// The step's sequence, counting launches as it issues them.
pub struct Sequence<'a, O: Ops> {
    pub ops: &'a mut O,
    pub launches: Launches,
    config: &'a BertConfig,
    table: &'a ParamTable,
}

impl<'a, O: Ops> Sequence<'a, O> {
    pub fn new(ops: &'a mut O, config: &'a BertConfig, table: &'a ParamTable) -> Self {
        Self {
            ops,
            launches: Launches::default(),
            config,
            table,
        }
    }

    pub fn zero_grads(&mut self) -> Result<()> {
        self.launches.add("zero gradients", 1);
        self.ops.zero_grads()
    }

    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &mut self,
        kind: &'static str,
        (m, n, k): (usize, usize, usize),
        c: Buf,
        (a, a_t): (Buf, bool),
        (b, b_t): (Buf, bool),
        accumulate: bool,
        bias: Option<Buf>,
    ) -> Result<()> {
        self.launches.add(kind, 1);
        self.ops.gemm(&Gemm {
            m,
            n,
            k,
            c,
            a,
            a_t,
            b,
            b_t,
            accumulate,
            bias,
            scale: 1.0,
        })
    }

    /// `y = x · Wᵀ + b` for `x` `[rows, in]` and W `[out, in]`.
    fn linear(&mut self, x: Buf, (w, b): (u16, u16), y: Buf, rows: usize) -> Result<()> {
        let [out, inp] = self.shape2(w)?;
        self.gemm(
            "gemm forward",
            (rows, out, inp),
            y,
            (x, false),
            (Buf::Param(w), true),
            false,
            Some(Buf::Param(b)),
        )
    }

    /// The linear's backward: dW += dyᵀ·x, db += Σ dy, dx (+)= dy·W.
    fn linear_backward(
        &mut self,
        x: Buf,
        (w, b): (u16, u16),
        dy: Buf,
        dx: Option<(Buf, bool)>,
        rows: usize,
    ) -> Result<()> {
        let [out, inp] = self.shape2(w)?;
        self.gemm(
            "gemm weight gradient",
            (out, inp, rows),
            Buf::Grad(w),
            (dy, true),
            (x, false),
            true,
            None,
        )?;
        self.launches.add("bias gradient", 1);
        self.ops.column_sums(dy, rows, out, Buf::Grad(b))?;
        if let Some((dx, accumulate)) = dx {
            self.gemm(
                "gemm input gradient",
                (rows, inp, out),
                dx,
                (dy, false),
                (Buf::Param(w), false),
                accumulate,
                None,
            )?;
        }
        Ok(())
    }

    fn shape2(&self, w: u16) -> Result<[usize; 2]> {
        match self.table.shapes[w as usize].as_slice() {
            [a, b] => Ok([*a, *b]),
            other => Err(anyhow!(
                "{}: expected a matrix, got shape {other:?}",
                self.table.names[w as usize]
            )),
        }
    }

    fn norm(&mut self, n: &Norm) -> Result<()> {
        self.launches.add("layer norm", 1);
        self.ops.norm(n)
    }

    fn norm_backward(&mut self, n: &NormBackward) -> Result<()> {
        self.launches.add("layer norm backward", 2);
        self.ops.norm_backward(n)
    }

    /// Forward and backward of one micro-batch: gradients of `loss × scale`
    /// added into the arena; the loss stays in the backend.
    pub fn micro_batch(
        &mut self,
        input: &StepInput,
        dropout: Option<MicroBatchDropout>,
        scale: f32,
    ) -> Result<()> {
        let c = self.config;
        let t = self.table;
        let layout = Layout::new(c);
        let family = layout.family;
        let activation = c.activation();
        let (h, inter, width) = (c.hidden_size, c.intermediate_size, layout.embedding_width);
        let rows = input.b * input.s;
        let eps = c.layer_norm_eps as f32;
        let hidden_p = |d: &MicroBatchDropout, site| d.at(site, d.hidden);
        let word = t.index(&layout.word)?;
        let position = t.index(&layout.position)?;
        let token_type = layout
            .token_type
            .as_deref()
            .map(|n| t.index(n))
            .transpose()?;
        let embed_norm = pair(t, &layout.embed_norm)?;
        let project = layout.project.as_deref().map(|n| pair(t, n)).transpose()?;
        let head = pair(t, &layout.head)?;
        let layers = (0..c.num_hidden_layers)
            .map(|l| LayerParams::new(t, &layout, c.layer_group(l)))
            .collect::<Result<Vec<_>>>()?;
        let last = layers.len().saturating_sub(1);
        let head_site = 1 + 3 * layers.len() as u32;

        // Forward. A family without token types (DistilBERT) adds a zero
        // row, held as an activation, whose gradient is dropped.
        let (type_table, type_grad) = match token_type {
            Some(i) => (Buf::Param(i), Buf::Grad(i)),
            None => (
                self.ops.alloc("token type row", width, Prec::F32)?,
                self.ops.alloc("token type row", width, Prec::F32)?,
            ),
        };
        let e = self.ops.alloc("embeddings", rows * width, Prec::F32)?;
        self.launches.add("embedding gather", 1);
        self.ops.embed(
            input,
            [Buf::Param(word), Buf::Param(position), type_table],
            e,
        )?;
        let x0 = self.ops.alloc("hidden", rows * width, Prec::Compute)?;
        let stats0 = self.ops.alloc("norm stats", 2 * rows, Prec::F32)?;
        let norm0 = Norm {
            rows,
            width,
            a: e,
            input_dropout: None,
            residual: None,
            weight: Buf::Param(embed_norm.0),
            bias: Buf::Param(embed_norm.1),
            eps,
            y: x0,
            output_dropout: dropout.and_then(|d| hidden_p(&d, 0)),
            stats: stats0,
        };
        self.norm(&norm0)?;
        // ELECTRA projects the embeddings to the hidden width.
        let mut x = match project {
            Some(p) => {
                let x = self.ops.alloc("hidden", rows * h, Prec::Compute)?;
                self.linear(x0, p, x, rows)?;
                x
            }
            None => x0,
        };
        let mut kept = Vec::with_capacity(layers.len());
        for (l, p) in layers.iter().enumerate() {
            let site = 1 + 3 * l as u32;
            let [q, k, v, context] =
                [0; 4].map(|_| self.ops.alloc("q, k, v, context", rows * h, Prec::Compute));
            let (q, k, v, context) = (q?, k?, v?, context?);
            self.linear(x, p.query, q, rows)?;
            self.linear(x, p.key, k, rows)?;
            self.linear(x, p.value, v, rows)?;
            let attention = Attention {
                b: input.b,
                s: input.s,
                hidden: h,
                heads: c.num_attention_heads,
                q,
                k,
                v,
                context,
                dropout: dropout.and_then(|d| d.at(site, d.attention)),
            };
            self.launches.add("attention", 3);
            self.ops.attention(input, &attention)?;

            let a1 = self.ops.alloc("projection", rows * h, Prec::Compute)?;
            self.linear(context, p.attention_out, a1, rows)?;
            let r1 = self.ops.alloc("residual", rows * h, Prec::F32)?;
            let hs = self.ops.alloc("hidden", rows * h, Prec::Compute)?;
            let stats1 = self.ops.alloc("norm stats", 2 * rows, Prec::F32)?;
            let norm1 = Norm {
                rows,
                width: h,
                a: a1,
                input_dropout: dropout
                    .filter(|_| family.drops_attention_output())
                    .and_then(|d| hidden_p(&d, site + 1)),
                residual: Some((x, r1)),
                weight: Buf::Param(p.attention_norm.0),
                bias: Buf::Param(p.attention_norm.1),
                eps,
                y: hs,
                output_dropout: None,
                stats: stats1,
            };
            self.norm(&norm1)?;
            self.ops.free(a1);

            let u = self
                .ops
                .alloc("intermediate", rows * inter, Prec::Compute)?;
            self.linear(hs, p.intermediate, u, rows)?;
            let g = self.ops.alloc("gelu", rows * inter, Prec::Compute)?;
            self.launches.add("gelu", 1);
            self.ops.gelu(u, g, rows * inter, activation)?;
            let a2 = self.ops.alloc("projection", rows * h, Prec::Compute)?;
            self.linear(g, p.output, a2, rows)?;
            let r2 = self.ops.alloc("residual", rows * h, Prec::F32)?;
            let out = self.ops.alloc("hidden", rows * h, Prec::Compute)?;
            let stats2 = self.ops.alloc("norm stats", 2 * rows, Prec::F32)?;
            let norm2 = Norm {
                rows,
                width: h,
                a: a2,
                input_dropout: dropout
                    .filter(|_| family.drops_ffn_output())
                    .and_then(|d| hidden_p(&d, site + 2)),
                residual: Some((hs, r2)),
                weight: Buf::Param(p.output_norm.0),
                bias: Buf::Param(p.output_norm.1),
                eps,
                y: out,
                // The last hidden states' dropout before the QA head.
                output_dropout: dropout
                    .filter(|_| l == last)
                    .and_then(|d| d.at(head_site, c.qa_dropout as f32)),
                stats: stats2,
            };
            self.norm(&norm2)?;
            self.ops.free(a2);
            kept.push(LayerActs {
                x,
                q,
                k,
                v,
                context,
                norm1,
                r1,
                h: hs,
                u,
                g,
                norm2,
                r2,
            });
            x = out;
        }
        let logits = self.ops.alloc("logits", rows * 2, Prec::F32)?;
        self.linear(x, head, logits, rows)?;
        let d_logits = self.ops.alloc("logits gradient", rows * 2, Prec::F32)?;
        self.launches.add("qa loss", 1);
        self.ops.qa_loss(input, logits, d_logits, scale)?;
        self.ops.free(logits);

        // Backward.
        let mut dx = self.ops.alloc("hidden gradient", rows * h, Prec::Compute)?;
        self.linear_backward(x, head, d_logits, Some((dx, false)), rows)?;
        self.ops.free(d_logits);
        self.ops.free(x);
        for (l, (acts, p)) in kept.into_iter().zip(&layers).enumerate().rev() {
            let d_a2 = self
                .ops
                .alloc("projection gradient", rows * h, Prec::Compute)?;
            let d_h = self.ops.alloc("hidden gradient", rows * h, Prec::Compute)?;
            self.norm_backward(&NormBackward {
                forward: acts.norm2,
                r: acts.r2,
                dy: dx,
                d_a: d_a2,
                d_residual: Some(d_h),
                d_weight: Buf::Grad(p.output_norm.0),
                d_bias: Buf::Grad(p.output_norm.1),
            })?;
            self.ops.free(dx);
            self.ops.free(acts.r2);
            self.ops.free(acts.norm2.stats);

            let d_g = self
                .ops
                .alloc("intermediate gradient", rows * inter, Prec::Compute)?;
            self.linear_backward(acts.g, p.output, d_a2, Some((d_g, false)), rows)?;
            self.ops.free(d_a2);
            self.ops.free(acts.g);
            self.launches.add("gelu backward", 1);
            self.ops
                .gelu_backward(acts.u, d_g, rows * inter, activation)?;
            self.ops.free(acts.u);
            self.linear_backward(acts.h, p.intermediate, d_g, Some((d_h, true)), rows)?;
            self.ops.free(d_g);

            let d_a1 = self
                .ops
                .alloc("projection gradient", rows * h, Prec::Compute)?;
            let d_x = self.ops.alloc("hidden gradient", rows * h, Prec::Compute)?;
            self.norm_backward(&NormBackward {
                forward: acts.norm1,
                r: acts.r1,
                dy: d_h,
                d_a: d_a1,
                d_residual: Some(d_x),
                d_weight: Buf::Grad(p.attention_norm.0),
                d_bias: Buf::Grad(p.attention_norm.1),
            })?;
            self.ops.free(d_h);
            self.ops.free(acts.h);
            self.ops.free(acts.r1);
            self.ops.free(acts.norm1.stats);

            let d_context = self
                .ops
                .alloc("context gradient", rows * h, Prec::Compute)?;
            self.linear_backward(
                acts.context,
                p.attention_out,
                d_a1,
                Some((d_context, false)),
                rows,
            )?;
            self.ops.free(d_a1);
            self.ops.free(acts.context);
            let [dq, dk, dv] =
                [0; 3].map(|_| self.ops.alloc("q, k, v gradient", rows * h, Prec::Compute));
            let (dq, dk, dv) = (dq?, dk?, dv?);
            self.launches.add("attention backward", 5);
            self.ops.attention_backward(
                input,
                &AttentionBackward {
                    forward: Attention {
                        b: input.b,
                        s: input.s,
                        hidden: h,
                        heads: c.num_attention_heads,
                        q: acts.q,
                        k: acts.k,
                        v: acts.v,
                        context: acts.context,
                        dropout: dropout.and_then(|d| d.at(1 + 3 * l as u32, d.attention)),
                    },
                    d_context,
                    dq,
                    dk,
                    dv,
                },
            )?;
            self.ops.free(d_context);
            for (d, w) in [(dq, p.query), (dk, p.key), (dv, p.value)] {
                self.linear_backward(acts.x, w, d, Some((d_x, true)), rows)?;
                self.ops.free(d);
            }
            for buf in [acts.q, acts.k, acts.v, acts.x] {
                self.ops.free(buf);
            }
            dx = d_x;
        }
        if let Some(p) = project {
            let d_x0 = self
                .ops
                .alloc("hidden gradient", rows * width, Prec::Compute)?;
            self.linear_backward(x0, p, dx, Some((d_x0, false)), rows)?;
            self.ops.free(dx);
            self.ops.free(x0);
            dx = d_x0;
        }
        let d_e = self
            .ops
            .alloc("embeddings gradient", rows * width, Prec::F32)?;
        self.norm_backward(&NormBackward {
            forward: norm0,
            r: e,
            dy: dx,
            d_a: d_e,
            d_residual: None,
            d_weight: Buf::Grad(embed_norm.0),
            d_bias: Buf::Grad(embed_norm.1),
        })?;
        self.ops.free(dx);
        self.ops.free(e);
        self.ops.free(stats0);
        self.launches.add("embedding scatter-add", 1);
        let pad = c.pad_token_id as u32;
        self.ops.embed_backward(
            input,
            d_e,
            [Buf::Grad(word), Buf::Grad(position), type_grad],
            EmbedPads {
                word: pad,
                position: position_padding_row(family, pad),
            },
        )?;
        self.ops.free(d_e);
        if token_type.is_none() {
            self.ops.free(type_table);
            self.ops.free(type_grad);
        }
        Ok(())
    }
}
