//! AdamW's update for f32 parameters on the CPU, in place: one fused pass over
//! parameter, gradient and both moments, with no allocation per step (the
//! tensor-op version made about ten temporaries the size of the model).

use candle_core::{bail, CpuStorage, InplaceOp1, Layout, Result, Tensor};
use rayon::prelude::*;
use std::sync::Mutex;

use crate::model::kernels::optimizer::update_chunk as chunk;
pub use crate::model::kernels::optimizer::AdamStep as Step;

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
