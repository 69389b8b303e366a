//! Every fused op as a composition of candle's own ops, on any device: the
//! reference the self-check holds a fused kernel to, and the op a run
//! falls back to when its kernel is switched off. Arithmetic is f32
//! whatever the inputs' dtype. Dropout masks are explicit, drawn on the host
//! from the same Philox words as the kernels (`rng::philox`), so a fallback
//! keeps the run's masks: candle's own dropout would draw others.

use super::ops::{
    AdamState, AdamStep, EmbedPads, FusedOps, NormForward, NormGrads, NormSpec, TokenIds,
};
use crate::rng::philox::{drop_threshold, Dropout};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, IndexOp, Tensor, D};

/// candle's generic ops.
pub struct Generic;

/// The multipliers of `d` over `dims` (0 or `1/(1−p)`), element `i` at flat
/// index `i`, as an f32 tensor on `device`.
pub fn dropout_multipliers(d: Dropout, dims: &[usize], device: &Device) -> Result<Tensor> {
    let n: usize = dims.iter().product();
    let mut words = vec![0u32; n];
    d.stream.fill(0, &mut words);
    let (threshold, keep) = (drop_threshold(d.p), 1.0 / (1.0 - d.p));
    let values: Vec<f32> = words
        .iter()
        .map(|&w| if w >= threshold { keep } else { 0.0 })
        .collect();
    Ok(Tensor::from_vec(values, dims, device)?)
}

/// `x` (f32) dropped out by `d`, or `x` itself.
fn dropped(x: &Tensor, d: Option<Dropout>) -> Result<Tensor> {
    match d.filter(|d| d.p > 0.0) {
        Some(d) => Ok(x.mul(&dropout_multipliers(d, x.dims(), x.device())?)?),
        None => Ok(x.clone()),
    }
}

fn f32s(x: &Tensor) -> Result<Tensor> {
    Ok(x.to_dtype(DType::F32)?)
}

fn dims2(x: &Tensor, what: &str) -> Result<(usize, usize)> {
    x.dims2()
        .with_context(|| format!("{what}: expected a matrix, got {:?}", x.dims()))
}

/// `softmax` over the last axis of f32 `x`, by candle's primitive ops.
fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let top = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&top)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// A `[b, s]` 0/1 key mask as the additive `[b, 1, 1, s]` f32 bias (0 or
/// `f32::MIN`, as the CPU's kernel adds).
fn mask_bias(key_mask: &Tensor) -> Result<Tensor> {
    let (b, s) = dims2(key_mask, "key_mask")?;
    let padding = key_mask.eq(0u32)?.to_dtype(DType::F32)?;
    Ok((padding * f64::from(f32::MIN))?.reshape((b, 1, 1, s))?)
}

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

impl FusedOps for Generic {
    fn softmax_forward(
        &self,
        scores: &Tensor,
        key_mask: &Tensor,
        scale: f32,
        dropout: Option<Dropout>,
    ) -> Result<(Tensor, Tensor)> {
        let x = (f32s(scores)? * f64::from(scale))?.broadcast_add(&mask_bias(key_mask)?)?;
        let probs = softmax_last(&x)?;
        let out = dropped(&probs, dropout)?.to_dtype(scores.dtype())?;
        Ok((probs.to_dtype(scores.dtype())?, out))
    }

    fn softmax_backward(
        &self,
        probs: &Tensor,
        grad: &Tensor,
        scale: f32,
        dropout: Option<Dropout>,
    ) -> Result<Tensor> {
        let p = f32s(probs)?;
        let g = dropped(&f32s(grad)?, dropout)?;
        let inner = (&g * &p)?.sum_keepdim(D::Minus1)?;
        let ds = (p * g.broadcast_sub(&inner)?)?;
        Ok((ds * f64::from(scale))?.to_dtype(grad.dtype())?)
    }

    fn norm_forward(
        &self,
        a: &Tensor,
        residual: Option<&Tensor>,
        weight: &Tensor,
        bias: &Tensor,
        spec: &NormSpec,
    ) -> Result<NormForward> {
        let a32 = f32s(a)?;
        let r = match residual {
            Some(res) => Some((dropped(&a32, spec.input_dropout)? + f32s(res)?)?),
            None => None,
        };
        let x = r.as_ref().unwrap_or(&a32);
        let mean = x.mean_keepdim(1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(1)?;
        let rstd = (var + f64::from(spec.eps))?.sqrt()?.recip()?;
        let y = centred
            .broadcast_mul(&rstd)?
            .broadcast_mul(&f32s(weight)?)?
            .broadcast_add(&f32s(bias)?)?;
        let y = dropped(&y, spec.output_dropout)?.to_dtype(spec.y_dtype)?;
        Ok(NormForward {
            y,
            stats: Tensor::cat(&[&mean, &rstd], 1)?,
            r,
        })
    }

    fn norm_backward(
        &self,
        x: &Tensor,
        dy: &Tensor,
        weight: &Tensor,
        stats: &Tensor,
        spec: &NormSpec,
        d_a_dtype: DType,
        residual: bool,
    ) -> Result<NormGrads> {
        let g = dropped(&f32s(dy)?, spec.output_dropout)?;
        let (mean, rstd) = (stats.i((.., 0..1))?, stats.i((.., 1..2))?);
        let xhat = f32s(x)?.broadcast_sub(&mean)?.broadcast_mul(&rstd)?;
        let gw = g.broadcast_mul(&f32s(weight)?)?;
        let mean_gw = gw.mean_keepdim(1)?;
        let mean_gwx = (&gw * &xhat)?.mean_keepdim(1)?;
        let dr = gw
            .broadcast_sub(&mean_gw)?
            .sub(&xhat.broadcast_mul(&mean_gwx)?)?
            .broadcast_mul(&rstd)?;
        let d_weight = (&g * &xhat)?.sum(0)?;
        let d_bias = g.sum(0)?;
        let d_residual = residual.then(|| dr.to_dtype(dy.dtype())).transpose()?;
        let d_a = dropped(&dr, spec.input_dropout)?.to_dtype(d_a_dtype)?;
        Ok(NormGrads {
            d_a,
            d_residual,
            d_weight,
            d_bias,
        })
    }

    fn add_bias(&self, c: &Tensor, bias: &Tensor) -> Result<Tensor> {
        Ok(f32s(c)?.broadcast_add(&f32s(bias)?)?.to_dtype(c.dtype())?)
    }

    fn gelu_forward(&self, u: &Tensor) -> Result<Tensor> {
        let x = f32s(u)?;
        let cdf = (((&x * std::f64::consts::FRAC_1_SQRT_2)?.erf()? + 1.0)? * 0.5)?;
        Ok((x * cdf)?.to_dtype(u.dtype())?)
    }

    fn gelu_backward(&self, u: &Tensor, d: &Tensor) -> Result<Tensor> {
        let x = f32s(u)?;
        let cdf = (((&x * std::f64::consts::FRAC_1_SQRT_2)?.erf()? + 1.0)? * 0.5)?;
        let pdf = ((x.sqr()? * -0.5)?.exp()? * INV_SQRT_2PI)?;
        let slope = (cdf + (x * pdf)?)?;
        Ok((f32s(d)? * slope)?.to_dtype(d.dtype())?)
    }

    fn column_sums(&self, m: &Tensor) -> Result<Tensor> {
        dims2(m, "column sums' input")?;
        Ok(f32s(m)?.sum(0)?)
    }

    fn embed_forward(
        &self,
        t: &TokenIds,
        [word, position, token_type]: [&Tensor; 3],
    ) -> Result<Tensor> {
        dims2(&t.ids, "input_ids")?;
        let words = word.index_select(&t.ids.flatten_all()?, 0)?;
        let kinds = token_type.index_select(&t.types.flatten_all()?, 0)?;
        let positions = position.index_select(&t.positions.flatten_all()?, 0)?;
        Ok(((words + kinds)? + positions)?)
    }

    fn embed_backward(
        &self,
        d: &Tensor,
        t: &TokenIds,
        rows: [usize; 3],
        pads: EmbedPads,
    ) -> Result<[Tensor; 3]> {
        dims2(&t.ids, "input_ids")?;
        let h = dims2(d, "the embeddings' gradient")?.1;
        let dev = d.device();
        // Scatter-add into a table, skipping the rows of `skip` (padding_idx).
        let scatter = |ids: &Tensor, rows: usize, skip: Option<u32>| -> Result<Tensor> {
            let ids = ids.flatten_all()?;
            let d = match skip {
                Some(pad) => d.broadcast_mul(&ids.ne(pad)?.to_dtype(DType::F32)?.unsqueeze(1)?)?,
                None => d.clone(),
            };
            Ok(Tensor::zeros((rows, h), DType::F32, dev)?.index_add(&ids, &d, 0)?)
        };
        Ok([
            scatter(&t.ids, rows[0], Some(pads.word))?,
            scatter(&t.positions, rows[1], pads.position)?,
            scatter(&t.types, rows[2], None)?,
        ])
    }

    fn qa_loss(
        &self,
        logits: &Tensor,
        start: &Tensor,
        end: &Tensor,
        scale: f32,
    ) -> Result<(Tensor, Tensor)> {
        let b = start.dims1().context("start_positions")?;
        let (rows, two) = dims2(logits, "logits")?;
        if two != 2 || b == 0 || rows % b != 0 {
            bail!("logits {:?} do not fit {b} windows", logits.dims());
        }
        let s = rows / b;
        let l = logits.reshape((b, s, 2))?;
        let positions = Tensor::arange(0u32, s as u32, l.device())?.unsqueeze(0)?;
        let mut losses = Vec::new();
        let mut grads = Vec::new();
        for (column, target) in [start, end].into_iter().enumerate() {
            let z = l.i((.., .., column))?.contiguous()?;
            let top = z.max_keepdim(1)?;
            let shifted = z.broadcast_sub(&top)?;
            let log_sum = shifted.exp()?.sum_keepdim(1)?.log()?;
            let log_p = shifted.broadcast_sub(&log_sum)?;
            let target = target.unsqueeze(1)?;
            let onehot = positions.broadcast_eq(&target)?.to_dtype(DType::F32)?;
            losses.push((log_p.gather(&target.contiguous()?, 1)?.mean_all()? * -1.0)?);
            grads.push(((log_p.exp()? - onehot)? * f64::from(scale / (2.0 * b as f32)))?);
        }
        let loss = ((&losses[0] + &losses[1])? / 2.0)?.reshape(1)?;
        let grad = Tensor::stack(&grads, 2)?.reshape((rows, 2))?;
        Ok((loss, grad))
    }

    fn adamw(
        &self,
        state: AdamState,
        g: &Tensor,
        step: &AdamStep,
        half: Option<DType>,
    ) -> Result<(AdamState, Option<Tensor>)> {
        let gi = (g * f64::from(step.grad_scale))?;
        let m = ((&state.m * f64::from(step.beta1))? + (&gi * f64::from(1.0 - step.beta1))?)?;
        let v = ((&state.v * f64::from(step.beta2))? + (gi.sqr()? * f64::from(1.0 - step.beta2))?)?;
        let denom = ((v.sqrt()? / f64::from(step.bias_correction2_sqrt))? + f64::from(step.eps))?;
        let w =
            ((&state.w * f64::from(step.decay))? - ((&m / &denom)? * f64::from(step.step_size))?)?;
        let half = half.map(|dt| w.to_dtype(dt)).transpose()?;
        Ok((AdamState { w, m, v }, half))
    }

    fn squared_norms(&self, grads: &[Tensor]) -> Result<Vec<f64>> {
        grads
            .iter()
            .map(|g| {
                Ok(g.to_dtype(DType::F64)?
                    .sqr()?
                    .sum_all()?
                    .to_scalar::<f64>()?)
            })
            .collect()
    }
}
