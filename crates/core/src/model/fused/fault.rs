//! The fault switch on a fused implementation that has no CPU code to break
//! (the CUDA kernels): a wrapper that moves the first output of the broken
//! kernel by one, as the CPU twins do to themselves (`Kernel::sabotage`).

use super::kernel::Kernel;
use super::ops::{
    AdamState, AdamStep, EmbedPads, FusedOps, NormForward, NormGrads, NormSpec, TokenIds,
};
use crate::rng::philox::Dropout;
use anyhow::Result;
use candle_core::{DType, Tensor};

/// `inner` with `broken`'s outputs off by one.
pub struct Faulty<F> {
    inner: F,
    broken: Kernel,
}

/// `inner` as the fault switch leaves it: wrapped when the switch names a
/// kernel, itself otherwise.
pub fn with_fault<F: FusedOps + 'static>(inner: F) -> Box<dyn FusedOps> {
    match Kernel::ALL.into_iter().find(|k| k.is_broken_on_purpose()) {
        Some(broken) => Box::new(Faulty { inner, broken }),
        None => Box::new(inner),
    }
}

impl<F> Faulty<F> {
    /// `t` with its first value moved by one when `k` is the broken kernel.
    fn hit(&self, k: Kernel, t: Tensor) -> Result<Tensor> {
        if k != self.broken || t.elem_count() == 0 {
            return Ok(t);
        }
        let mut delta = vec![0f32; t.elem_count()];
        delta[0] = 1.0;
        let delta = Tensor::from_vec(delta, t.shape(), t.device())?.to_dtype(t.dtype())?;
        Ok((t + delta)?)
    }
}

impl<F: FusedOps> FusedOps for Faulty<F> {
    fn softmax_forward(
        &self,
        scores: &Tensor,
        key_mask: &Tensor,
        scale: f32,
        dropout: Option<Dropout>,
    ) -> Result<(Tensor, Tensor)> {
        let (probs, dropped) = self
            .inner
            .softmax_forward(scores, key_mask, scale, dropout)?;
        Ok((probs, self.hit(Kernel::Softmax, dropped)?))
    }

    fn softmax_backward(
        &self,
        probs: &Tensor,
        grad: &Tensor,
        scale: f32,
        dropout: Option<Dropout>,
    ) -> Result<Tensor> {
        let out = self.inner.softmax_backward(probs, grad, scale, dropout)?;
        self.hit(Kernel::Softmax, out)
    }

    fn norm_forward(
        &self,
        a: &Tensor,
        residual: Option<&Tensor>,
        weight: &Tensor,
        bias: &Tensor,
        spec: &NormSpec,
    ) -> Result<NormForward> {
        let out = self.inner.norm_forward(a, residual, weight, bias, spec)?;
        Ok(NormForward {
            y: self.hit(Kernel::LayerNorm, out.y)?,
            ..out
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
        let out = self
            .inner
            .norm_backward(x, dy, weight, stats, spec, d_a_dtype, residual)?;
        Ok(NormGrads {
            d_a: self.hit(Kernel::LayerNorm, out.d_a)?,
            ..out
        })
    }

    fn add_bias(&self, c: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let out = self.inner.add_bias(c, bias)?;
        self.hit(Kernel::Bias, out)
    }

    fn gelu_forward(&self, u: &Tensor) -> Result<Tensor> {
        let out = self.inner.gelu_forward(u)?;
        self.hit(Kernel::Gelu, out)
    }

    fn gelu_backward(&self, u: &Tensor, d: &Tensor) -> Result<Tensor> {
        let out = self.inner.gelu_backward(u, d)?;
        self.hit(Kernel::Gelu, out)
    }

    fn column_sums(&self, m: &Tensor) -> Result<Tensor> {
        let out = self.inner.column_sums(m)?;
        self.hit(Kernel::ColumnSums, out)
    }

    fn embed_forward(&self, ids: &TokenIds, tables: [&Tensor; 3]) -> Result<Tensor> {
        let out = self.inner.embed_forward(ids, tables)?;
        self.hit(Kernel::Embedding, out)
    }

    fn embed_backward(
        &self,
        d: &Tensor,
        ids: &TokenIds,
        rows: [usize; 3],
        pads: EmbedPads,
    ) -> Result<[Tensor; 3]> {
        let [word, position, kinds] = self.inner.embed_backward(d, ids, rows, pads)?;
        Ok([word, self.hit(Kernel::Embedding, position)?, kinds])
    }

    fn qa_loss(
        &self,
        logits: &Tensor,
        start: &Tensor,
        end: &Tensor,
        scale: f32,
    ) -> Result<(Tensor, Tensor)> {
        let (loss, grad) = self.inner.qa_loss(logits, start, end, scale)?;
        Ok((self.hit(Kernel::QaLoss, loss)?, grad))
    }

    fn adamw(
        &self,
        state: AdamState,
        g: &Tensor,
        step: &AdamStep,
        half: Option<DType>,
    ) -> Result<(AdamState, Option<Tensor>)> {
        let (next, copy) = self.inner.adamw(state, g, step, half)?;
        Ok((
            AdamState {
                w: self.hit(Kernel::AdamW, next.w)?,
                ..next
            },
            copy,
        ))
    }

    fn squared_norms(&self, grads: &[Tensor]) -> Result<Vec<f64>> {
        let mut norms = self.inner.squared_norms(grads)?;
        if self.broken == Kernel::Norms {
            if let Some(first) = norms.first_mut() {
                *first += 1.0;
            }
        }
        Ok(norms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fused::check;
    use crate::model::fused::generic::Generic;
    use candle_core::Device;

    /// The wrapper breaks what it names and nothing else: wrapped around the
    /// generic ops, the check fails exactly that kernel.
    #[test]
    fn a_wrapped_kernel_fails_the_check_alone() {
        for broken in Kernel::ALL {
            let faulty = Faulty {
                inner: Generic,
                broken,
            };
            let report = check::run(&faulty, "faulty generic", &Device::Cpu, DType::F32);
            assert_eq!(report.failed(), vec![broken], "{:#?}", report.checks);
        }
    }
}
