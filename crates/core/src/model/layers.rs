//! The layers BERT needs, written so every one is differentiable: candle-nn's
//! fused LayerNorm records no backward pass, and its dropout is not seeded.

use super::census::scope;
use super::cuda_layout::matmul;
use super::kernels;
use crate::rng::SeededRng;
use candle_core::{DType, Result, Tensor, D};

/// GELU (erf form): the fused kernel for f32 on the CPU, candle's elsewhere.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    scope("gelu", || {
        if kernels::applies(&[x]) {
            kernels::gelu(x)
        } else {
            x.gelu_erf()
        }
    })
}

/// The config's GELU: the erf form (`gelu` above), or the tanh
/// approximation (`gelu_new`) by candle's differentiable op, whose formula
/// is transformers' `NewGELUActivation`.
pub fn activation(x: &Tensor, act: crate::model::Activation) -> Result<Tensor> {
    match act {
        crate::model::Activation::GeluErf => gelu(x),
        crate::model::Activation::GeluTanh => scope("gelu", || x.gelu()),
    }
}

/// `x · Wᵀ + b` with a Hugging Face `[out, in]` weight.
#[derive(Clone, Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        scope("linear", || {
            if kernels::applies(&[x, &self.weight, &self.bias]) {
                return kernels::linear(x, &self.weight, &self.bias);
            }
            let w = self.weight.t()?;
            let y = match x.dims() {
                [b, s, h] => matmul(&x.reshape((b * s, *h))?, &w)?.reshape((*b, *s, ()))?,
                _ => matmul(x, &w)?,
            };
            y.broadcast_add(&self.bias)
        })
    }
}

/// LayerNorm over the last dimension, from primitive (differentiable) ops.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centered = x.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centered.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

/// Inverted dropout: in training, zero each element with probability `p` and
/// scale the rest by 1/(1-p); in evaluation, the identity.
///
/// On the CPU the mask comes from `rng` alone, so a run resumed from its saved
/// RNG state draws the same masks; chunks draw from streams derived from one
/// seed, in parallel, with the same result whatever the thread count. On CUDA
/// the mask is drawn on the device from the device's seeded generator.
pub fn dropout(x: &Tensor, p: f64, rng: Option<&mut SeededRng>) -> Result<Tensor> {
    let Some(rng) = rng else { return Ok(x.clone()) };
    if p <= 0.0 {
        return Ok(x.clone());
    }
    let scale = 1.0 / (1.0 - p);
    // The generic graph draws as CUDA does. Masks are drawn in f32 on every
    // device: CUDA's `rand` rejects bf16 and f16.
    let mask = if x.device().is_cpu() && !kernels::generic_graph_active() {
        let values = cpu_mask(x.elem_count(), p as f32, scale as f32, rng.next_u64());
        Tensor::from_vec(values, x.shape(), x.device())?
    } else {
        (Tensor::rand(0f32, 1f32, x.shape(), x.device())?
            .ge(p)?
            .to_dtype(DType::F32)?
            * scale)?
    };
    x.mul(&mask.to_dtype(x.dtype())?)
}

/// `scale` (keep) or 0 (drop) per element, from the streams seeded by `seed`.
fn cpu_mask(n: usize, p: f32, scale: f32, seed: u64) -> Vec<f32> {
    use rayon::prelude::*;
    const CHUNK: usize = 1 << 16;
    let mut mask = vec![0f32; n];
    mask.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut rng = SeededRng::new(SeededRng::new(seed ^ i as u64).next_u64());
            for m in chunk {
                *m = if rng.next_f32() < p { 0.0 } else { scale };
            }
        });
    mask
}

/// The additive attention mask, `[b, 1, 1, s]`: 0 where attended, the dtype's
/// lowest finite value where masked (so a fully masked row stays finite).
pub fn additive_mask(attention_mask: &Tensor, dtype: DType) -> Result<Tensor> {
    let (b, s) = attention_mask.dims2()?;
    let lowest = match dtype {
        DType::BF16 => half::bf16::MIN.to_f64(),
        DType::F16 => half::f16::MIN.to_f64(),
        DType::F64 => f64::MIN,
        _ => f32::MIN as f64,
    };
    // lowest · (1 - keep): 0 for kept positions, `lowest` for masked ones.
    let keep = attention_mask.to_dtype(DType::F32)?;
    keep.affine(-lowest, lowest)?
        .to_dtype(dtype)?
        .reshape((b, 1, 1, s))
}
