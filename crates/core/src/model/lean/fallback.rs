//! The lean CPU step's ops through candle's generic ops, for a kernel the
//! self-check switched off (`model::fused`): the slices become tensors,
//! `fused::generic` computes, and the results go back where the fused op
//! would have written them. The masks are the same Philox draws.

use super::ops::{Attention, EmbedPads, Norm, StepInput};
use crate::model::fused::generic::Generic;
use crate::model::fused::{FusedOps, NormSpec, TokenIds};
use anyhow::Result;
use candle_core::{DType, Device, Tensor};

fn tensor(values: &[f32], dims: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_slice(values, dims, &Device::Cpu)?)
}

fn u32s(values: &[u32], dims: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_slice(values, dims, &Device::Cpu)?)
}

/// `t`'s values into `out` (`add`: added to what it holds).
fn write(out: &mut [f32], t: &Tensor, add: bool) -> Result<()> {
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    let out = &mut out[..values.len()];
    if add {
        out.iter_mut().zip(&values).for_each(|(o, v)| *o += v);
    } else {
        out.copy_from_slice(&values);
    }
    Ok(())
}

/// `[b·s, hidden]` as `[b, heads, s, d]`.
fn split_heads(x: &[f32], a: &Attention) -> Result<Tensor> {
    let d = a.hidden / a.heads;
    Ok(tensor(&x[..a.b * a.s * a.hidden], &[a.b, a.s, a.heads, d])?
        .transpose(1, 2)?
        .contiguous()?)
}

fn merge_heads(x: &Tensor, a: &Attention) -> Result<Tensor> {
    Ok(x.transpose(1, 2)?
        .contiguous()?
        .reshape((a.b * a.s, a.hidden))?)
}

fn scale(a: &Attention) -> f32 {
    1.0 / ((a.hidden / a.heads) as f32).sqrt()
}

fn probabilities(
    input: &StepInput,
    a: &Attention,
    q: &Tensor,
    k: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let scores = q.matmul(&k.t()?)?;
    let mask = u32s(&input.attention_mask, &[a.b, a.s])?;
    Generic.softmax_forward(&scores, &mask, scale(a), a.dropout.filter(|d| d.p > 0.0))
}

pub fn attention(
    input: &StepInput,
    a: &Attention,
    [q, k, v]: [&[f32]; 3],
    context: &mut [f32],
) -> Result<()> {
    let (q, k, v) = (split_heads(q, a)?, split_heads(k, a)?, split_heads(v, a)?);
    let (_, dropped) = probabilities(input, a, &q, &k)?;
    write(context, &merge_heads(&dropped.matmul(&v)?, a)?, false)
}

pub fn attention_backward(
    input: &StepInput,
    a: &Attention,
    [q, k, v, d_context]: [&[f32]; 4],
    [dq, dk, dv]: [&mut [f32]; 3],
) -> Result<()> {
    let (q, k, v) = (split_heads(q, a)?, split_heads(k, a)?, split_heads(v, a)?);
    let d_context = split_heads(d_context, a)?;
    let (probs, dropped) = probabilities(input, a, &q, &k)?;
    let d_dropped = d_context.matmul(&v.t()?)?;
    let d_v = dropped.t()?.matmul(&d_context)?;
    let d_scores = Generic.softmax_backward(
        &probs,
        &d_dropped,
        scale(a),
        a.dropout.filter(|d| d.p > 0.0),
    )?;
    write(dq, &merge_heads(&d_scores.matmul(&k)?, a)?, false)?;
    write(dk, &merge_heads(&d_scores.t()?.matmul(&q)?, a)?, false)?;
    write(dv, &merge_heads(&d_v, a)?, false)
}

fn spec(n: &Norm) -> NormSpec {
    NormSpec {
        eps: n.eps,
        input_dropout: n.input_dropout,
        output_dropout: n.output_dropout,
        y_dtype: DType::F32,
    }
}

/// `Norm`'s outputs: `y`, `stats`, and `r` with a residual.
pub fn norm(
    n: &Norm,
    [a, weight, bias]: [&[f32]; 3],
    residual: Option<&[f32]>,
    y: &mut [f32],
    stats: &mut [f32],
    r: Option<&mut [f32]>,
) -> Result<()> {
    let dims = [n.rows, n.width];
    let residual = residual
        .map(|x| tensor(&x[..n.rows * n.width], &dims))
        .transpose()?;
    let out = Generic.norm_forward(
        &tensor(&a[..n.rows * n.width], &dims)?,
        residual.as_ref(),
        &tensor(weight, &[n.width])?,
        &tensor(bias, &[n.width])?,
        &spec(n),
    )?;
    write(y, &out.y, false)?;
    write(stats, &out.stats, false)?;
    if let (Some(r), Some(sum)) = (r, &out.r) {
        write(r, sum, false)?;
    }
    Ok(())
}

/// `NormBackward`'s outputs; the weight and bias gradients are added in.
#[allow(clippy::too_many_arguments)]
pub fn norm_backward(
    n: &Norm,
    [x, dy, weight, stats]: [&[f32]; 4],
    d_a: &mut [f32],
    d_residual: Option<&mut [f32]>,
    d_weight: &mut [f32],
    d_bias: &mut [f32],
) -> Result<()> {
    let dims = [n.rows, n.width];
    let grads = Generic.norm_backward(
        &tensor(&x[..n.rows * n.width], &dims)?,
        &tensor(&dy[..n.rows * n.width], &dims)?,
        &tensor(weight, &[n.width])?,
        &tensor(&stats[..2 * n.rows], &[n.rows, 2])?,
        &spec(n),
        DType::F32,
        d_residual.is_some(),
    )?;
    write(d_a, &grads.d_a, false)?;
    if let (Some(out), Some(g)) = (d_residual, &grads.d_residual) {
        write(out, g, false)?;
    }
    write(d_weight, &grads.d_weight, true)?;
    write(d_bias, &grads.d_bias, true)
}

/// `c += bias` on every row of `c` `[rows, n]`.
pub fn add_bias(c: &mut [f32], bias: &[f32], n: usize) -> Result<()> {
    let rows = c.len() / n.max(1);
    let out = Generic.add_bias(&tensor(c, &[rows, n])?, &tensor(&bias[..n], &[n])?)?;
    write(c, &out, false)
}

pub fn gelu(u: &[f32], g: &mut [f32]) -> Result<()> {
    write(g, &Generic.gelu_forward(&tensor(u, &[u.len()])?)?, false)
}

pub fn gelu_backward(u: &[f32], d: &mut [f32]) -> Result<()> {
    let out = Generic.gelu_backward(&tensor(u, &[u.len()])?, &tensor(d, &[d.len()])?)?;
    write(d, &out, false)
}

pub fn column_sums(m: &[f32], rows: usize, cols: usize, into: &mut [f32]) -> Result<()> {
    write(
        into,
        &Generic.column_sums(&tensor(&m[..rows * cols], &[rows, cols])?)?,
        true,
    )
}

fn ids(input: &StepInput) -> Result<TokenIds> {
    let dims = [input.b, input.s];
    Ok(TokenIds {
        ids: u32s(&input.input_ids, &dims)?,
        types: u32s(&input.token_type_ids, &dims)?,
        positions: u32s(&input.positions(), &dims)?,
    })
}

pub fn embed(input: &StepInput, tables: [&[f32]; 3], out: &mut [f32]) -> Result<()> {
    let h = out.len() / (input.b * input.s).max(1);
    let token_ids = ids(input)?;
    let t = tables
        .iter()
        .map(|v| tensor(v, &[v.len() / h.max(1), h]))
        .collect::<Result<Vec<_>>>()?;
    write(
        out,
        &Generic.embed_forward(&token_ids, [&t[0], &t[1], &t[2]])?,
        false,
    )
}

pub fn embed_backward(
    input: &StepInput,
    d: &[f32],
    grads: [&mut [f32]; 3],
    pads: EmbedPads,
) -> Result<()> {
    let h = d.len() / (input.b * input.s).max(1);
    let token_ids = ids(input)?;
    let rows = [0, 1, 2].map(|i| grads[i].len() / h.max(1));
    let out =
        Generic.embed_backward(&tensor(d, &[input.b * input.s, h])?, &token_ids, rows, pads)?;
    for (g, t) in grads.into_iter().zip(&out) {
        write(g, t, true)?;
    }
    Ok(())
}

/// The loss, with its gradient written to `d_logits`.
pub fn qa_loss(input: &StepInput, logits: &[f32], d_logits: &mut [f32], scale: f32) -> Result<f32> {
    let rows = input.b * input.s;
    let (loss, grad) = Generic.qa_loss(
        &tensor(&logits[..rows * 2], &[rows, 2])?,
        &u32s(&input.start_positions, &[input.b])?,
        &u32s(&input.end_positions, &[input.b])?,
        scale,
    )?;
    write(d_logits, &grad, false)?;
    Ok(loss.to_vec1::<f32>()?[0])
}
