//! AdamW as `torch.optim.AdamW`, with Hugging Face's parameter groups, and
//! global grad-norm clipping as `torch.nn.utils.clip_grad_norm_`.

use crate::model::Params;
use anyhow::{anyhow, Context, Result};
use candle_core::{DType, Device, Tensor, Var};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// One parameter and its f32 moment estimates.
struct Slot {
    name: String,
    var: Var,
    decay: bool,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

pub struct AdamW {
    params: AdamWParams,
    slots: Vec<Slot>,
    /// Optimizer steps taken (torch keeps one per parameter; ours move together).
    pub steps: u64,
}

/// Hugging Face decays every weight but biases and LayerNorm parameters.
pub fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("LayerNorm."))
}

/// Gradients by parameter name, f32, summed over a step's micro-batches; ordered,
/// so the global norm sums in the same order every run.
pub type Grads = BTreeMap<String, Tensor>;

impl AdamW {
    pub fn new(model: &Params, params: AdamWParams) -> Result<Self> {
        let slots = model
            .vars()
            .map(|(name, var)| {
                let zeros = var.as_tensor().zeros_like()?;
                Ok(Slot {
                    name: name.clone(),
                    var: var.clone(),
                    decay: decays(name),
                    exp_avg: zeros.clone(),
                    exp_avg_sq: zeros,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            params,
            slots,
            steps: 0,
        })
    }

    /// One update at learning rate `lr`. Parameters without a gradient are
    /// left alone, weight decay included, as torch does.
    pub fn step(&mut self, grads: &Grads, lr: f64) -> Result<()> {
        let AdamWParams {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        self.steps += 1;
        let t = self.steps as i32;
        let step_size = lr / (1.0 - beta1.powi(t));
        let bias_correction2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        for slot in &mut self.slots {
            let Some(g) = grads.get(&slot.name) else {
                continue;
            };
            let mut p = slot.var.as_tensor().clone();
            if slot.decay && weight_decay != 0.0 {
                p = (p * (1.0 - lr * weight_decay))?;
            }
            slot.exp_avg = ((&slot.exp_avg * beta1)? + (g * (1.0 - beta1))?)?;
            slot.exp_avg_sq = ((&slot.exp_avg_sq * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let denom = ((slot.exp_avg_sq.sqrt()? / bias_correction2_sqrt)? + eps)?;
            let update = ((&slot.exp_avg / denom)? * step_size)?;
            slot.var
                .set(&(p - update)?)
                .with_context(|| format!("updating {}", slot.name))?;
        }
        Ok(())
    }

    /// The moments as tensors named `exp_avg.<param>` and `exp_avg_sq.<param>`.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for s in &self.slots {
            out.insert(format!("exp_avg.{}", s.name), s.exp_avg.clone());
            out.insert(format!("exp_avg_sq.{}", s.name), s.exp_avg_sq.clone());
        }
        out
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        candle_core::safetensors::save(&self.state_tensors(), path)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Restores the moments saved by `save`, checking every name and shape.
    pub fn load(&mut self, path: &Path, steps: u64, device: &Device) -> Result<()> {
        let mut saved = candle_core::safetensors::load(path, device)
            .map_err(|e| anyhow!("{}: not a readable optimizer state: {e}", path.display()))?;
        for slot in &mut self.slots {
            for (kind, target) in [
                ("exp_avg", &mut slot.exp_avg),
                ("exp_avg_sq", &mut slot.exp_avg_sq),
            ] {
                let key = format!("{kind}.{}", slot.name);
                let t = saved
                    .remove(&key)
                    .ok_or_else(|| anyhow!("{}: missing tensor {key}", path.display()))?;
                if t.dims() != target.dims() {
                    return Err(anyhow!(
                        "{}: tensor {key} has shape {:?}, the model needs {:?}",
                        path.display(),
                        t.dims(),
                        target.dims()
                    ));
                }
                *target = t.to_dtype(DType::F32)?;
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// The global L2 norm of all gradients, before any clipping.
pub fn grad_norm(grads: &Grads) -> Result<f64> {
    let mut total = 0f64;
    for g in grads.values() {
        total += g
            .sqr()?
            .sum_all()?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
    }
    Ok(total.sqrt())
}

/// Scales the gradients so their global norm is at most `max_norm`, as torch
/// does (`max_norm / (norm + 1e-6)`, capped at 1). Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Grads, max_norm: f64) -> Result<f64> {
    let norm = grad_norm(grads)?;
    let coef = max_norm / (norm + 1e-6);
    if max_norm > 0.0 && coef < 1.0 {
        for g in grads.values_mut() {
            *g = (&*g * coef)?;
        }
    }
    Ok(norm)
}
