//! The lean training step: the op sequence of `model::lean` (an explicit
//! forward and backward pass over fused ops, llm.c's design) with gradients
//! added straight into one f32 arena, the global norm in one pass and AdamW
//! in one fused update per parameter. It trains f32 runs on the CPU; the
//! same sequence, recorded without arithmetic, is what the census counts and
//! the memory planner sizes, in any dtype. The CUDA kernels for its ops come
//! next (issue 31).

use super::optimizer::{AdamW, Grads};
use crate::model::fused::generic::Generic;
use crate::model::fused::{FusedOps, Kernel, KernelSet};
use crate::model::kernels::f32_slice;
use crate::model::kernels::optimizer::squared_norm;
use crate::model::lean::{cpu, plan, sequence};
pub use crate::model::lean::{Launches, MicroBatchDropout, ParamTable, StepInput};
use crate::model::{position_ids, BertConfig, Params, WindowBatch};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{Storage, Tensor};
use rayon::prelude::*;
use serde::Serialize;

/// The lean step's state between micro-batches: the gradient arena.
pub struct LeanStep {
    config: BertConfig,
    table: ParamTable,
    arena: Vec<f32>,
    /// Where each parameter's gradient starts in the arena (and its end).
    offsets: Vec<usize>,
    /// Launches since the last `begin`.
    pub launches: Launches,
    /// The kernels that run fused (the self-check's verdict); the others
    /// run on candle's generic ops.
    fused: KernelSet,
}

impl LeanStep {
    /// For a model of `config` whose parameters are `params` (f32, CPU).
    pub fn new(config: &BertConfig, params: &Params) -> Result<Self> {
        let table = ParamTable::new(config);
        if params.len() != table.len() {
            bail!(
                "the lean step needs the {} parameters of {}, the model has {}",
                table.len(),
                config.family().architecture(),
                params.len()
            );
        }
        let mut offsets = vec![0];
        for (i, name) in table.names.iter().enumerate() {
            let t = params.tensor(name).map_err(|e| anyhow!("{e}"))?;
            if t.dims() != table.shapes[i].as_slice() {
                bail!(
                    "{name}: shape {:?}, the config needs {:?}",
                    t.dims(),
                    table.shapes[i]
                );
            }
            offsets.push(offsets[i] + table.elems(i));
        }
        Ok(Self {
            config: config.clone(),
            arena: vec![0.0; offsets[table.len()]],
            offsets,
            table,
            launches: Launches::default(),
            fused: KernelSet::all(),
        })
    }

    /// The same step with only `fused` running fused.
    pub fn with_kernels(mut self, fused: KernelSet) -> Self {
        self.fused = fused;
        self
    }

    pub fn kernels(&self) -> KernelSet {
        self.fused
    }

    /// Starts an optimizer step: zeroes the gradients.
    pub fn begin(&mut self) {
        self.launches = Launches::default();
        self.launches.add("zero gradients", 1);
        self.arena.fill(0.0);
    }

    /// Forward and backward of one micro-batch, adding the gradients of
    /// `loss × scale` into the arena; returns the loss.
    pub fn micro_batch(
        &mut self,
        params: &Params,
        batch: &WindowBatch,
        dropout: Option<MicroBatchDropout>,
        scale: f64,
    ) -> Result<f32> {
        let input = step_input(batch, &self.config)?;
        let tensors = self
            .table
            .names
            .iter()
            .map(|n| params.tensor(n).map_err(|e| anyhow!("{e}")))
            .collect::<Result<Vec<Tensor>>>()?;
        let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
        let values = guards
            .iter()
            .zip(&self.table.names)
            .map(|((storage, layout), name)| match &**storage {
                Storage::Cpu(cpu) => f32_slice(cpu, layout, name).map_err(|e| anyhow!("{e}")),
                _ => bail!("{name}: the lean step runs on the CPU"),
            })
            .collect::<Result<Vec<&[f32]>>>()?;
        let grads = split(&mut self.arena, &self.offsets);
        let mut cpu = cpu::Cpu::new(values, grads).with_kernels(self.fused);
        let mut seq = sequence::Sequence::new(&mut cpu, &self.config, &self.table);
        seq.micro_batch(&input, dropout, scale as f32)?;
        for (kind, n) in std::mem::take(&mut seq.launches.by_kind) {
            self.launches.add(kind, n);
        }
        cpu.losses
            .pop()
            .ok_or_else(|| anyhow!("the lean step computed no loss"))
    }

    /// Each gradient's squared L2 norm, summed in f64 (one launch).
    pub fn squared_norms(&mut self) -> Result<Vec<f64>> {
        self.launches.add("squared norms", 1);
        if !self.fused.has(Kernel::Norms) {
            return Generic.squared_norms(&self.grads()?.into_values().collect::<Vec<_>>());
        }
        Ok((0..self.table.len())
            .into_par_iter()
            .map(|i| squared_norm(&self.arena[self.offsets[i]..self.offsets[i + 1]]))
            .collect())
    }

    /// AdamW at `lr` on the gradients times `clip` (clipping's coefficient,
    /// 1 for none): one fused update per parameter.
    pub fn update(&mut self, optimizer: &mut AdamW, clip: f32, lr: f64) -> Result<()> {
        self.launches.add("adamw", self.table.len());
        let grads: Vec<&[f32]> = (0..self.table.len())
            .map(|i| &self.arena[self.offsets[i]..self.offsets[i + 1]])
            .collect();
        optimizer.step_slices(
            &self.table.names,
            &grads,
            clip,
            lr,
            self.fused.has(Kernel::AdamW),
        )
    }

    /// The gradients as tensors by name (for traces; copies).
    pub fn grads(&self) -> Result<Grads> {
        let mut out = Grads::new();
        for (i, name) in self.table.names.iter().enumerate() {
            let values = self.arena[self.offsets[i]..self.offsets[i + 1]].to_vec();
            let t = Tensor::from_vec(
                values,
                self.table.shapes[i].as_slice(),
                &candle_core::Device::Cpu,
            )
            .with_context(|| format!("gradient of {name}"))?;
            out.insert(name.clone(), t);
        }
        Ok(out)
    }
}

fn split<'a>(arena: &'a mut [f32], offsets: &[usize]) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(offsets.len().saturating_sub(1));
    let mut rest = arena;
    for w in offsets.windows(2) {
        let (head, tail) = rest.split_at_mut(w[1] - w[0]);
        out.push(head);
        rest = tail;
    }
    out
}

/// A batch's tensors as host vectors, with positions numbered as the
/// model's family numbers them.
pub fn step_input(batch: &WindowBatch, config: &BertConfig) -> Result<StepInput> {
    let (b, s) = batch.input_ids.dims2()?;
    let flat = |t: &Tensor, name: &str| -> Result<Vec<u32>> {
        t.flatten_all()?
            .to_vec1::<u32>()
            .with_context(|| format!("the batch's {name}"))
    };
    let input_ids = flat(&batch.input_ids, "input_ids")?;
    let family = config.family();
    let position_ids = position_ids(family, &input_ids, s, config.pad_token_id as u32);
    // A family without token types reads its one zero row for every token.
    let token_type_ids = if family.has_token_types() {
        flat(&batch.token_type_ids, "token_type_ids")?
    } else {
        vec![0; b * s]
    };
    Ok(StepInput {
        b,
        s,
        position_ids,
        input_ids,
        token_type_ids,
        attention_mask: flat(&batch.attention_mask, "attention_mask")?,
        start_positions: flat(&batch.start_positions, "start_positions")?,
        end_positions: flat(&batch.end_positions, "end_positions")?,
    })
}

/// The lean step's census: its launches by kind for one optimizer step of
/// one micro-batch, and its peak of live activations.
#[derive(Clone, Debug, Serialize)]
pub struct LeanCensus {
    pub batch: usize,
    pub seq: usize,
    pub dtype: String,
    pub launches: Launches,
    pub launch_proxy: usize,
    pub activation_peak_bytes: usize,
}

/// Records one optimizer step of `n × seq` windows with dropout on, in
/// `dtype`: the micro-batch's launches, then the norms and AdamW's.
pub fn census(
    config: &BertConfig,
    n: usize,
    seq: usize,
    dtype: candle_core::DType,
) -> Result<LeanCensus> {
    let (mut launches, plan) = plan::record(config, n, seq, dtype.size_in_bytes())?;
    launches.add("squared norms", 1);
    launches.add("adamw", ParamTable::new(config).len());
    Ok(LeanCensus {
        batch: n,
        seq,
        dtype: format!("{dtype:?}").to_lowercase(),
        launch_proxy: launches.total(),
        launches,
        activation_peak_bytes: plan.peak_bytes,
    })
}

pub mod device;

#[cfg(test)]
mod tests;
