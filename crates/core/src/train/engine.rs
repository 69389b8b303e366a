//! How a run's optimizer steps compute: the lean step or candle's autograd
//! graph, chosen once per run by its config, device and dropout generator.
//! The trainer drives both the same way: micro-batches, one read of the
//! losses and gradient norms, then the clipped update.

use super::lean::device::DeviceStep;
use super::lean::{LeanStep, MicroBatchDropout};
use super::optimizer::{clip_coefficient, clip_to_norm, squared_norms, AdamW, Grads};
use super::step::accumulate_gradients;
use crate::config::{Graph, RunConfig};
use crate::model::fused::KernelSet;
use crate::model::{BertConfig, BertQa, Params, WindowBatch};
use crate::rng::philox::MaskStream;
use crate::rng::{DropoutGenerator, SeededRng};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};

// One engine per run: the autograd variant's size costs nothing to box away.
#[allow(clippy::large_enum_variant)]
pub enum Engine {
    /// f32 on the CPU: the explicit backward pass, Philox dropout.
    Lean {
        step: Box<LeanStep>,
        masks: Masks,
        losses: Vec<f32>,
    },
    /// CUDA (f32 or bf16): the same sequence over device tensors, each
    /// fused op on its CUDA kernel where the self-check trusts it, Philox
    /// dropout.
    LeanDevice { step: Box<DeviceStep>, masks: Masks },
    /// candle's graph (fused CPU kernels or the generic ops), dropout from
    /// the run's `SeededRng` (or the device's generator).
    Autograd {
        f32_model: BertQa,
        compute: DType,
        autocast: Option<BertQa>,
        grads: Grads,
        losses: Vec<Tensor>,
    },
}

/// The lean steps' dropout: the run's Philox key and each site's rate.
#[derive(Clone, Copy, Debug)]
pub struct Masks {
    key: [u32; 2],
    hidden: f32,
    attention: f32,
}

impl Masks {
    /// Micro-batch `round`'s dropout.
    fn at(&self, round: u64) -> MicroBatchDropout {
        MicroBatchDropout {
            key: self.key,
            round: round as u32,
            hidden: self.hidden,
            attention: self.attention,
        }
    }
}

/// Philox's round for micro-batch `i` of optimizer step `step` (0-based):
/// its number in the run, the same after a resume. Counted with the
/// configured accumulation, not the step's own group: an epoch's short last
/// group would otherwise reuse the numbers of earlier micro-batches.
pub fn dropout_round(step: u64, accumulation: usize, i: usize) -> u64 {
    step * accumulation.max(1) as u64 + i as u64
}

/// The generator a fresh run of `config` draws with on `device`.
pub fn generator_for(config: &RunConfig, device: &Device, compute: DType) -> DropoutGenerator {
    if lean_applies(config, device, compute) {
        DropoutGenerator::Philox
    } else {
        DropoutGenerator::SeededRng
    }
}

/// The lean step trains graph `auto` runs in f32 on the CPU, and in f32 or
/// bf16 on CUDA (its kernels have no f16).
fn lean_applies(config: &RunConfig, device: &Device, compute: DType) -> bool {
    config.graph == Graph::Auto
        && match device {
            Device::Cpu => compute == DType::F32,
            _ => device.is_cuda() && matches!(compute, DType::F32 | DType::BF16),
        }
}

impl Engine {
    /// The engine that draws with `generator`: a checkpoint's, or a fresh
    /// run's `generator_for`. A Philox checkpoint resumed where the lean
    /// step cannot run is refused, never re-rolled on another generator.
    pub fn new(
        config: &RunConfig,
        model: &BertConfig,
        params: &Params,
        device: &Device,
        compute: DType,
        generator: DropoutGenerator,
    ) -> Result<Self> {
        match generator {
            DropoutGenerator::Philox => {
                if !lean_applies(config, device, compute) {
                    bail!(
                        "this run drew its dropout masks with {} on the lean step, which trains \
                         with graph \"auto\" in f32 on the CPU or in f32 or bf16 on CUDA; \
                         resuming it with graph {:?} on {device:?} in {compute:?} would draw other \
                         masks (resume it with graph auto on the CPU in f32, or on CUDA)",
                        generator.name(),
                        config.graph,
                    );
                }
                let masks = Masks {
                    key: MaskStream::key_for_seed(config.seed),
                    hidden: model.hidden_dropout_prob as f32,
                    attention: model.attention_probs_dropout_prob as f32,
                };
                if !device.is_cpu() {
                    return Ok(Engine::LeanDevice {
                        step: Box::new(DeviceStep::new(model, params, compute)?),
                        masks,
                    });
                }
                let trusted = crate::model::fused::cpu_check().trusted();
                Ok(Engine::Lean {
                    step: Box::new(LeanStep::new(model, params)?.with_kernels(trusted)),
                    masks,
                    losses: Vec::new(),
                })
            }
            DropoutGenerator::SeededRng => Ok(Engine::Autograd {
                f32_model: BertQa::new(model.clone(), params)?,
                compute,
                autocast: None,
                grads: Grads::new(),
                losses: Vec::new(),
            }),
        }
    }

    /// The kernels that run fused (none on the autograd graph).
    pub fn fused_kernels(&self) -> KernelSet {
        match self {
            Engine::Lean { step, .. } => step.kernels(),
            Engine::LeanDevice { step, .. } => step.kernels(),
            Engine::Autograd { .. } => KernelSet::none(),
        }
    }

    /// Which engine this is, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Lean { .. } => "lean step (CPU)",
            Engine::LeanDevice { .. } => "lean step (device tensors)",
            Engine::Autograd { .. } => "autograd graph",
        }
    }

    /// The launches of the step so far, counted where the host issues
    /// them (the lean steps; the autograd graph does not count its own).
    pub fn launches(&self) -> Option<usize> {
        match self {
            Engine::Lean { step, .. } => Some(step.launches.total()),
            Engine::LeanDevice { step, .. } => Some(step.calls),
            Engine::Autograd { .. } => None,
        }
    }

    pub fn generator(&self) -> DropoutGenerator {
        match self {
            Engine::Lean { .. } | Engine::LeanDevice { .. } => DropoutGenerator::Philox,
            Engine::Autograd { .. } => DropoutGenerator::SeededRng,
        }
    }

    /// Starts an optimizer step (autocast copies the updated weights).
    pub fn begin(&mut self, params: &Params) -> Result<()> {
        match self {
            Engine::Lean { step, losses, .. } => {
                step.begin();
                losses.clear();
            }
            Engine::LeanDevice { step, .. } => step.begin(params)?,
            Engine::Autograd {
                f32_model,
                compute,
                autocast,
                grads,
                losses,
            } => {
                grads.clear();
                losses.clear();
                *autocast = if *compute == DType::F32 {
                    None
                } else {
                    Some(BertQa::with_dtype(
                        f32_model.config.clone(),
                        params,
                        *compute,
                    )?)
                };
            }
        }
        Ok(())
    }

    /// One micro-batch's gradients of `loss × scale`, added in. `round`
    /// numbers the micro-batch in the run (Philox's counter); `rng` is the
    /// autograd graph's dropout stream.
    pub fn micro_batch(
        &mut self,
        params: &Params,
        batch: &WindowBatch,
        scale: f64,
        round: u64,
        rng: &mut SeededRng,
    ) -> Result<()> {
        match self {
            Engine::Lean {
                step,
                masks,
                losses,
            } => {
                losses.push(step.micro_batch(params, batch, Some(masks.at(round)), scale)?);
            }
            Engine::LeanDevice { step, masks } => {
                step.micro_batch(params, batch, Some(masks.at(round)), scale)?;
            }
            Engine::Autograd {
                f32_model,
                autocast,
                grads,
                losses,
                ..
            } => {
                let model = autocast.as_ref().unwrap_or(f32_model);
                losses.push(accumulate_gradients(
                    model, params, batch, scale, rng, grads,
                )?);
            }
        }
        Ok(())
    }

    /// The micro-batches' losses and each gradient's squared norm: the
    /// step's one read from the device.
    pub fn read(&mut self) -> Result<(Vec<f64>, Vec<f64>)> {
        match self {
            Engine::Lean { step, losses, .. } => Ok((
                losses.iter().map(|&l| f64::from(l)).collect(),
                step.squared_norms()?,
            )),
            Engine::LeanDevice { step, .. } => step.read(),
            Engine::Autograd { grads, losses, .. } => {
                let mut parts = losses
                    .iter()
                    .map(|l| l.to_dtype(DType::F64)?.reshape(1))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                if !grads.is_empty() {
                    parts.push(squared_norms(grads)?);
                }
                let mut values = Tensor::cat(&parts, 0)?.to_vec1::<f64>()?;
                let squared = values.split_off(losses.len());
                Ok((values, squared))
            }
        }
    }

    /// The gradients as tensors by name, for a trace of step `step` (built
    /// only when one is wanted).
    pub fn trace(&self, step: u64) -> Result<Option<super::trace::PendingTrace>> {
        if !super::trace::wanted(step) {
            return Ok(None);
        }
        match self {
            Engine::Lean { step: lean, .. } => super::trace::before_clipping(step, &lean.grads()?),
            Engine::LeanDevice { step: lean, .. } => {
                super::trace::before_clipping(step, &lean.grads())
            }
            Engine::Autograd { grads, .. } => super::trace::before_clipping(step, grads),
        }
    }

    /// The update at `lr`, the gradients clipped to `max_norm` given their
    /// global `norm`.
    pub fn update(
        &mut self,
        optimizer: &mut AdamW,
        max_norm: f64,
        norm: f64,
        lr: f64,
    ) -> Result<()> {
        match self {
            Engine::Lean { step, .. } => {
                let clip = clip_coefficient(max_norm, norm).unwrap_or(1.0);
                step.update(optimizer, clip as f32, lr)
            }
            Engine::LeanDevice { step, .. } => {
                let clip = clip_coefficient(max_norm, norm).unwrap_or(1.0);
                step.update(optimizer, clip as f32, lr)
            }
            Engine::Autograd { grads, .. } => {
                clip_to_norm(grads, max_norm, norm)?;
                optimizer.step(grads, lr)?;
                grads.clear();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dropout_round;
    use std::collections::HashSet;

    #[test]
    fn every_micro_batch_of_a_run_gets_its_own_round() {
        // 10 windows in batches of 2, 3 micro-batches a step: each epoch is
        // 5 micro-batches, steps of 3 then 2.
        let mut seen = HashSet::new();
        let mut step = 0;
        for _epoch in 0..3 {
            for group in [3, 2] {
                for i in 0..group {
                    assert!(seen.insert(dropout_round(step, 3, i)), "step {step} {i}");
                }
                step += 1;
            }
        }
        assert_eq!(seen.len(), 15);
    }
}
