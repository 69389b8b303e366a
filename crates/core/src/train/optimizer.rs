//! AdamW as `torch.optim.AdamW`, with Hugging Face's parameter groups, and
//! global grad-norm clipping as `torch.nn.utils.clip_grad_norm_`.

use super::adamw_cpu;
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

/// The reference recipe's AdamW (`RunConfig`'s defaults): β = (0.9, 0.999),
/// ε = 1e-8, weight decay 0.01. Benchmarks and checks step with it.
impl Default for AdamWParams {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// One parameter and its f32 moment estimates.
struct Slot {
    name: String,
    var: Var,
    decay: bool,
    /// Its share of the learning rate (layer-wise decay; 1 without).
    lr_scale: f64,
    moments: Moments,
}

/// Moments on the host for f32 CPU parameters, updated in place by one fused
/// pass; tensors on other devices, updated by tensor ops.
enum Moments {
    Host {
        exp_avg: Vec<f32>,
        exp_avg_sq: Vec<f32>,
    },
    Device {
        exp_avg: Tensor,
        exp_avg_sq: Tensor,
    },
}

impl Moments {
    fn zeros(param: &Tensor) -> Result<Self> {
        Ok(if crate::model::kernels::applies(&[param]) {
            let n = param.elem_count();
            Moments::Host {
                exp_avg: vec![0.0; n],
                exp_avg_sq: vec![0.0; n],
            }
        } else {
            let zeros = param.zeros_like()?;
            Moments::Device {
                exp_avg: zeros.clone(),
                exp_avg_sq: zeros,
            }
        })
    }

    /// (exp_avg, exp_avg_sq) as tensors shaped like `param`.
    fn tensors(&self, param: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok(match self {
            Moments::Host {
                exp_avg,
                exp_avg_sq,
            } => (
                Tensor::from_slice(exp_avg, param.shape(), param.device())?,
                Tensor::from_slice(exp_avg_sq, param.shape(), param.device())?,
            ),
            Moments::Device {
                exp_avg,
                exp_avg_sq,
            } => (exp_avg.clone(), exp_avg_sq.clone()),
        })
    }

    fn set(&mut self, exp_avg: Tensor, exp_avg_sq: Tensor) -> Result<()> {
        match self {
            Moments::Host {
                exp_avg: m,
                exp_avg_sq: v,
            } => {
                *m = exp_avg.flatten_all()?.to_vec1()?;
                *v = exp_avg_sq.flatten_all()?.to_vec1()?;
            }
            Moments::Device {
                exp_avg: m,
                exp_avg_sq: v,
            } => {
                *m = exp_avg;
                *v = exp_avg_sq;
            }
        }
        Ok(())
    }
}

pub struct AdamW {
    params: AdamWParams,
    slots: Vec<Slot>,
    /// Optimizer steps taken (torch keeps one per parameter; ours move together).
    pub steps: u64,
}

/// Hugging Face decays every weight but biases and norm parameters, by the
/// module each parameter belongs to (see `model::layout`).
pub use crate::model::layout::decays;

/// Gradients by parameter name, f32, summed over a step's micro-batches; ordered,
/// so the global norm sums in the same order every run.
pub type Grads = BTreeMap<String, Tensor>;

impl AdamW {
    pub fn new(model: &Params, params: AdamWParams) -> Result<Self> {
        let slots = model
            .vars()
            .map(|(name, var)| {
                Ok(Slot {
                    name: name.clone(),
                    var: var.clone(),
                    decay: decays(name),
                    lr_scale: 1.0,
                    moments: Moments::zeros(var.as_tensor())?,
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
        let bias_correction2_sqrt = (1.0 - beta2.powi(t)).sqrt();
        for i in 0..self.slots.len() {
            let lr = lr * self.slots[i].lr_scale;
            let groups = self.group_steps(lr, 1.0);
            let step_size = lr / (1.0 - beta1.powi(t));
            let slot = &mut self.slots[i];
            let Some(g) = grads.get(&slot.name) else {
                continue;
            };
            let p = slot.var.as_tensor();
            match &mut slot.moments {
                Moments::Host {
                    exp_avg,
                    exp_avg_sq,
                } => {
                    let step = groups[usize::from(slot.decay)];
                    adamw_cpu::update(p, g, exp_avg, exp_avg_sq, step)
                        .with_context(|| format!("updating {}", slot.name))?;
                }
                Moments::Device {
                    exp_avg,
                    exp_avg_sq,
                } => {
                    let decay = if slot.decay && weight_decay != 0.0 {
                        1.0 - lr * weight_decay
                    } else {
                        1.0
                    };
                    let decayed = (p * decay)?;
                    *exp_avg = ((&*exp_avg * beta1)? + (g * (1.0 - beta1))?)?;
                    *exp_avg_sq = ((&*exp_avg_sq * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
                    let denom = ((exp_avg_sq.sqrt()? / bias_correction2_sqrt)? + eps)?;
                    let update = ((&*exp_avg / denom)? * step_size)?;
                    slot.var
                        .set(&(decayed - update)?)
                        .with_context(|| format!("updating {}", slot.name))?;
                }
            }
        }
        Ok(())
    }

    /// One update at `lr` from gradients given as slices in `names` order
    /// (the parameters' own order), each read times `clip`: the lean step's
    /// AdamW, f32 CPU parameters only. The step's constants come from one
    /// table per parameter group (with and without weight decay).
    pub fn step_slices(
        &mut self,
        names: &[String],
        grads: &[&[f32]],
        clip: f32,
        lr: f64,
        fused: bool,
    ) -> Result<()> {
        self.check_order(names, grads.len())?;
        self.steps += 1;
        let steps = self.slot_steps(lr, clip);
        for (((slot, name), g), groups) in self.slots.iter_mut().zip(names).zip(grads).zip(steps) {
            let Moments::Host {
                exp_avg,
                exp_avg_sq,
            } = &mut slot.moments
            else {
                return Err(anyhow!("adamw: {name} is not an f32 CPU parameter"));
            };
            let step = groups[usize::from(slot.decay)];
            if fused {
                adamw_cpu::update_slice(slot.var.as_tensor(), g, exp_avg, exp_avg_sq, step)
                    .with_context(|| format!("updating {name}"))?;
            } else {
                generic_update(&slot.var, g, exp_avg, exp_avg_sq, step)
                    .with_context(|| format!("updating {name} with the generic ops"))?;
            }
        }
        Ok(())
    }

    /// One update at `lr` through a fused implementation (`model::fused`),
    /// from f32 gradient tensors in `names` order, each read times `clip`:
    /// the lean step on a device. With `half`, returns each weight in that
    /// dtype as the update wrote it (the copy the next step's products read).
    pub fn step_fused(
        &mut self,
        fused: &dyn crate::model::fused::FusedOps,
        names: &[String],
        grads: &[Tensor],
        clip: f32,
        lr: f64,
        half: Option<DType>,
    ) -> Result<Vec<Option<Tensor>>> {
        self.check_order(names, grads.len())?;
        self.steps += 1;
        let steps = self.slot_steps(lr, clip);
        let mut copies = Vec::with_capacity(names.len());
        for (((slot, name), g), groups) in self.slots.iter_mut().zip(names).zip(grads).zip(steps) {
            let w = slot.var.as_tensor().clone();
            let (m, v) = slot.moments.tensors(&w)?;
            let state = crate::model::fused::AdamState { w: w.clone(), m, v };
            let (next, copy) = fused
                .adamw(state, g, &groups[usize::from(slot.decay)], half)
                .with_context(|| format!("updating {name}"))?;
            // A kernel that updated in place returns the weight itself:
            // setting a tensor from its own storage would lock it twice.
            if next.w.id() != w.id() {
                slot.var
                    .set(&next.w)
                    .with_context(|| format!("updating {name}"))?;
            }
            slot.moments.set(next.m, next.v)?;
            copies.push(copy);
        }
        Ok(copies)
    }

    /// Gradients come one per parameter, in the parameters' own order.
    fn check_order(&self, names: &[String], grads: usize) -> Result<()> {
        if names.len() != self.slots.len() || grads != names.len() {
            return Err(anyhow!(
                "adamw: {grads} gradients for {} parameters",
                self.slots.len()
            ));
        }
        match self
            .slots
            .iter()
            .zip(names)
            .find(|(slot, name)| &slot.name != *name)
        {
            Some((slot, name)) => Err(anyhow!(
                "adamw: gradient {name} came where {} was due",
                slot.name
            )),
            None => Ok(()),
        }
    }

    /// Gives each parameter its share of the learning rate by name (layer-wise
    /// decay, `model::layout::layerwise_lr_scales`); names it lacks keep 1.
    pub fn set_lr_scales(&mut self, scales: &BTreeMap<String, f64>) {
        for slot in &mut self.slots {
            slot.lr_scale = scales.get(&slot.name).copied().unwrap_or(1.0);
        }
    }

    /// Each parameter's share of the learning rate, by name.
    pub fn lr_scales(&self) -> BTreeMap<String, f64> {
        self.slots
            .iter()
            .map(|s| (s.name.clone(), s.lr_scale))
            .collect()
    }

    /// Each slot's group constants at its own rate: one table per distinct
    /// share, not per parameter.
    fn slot_steps(&self, lr: f64, clip: f32) -> Vec<[adamw_cpu::Step; 2]> {
        let mut by_scale: Vec<(f64, [adamw_cpu::Step; 2])> = Vec::new();
        self.slots
            .iter()
            .map(|s| match by_scale.iter().find(|(k, _)| *k == s.lr_scale) {
                Some((_, g)) => *g,
                None => {
                    let g = self.group_steps(lr * s.lr_scale, clip);
                    by_scale.push((s.lr_scale, g));
                    g
                }
            })
            .collect()
    }

    /// The step's constants for each group, [without decay, with decay], at
    /// the current step count.
    fn group_steps(&self, lr: f64, clip: f32) -> [adamw_cpu::Step; 2] {
        let AdamWParams {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        let t = self.steps as i32;
        let step = |decay: f64| adamw_cpu::Step {
            beta1: beta1 as f32,
            beta2: beta2 as f32,
            eps: eps as f32,
            step_size: (lr / (1.0 - beta1.powi(t))) as f32,
            bias_correction2_sqrt: (1.0 - beta2.powi(t)).sqrt() as f32,
            decay: decay as f32,
            grad_scale: clip,
        };
        let decayed = if weight_decay != 0.0 {
            1.0 - lr * weight_decay
        } else {
            1.0
        };
        [step(1.0), step(decayed)]
    }

    /// The moments as tensors named `exp_avg.<param>` and `exp_avg_sq.<param>`.
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for s in &self.slots {
            let (m, v) = s.moments.tensors(s.var.as_tensor())?;
            out.insert(format!("exp_avg.{}", s.name), m);
            out.insert(format!("exp_avg_sq.{}", s.name), v);
        }
        Ok(out)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        candle_core::safetensors::save(&self.state_tensors()?, path)
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Restores the moments saved by `save`, checking every name and shape.
    pub fn load(&mut self, path: &Path, steps: u64, device: &Device) -> Result<()> {
        let mut saved = candle_core::safetensors::load(path, device)
            .map_err(|e| anyhow!("{}: not a readable optimizer state: {e}", path.display()))?;
        for slot in &mut self.slots {
            let mut loaded = Vec::with_capacity(2);
            for kind in ["exp_avg", "exp_avg_sq"] {
                let key = format!("{kind}.{}", slot.name);
                let t = saved
                    .remove(&key)
                    .ok_or_else(|| anyhow!("{}: missing tensor {key}", path.display()))?;
                let want = slot.var.as_tensor().dims();
                if t.dims() != want {
                    return Err(anyhow!(
                        "{}: tensor {key} has shape {:?}, the model needs {want:?}",
                        path.display(),
                        t.dims(),
                    ));
                }
                loaded.push(t.to_dtype(DType::F32)?);
            }
            let exp_avg_sq = loaded.pop().expect("two moments");
            let exp_avg = loaded.pop().expect("two moments");
            slot.moments.set(exp_avg, exp_avg_sq)?;
        }
        self.steps = steps;
        Ok(())
    }
}

/// Each gradient's squared L2 norm, as one `[n]` f64 tensor still on the
/// device: reading it is the step's one host sync, shared with the loss.
pub fn squared_norms(grads: &Grads) -> Result<Tensor> {
    let parts = grads
        .values()
        .map(|g| g.sqr()?.sum_all()?.to_dtype(DType::F64))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::stack(&parts, 0)?)
}

/// The global norm from `squared_norms`' values, summed in f64 in order.
pub fn global_norm(squared: &[f64]) -> f64 {
    squared.iter().sum::<f64>().sqrt()
}

/// The global L2 norm of all gradients, before any clipping.
pub fn grad_norm(grads: &Grads) -> Result<f64> {
    if grads.is_empty() {
        return Ok(0.0);
    }
    Ok(global_norm(&squared_norms(grads)?.to_vec1::<f64>()?))
}

/// Scales the gradients so their global norm is at most `max_norm`, as torch
/// does (`max_norm / (norm + 1e-6)`, capped at 1). Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Grads, max_norm: f64) -> Result<f64> {
    let norm = grad_norm(grads)?;
    clip_to_norm(grads, max_norm, norm)?;
    Ok(norm)
}

/// `clip_grad_norm` with the norm already read.
pub fn clip_to_norm(grads: &mut Grads, max_norm: f64, norm: f64) -> Result<()> {
    if let Some(coef) = clip_coefficient(max_norm, norm) {
        for g in grads.values_mut() {
            *g = (&*g * coef)?;
        }
    }
    Ok(())
}

/// What clipping multiplies the gradients by, when it clips at all.
pub fn clip_coefficient(max_norm: f64, norm: f64) -> Option<f64> {
    let coef = max_norm / (norm + 1e-6);
    (max_norm > 0.0 && coef < 1.0).then_some(coef)
}

/// AdamW through candle's generic ops (`fused::generic`), for a process
/// whose self-check switched the fused update off; same state, same step.
fn generic_update(
    var: &candle_core::Var,
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: adamw_cpu::Step,
) -> Result<()> {
    use crate::model::fused::{generic::Generic, AdamState, FusedOps};
    let w = var.as_tensor();
    let (dims, dev) = (w.dims().to_vec(), w.device());
    let state = AdamState {
        w: w.copy()?,
        m: Tensor::from_slice(m, dims.as_slice(), dev)?,
        v: Tensor::from_slice(v, dims.as_slice(), dev)?,
    };
    let g = Tensor::from_slice(g, dims.as_slice(), dev)?;
    let (next, _) = Generic.adamw(state, &g, &step, None)?;
    var.set(&next.w)?;
    m.copy_from_slice(&next.m.flatten_all()?.to_vec1::<f32>()?);
    v.copy_from_slice(&next.v.flatten_all()?.to_vec1::<f32>()?);
    Ok(())
}
