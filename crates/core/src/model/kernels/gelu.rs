//! GELU (the erf form BERT uses) in one vectorised pass each way; candle's
//! calls libm's scalar `erff` per element.

use super::math::{erf, exp};
use super::multiversion;
use super::storage::{slice, with_values};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::f32::consts::FRAC_1_SQRT_2;

const CHUNK: usize = 1 << 14;

/// `x · Φ(x)`, with Φ the standard normal CDF, differentiable.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

struct Gelu;

multiversion! {
    pub(crate) fn forward(ys: &mut [f32], xs: &[f32]) {
        for (y, &x) in ys.iter_mut().zip(xs) {
            *y = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
        }
    }
}

multiversion! {
    /// d/dx x·Φ(x) = Φ(x) + x·φ(x), times the incoming gradient.
    pub(crate) fn backward(ds: &mut [f32], xs: &[f32], gs: &[f32]) {
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for ((d, &x), &g) in ds.iter_mut().zip(xs).zip(gs) {
            let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
            let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
            *d = g * (cdf + x * pdf);
        }
    }
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l, "gelu")?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(ys, xs)| forward(ys, xs));
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_values(x, "gelu backward", |xv| {
            with_values(grad, "gelu backward", |g| {
                let mut dx = vec![0f32; xv.len()];
                dx.par_chunks_mut(CHUNK)
                    .zip(xv.par_chunks(CHUNK))
                    .zip(g.par_chunks(CHUNK))
                    .for_each(|((ds, xs), gs)| backward(ds, xs, gs));
                Ok(dx)
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
    }
}
