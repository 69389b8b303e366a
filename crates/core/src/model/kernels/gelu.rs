//! GELU (the erf form BERT uses) in one vectorised pass each way; candle's
//! calls libm's scalar `erff` per element. And the tanh approximation
//! (`gelu_new`, ALBERT's) for the lean step, on our own `exp`, so it is the
//! same bits on every CPU.

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

/// √(2/π) and the cubic's coefficient of transformers' `NewGELUActivation`.
const TANH_K: f32 = 0.797_884_6;
const TANH_C: f32 = 0.044_715;

/// tanh from one `exp`: 1 − 2/(e^{2z} + 1), exact at ±∞ (e^{2z} = ∞ or 0).
#[inline(always)]
fn tanh(z: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * z) + 1.0)
}

multiversion! {
    /// `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    pub(crate) fn tanh_forward(ys: &mut [f32], xs: &[f32]) {
        for (y, &x) in ys.iter_mut().zip(xs) {
            let t = tanh(TANH_K * (x + TANH_C * x * x * x));
            *y = 0.5 * x * (1.0 + t);
        }
    }
}

multiversion! {
    /// `d ← d · gelu_new'(x)`, in place:
    /// 0.5 (1 + t) + 0.5 x (1 − t²) √(2/π) (1 + 3 · 0.044715 x²).
    pub(crate) fn tanh_backward_in_place(ds: &mut [f32], xs: &[f32]) {
        for (d, &x) in ds.iter_mut().zip(xs) {
            let t = tanh(TANH_K * (x + TANH_C * x * x * x));
            let slope = 0.5 * (1.0 + t)
                + 0.5 * x * (1.0 - t * t) * TANH_K * (1.0 + 3.0 * TANH_C * x * x);
            *d *= slope;
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

#[cfg(test)]
mod tests {
    /// Against transformers' `NewGELUActivation` and its autograd derivative
    /// on 64 points of [-6, 6] (tools/reference/family_fixtures.py).
    #[test]
    fn the_tanh_gelu_is_transformers_gelu_new() {
        let fx: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../../tests/fixtures/families/albert/gelu_new.json"
        ))
        .unwrap();
        let col = |k: &str| -> Vec<f32> {
            fx[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        };
        let (xs, want_y, want_d) = (col("x"), col("y"), col("dy_dx"));
        let mut ys = vec![0f32; xs.len()];
        super::tanh_forward(&mut ys, &xs);
        let mut ds = vec![1f32; xs.len()];
        super::tanh_backward_in_place(&mut ds, &xs);
        for i in 0..xs.len() {
            assert!(
                (ys[i] - want_y[i]).abs() <= 2e-6,
                "x {}: {} vs {}",
                xs[i],
                ys[i],
                want_y[i]
            );
            assert!(
                (ds[i] - want_d[i]).abs() <= 2e-6,
                "x {}: {} vs {}",
                xs[i],
                ds[i],
                want_d[i]
            );
        }
    }

    /// The tanh GELU against candle's `gelu` (the same formula, libm's
    /// tanh), and its derivative against central differences.
    #[test]
    fn the_tanh_gelu_is_candles_and_its_slope_is_the_derivative() {
        let xs: Vec<f32> = (0..=240).map(|i| -12.0 + 0.1 * i as f32).collect();
        let mut ys = vec![0f32; xs.len()];
        super::tanh_forward(&mut ys, &xs);
        let t = candle_core::Tensor::new(xs.as_slice(), &candle_core::Device::Cpu).unwrap();
        let want: Vec<f32> = t.gelu().unwrap().to_vec1().unwrap();
        for (i, (y, w)) in ys.iter().zip(&want).enumerate() {
            assert!(
                (y - w).abs() <= 2e-6 * w.abs().max(1.0),
                "x {}: {y} vs {w}",
                xs[i]
            );
        }
        let mut slope = vec![1f32; xs.len()];
        super::tanh_backward_in_place(&mut slope, &xs);
        for (i, &x) in xs.iter().enumerate() {
            let f = |x: f64| {
                let t = (0.797_884_560_802_865_4 * (x + 0.044715 * x * x * x)).tanh();
                0.5 * x * (1.0 + t)
            };
            let h = 1e-4;
            let numeric = (f(x as f64 + h) - f(x as f64 - h)) / (2.0 * h);
            assert!(
                (slope[i] as f64 - numeric).abs() <= 1e-5,
                "x {x}: slope {} vs {numeric}",
                slope[i]
            );
        }
    }
}
