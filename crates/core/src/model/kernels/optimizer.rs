//! The optimizer's arithmetic on host slices: AdamW's fused update and the
//! squared norms clipping reads. The lean step's CPU twins of the `adamw` and
//! `norms` kernels; `train` drives them.

use super::multiversion;

/// One parameter group's AdamW constants at a step, as `torch.optim.AdamW`
/// computes them.
#[derive(Clone, Copy, Debug)]
pub struct AdamStep {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// `lr / (1 − β₁ᵗ)`
    pub step_size: f32,
    /// `√(1 − β₂ᵗ)`
    pub bias_correction2_sqrt: f32,
    /// `1 − lr·weight_decay`, or 1 for parameters without decay.
    pub decay: f32,
    /// Clipping's coefficient, applied to the gradient as it is read (1: none).
    pub grad_scale: f32,
}

multiversion! {
    /// AdamW on one chunk of a parameter, its moments and its gradient.
    pub fn update_chunk(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], s: AdamStep) {
        for i in 0..p.len() {
            let gi = if s.grad_scale == 1.0 { g[i] } else { g[i] * s.grad_scale };
            m[i] = s.beta1 * m[i] + (1.0 - s.beta1) * gi;
            v[i] = s.beta2 * v[i] + (1.0 - s.beta2) * gi * gi;
            let denom = v[i].sqrt() / s.bias_correction2_sqrt + s.eps;
            p[i] = p[i] * s.decay - s.step_size * (m[i] / denom);
        }
    }
}

/// `Σ g²` in f64, in fixed chunks of 2¹⁴ so the sum's order never depends
/// on the thread count.
pub fn squared_norm(g: &[f32]) -> f64 {
    g.chunks(1 << 14)
        .map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
        .sum()
}
