//! AdamW's update for f32 parameters on the CPU, in place: one fused pass over
//! parameter, gradient and both moments, with no allocation per step (the
//! tensor-op version made about ten temporaries the size of the model).

use crate::model::kernels::multiversion;
use candle_core::{bail, CpuStorage, InplaceOp1, Layout, Result, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

/// The step's constants, as `torch.optim.AdamW` computes them.
#[derive(Clone, Copy)]
pub struct Step {
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

/// Updates `param` (f32, CPU) and its moments in place from `grad`.
pub fn update(
    param: &Tensor,
    grad: &Tensor,
    m: &mut [f32],
    v: &mut [f32],
    step: Step,
) -> Result<()> {
    let grad = grad.contiguous()?;
    let (storage, layout) = grad.storage_and_layout();
    let g = match &*storage {
        candle_core::Storage::Cpu(cpu) => crate::model::kernels::f32_slice(cpu, layout, "adamw")?,
        _ => bail!("adamw: the gradient is not on the CPU"),
    };
    update_slice(param, g, m, v, step)
}

/// `update` with the gradient as a slice (the lean step's arena).
pub fn update_slice(
    param: &Tensor,
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: Step,
) -> Result<()> {
    if g.len() != m.len() || g.len() != v.len() || g.len() != param.elem_count() {
        bail!(
            "adamw: a gradient of {} values does not fit the parameter {:?}",
            g.len(),
            param.dims()
        );
    }
    param.inplace_op1(&Update {
        grad: g,
        moments: Mutex::new((m, v)),
        step,
    })
}

struct Update<'a> {
    grad: &'a [f32],
    moments: Mutex<(&'a mut [f32], &'a mut [f32])>,
    step: Step,
}

const CHUNK: usize = 1 << 14;

impl InplaceOp1 for Update<'_> {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let CpuStorage::F32(data) = storage else {
            bail!("adamw: the parameter is not f32")
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("adamw: the parameter is not contiguous")
        };
        let p = &mut data[start..end];
        let mut moments = self.moments.lock().expect("moments lock");
        let (m, v) = &mut *moments;
        let s = self.step;
        p.par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(self.grad.par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| chunk(p, m, v, g, s));
        Ok(())
    }
}

multiversion! {
    fn chunk(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], s: Step) {
        for i in 0..p.len() {
            let gi = if s.grad_scale == 1.0 { g[i] } else { g[i] * s.grad_scale };
            m[i] = s.beta1 * m[i] + (1.0 - s.beta1) * gi;
            v[i] = s.beta2 * v[i] + (1.0 - s.beta2) * gi * gi;
            let denom = v[i].sqrt() / s.bias_correction2_sqrt + s.eps;
            p[i] = p[i] * s.decay - s.step_size * (m[i] / denom);
        }
    }
}
