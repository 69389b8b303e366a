//! The lean step on a device (CUDA; on the CPU for its tests): the same op
//! sequence as the CPU step, over candle tensors (`model::lean::tensors`),
//! each fused op on the implementation the device's self-check trusts and
//! the rest on candle's generic ops. Gradients are f32 tensors, the norms
//! one op, AdamW one fused update per parameter that also writes the
//! compute-dtype copy the next step's products read.

use super::super::optimizer::{AdamW, Grads};
use super::step_input;
use crate::model::fused::generic::Generic;
use crate::model::fused::twin::CpuTwin;
use crate::model::fused::{device_checks, FusedOps, Kernel, KernelSet};
use crate::model::lean::tensors::TensorOps;
use crate::model::lean::{MicroBatchDropout, ParamTable, Sequence};
use crate::model::{BertConfig, Params, WindowBatch};
use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Device, Tensor};

pub struct DeviceStep {
    config: BertConfig,
    table: ParamTable,
    compute: DType,
    grads: Vec<Tensor>,
    /// The weights in the compute dtype, as the last update wrote them;
    /// none until the first update (or always, in f32).
    compute_params: Option<Vec<Tensor>>,
    fused: Box<dyn FusedOps>,
    trusted: KernelSet,
    losses: Vec<Tensor>,
    /// Kernel and product calls the host issued since the last `begin`.
    pub calls: usize,
}

/// The fused implementation `device` has and the kernels its self-check
/// trusts in every dtype it checked.
pub fn fused_for(device: &Device) -> (Box<dyn FusedOps>, KernelSet) {
    let trusted = |reports: Vec<crate::model::fused::CheckReport>| {
        reports
            .iter()
            .fold(KernelSet::all(), |set, r| set.and(r.trusted()))
    };
    match device {
        Device::Cpu => (Box::new(CpuTwin), trusted(device_checks(device))),
        #[cfg(feature = "cuda")]
        Device::Cuda(cuda) => match crate::model::fused::cuda::CudaKernels::load(cuda) {
            Ok(kernels) => (
                crate::model::fused::fault::with_fault(kernels),
                trusted(device_checks(device)),
            ),
            Err(_) => (Box::new(Generic), KernelSet::none()),
        },
        _ => (Box::new(Generic), KernelSet::none()),
    }
}

impl DeviceStep {
    /// For `params` (f32 masters on `device`) computing in `compute`.
    pub fn new(config: &BertConfig, params: &Params, compute: DType) -> Result<Self> {
        let table = ParamTable::new(config);
        let masters = masters(&table, params)?;
        let device = masters
            .first()
            .ok_or_else(|| anyhow!("the lean step needs parameters"))?
            .device()
            .clone();
        if device.is_cpu() && compute != DType::F32 {
            bail!("the lean step on tensors computes f32 on the CPU, not {compute:?}");
        }
        for (t, (name, shape)) in masters.iter().zip(table.names.iter().zip(&table.shapes)) {
            if t.dims() != shape.as_slice() {
                bail!("{name}: shape {:?}, the config needs {shape:?}", t.dims());
            }
        }
        let grads = masters
            .iter()
            .map(|t| Ok(Tensor::zeros(t.shape(), DType::F32, &device)?))
            .collect::<Result<Vec<_>>>()?;
        let (fused, trusted) = fused_for(&device);
        Ok(Self {
            config: config.clone(),
            table,
            compute,
            grads,
            compute_params: None,
            fused,
            trusted,
            losses: Vec::new(),
            calls: 0,
        })
    }

    /// The same step with only `set` of its trusted kernels fused.
    pub fn with_kernels(mut self, set: KernelSet) -> Self {
        self.trusted = self.trusted.and(set);
        self
    }

    pub fn kernels(&self) -> KernelSet {
        self.trusted
    }

    fn op(&self, kernel: Kernel) -> &dyn FusedOps {
        if self.trusted.has(kernel) {
            &*self.fused
        } else {
            &Generic
        }
    }

    /// Starts an optimizer step: zero gradients, and the compute copies of
    /// the weights where no update has written them yet.
    pub fn begin(&mut self, params: &Params) -> Result<()> {
        self.calls = 1;
        for g in &mut self.grads {
            *g = g.zeros_like()?;
        }
        self.losses.clear();
        if self.compute != DType::F32 && self.compute_params.is_none() {
            let copies = masters(&self.table, params)?
                .iter()
                .map(|t| Ok(t.to_dtype(self.compute)?))
                .collect::<Result<Vec<_>>>()?;
            self.compute_params = Some(copies);
        }
        Ok(())
    }

    /// Forward and backward of one micro-batch: its gradients of
    /// `loss × scale` added in; the loss stays on the device until `read`.
    pub fn micro_batch(
        &mut self,
        params: &Params,
        batch: &WindowBatch,
        dropout: Option<MicroBatchDropout>,
        scale: f64,
    ) -> Result<()> {
        let input = step_input(batch, &self.config)?;
        let masters = masters(&self.table, params)?;
        let compute = self
            .compute_params
            .clone()
            .unwrap_or_else(|| masters.clone());
        let mut ops = TensorOps::new(
            &masters,
            &compute,
            &mut self.grads,
            &*self.fused,
            self.trusted,
        )?;
        Sequence::new(&mut ops, &self.config, &self.table).micro_batch(
            &input,
            dropout,
            scale as f32,
        )?;
        self.calls += ops.calls;
        self.losses.append(&mut ops.losses);
        Ok(())
    }

    /// The micro-batches' losses and each gradient's squared norm, in one
    /// read from the device.
    pub fn read(&mut self) -> Result<(Vec<f64>, Vec<f64>)> {
        self.calls += 1;
        let squared = self.op(Kernel::Norms).squared_norms(&self.grads)?;
        if self.losses.is_empty() {
            return Ok((Vec::new(), squared));
        }
        let losses = Tensor::cat(&self.losses, 0)?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?;
        Ok((losses, squared))
    }

    /// AdamW at `lr` on the gradients times `clip`.
    pub fn update(&mut self, optimizer: &mut AdamW, clip: f32, lr: f64) -> Result<()> {
        self.calls += self.grads.len();
        let half = (self.compute != DType::F32).then_some(self.compute);
        let op: &dyn FusedOps = if self.trusted.has(Kernel::AdamW) {
            &*self.fused
        } else {
            &Generic
        };
        let copies = optimizer.step_fused(op, &self.table.names, &self.grads, clip, lr, half)?;
        if half.is_some() {
            self.compute_params = Some(
                copies
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| anyhow!("adamw: the update wrote no half-precision copy"))?,
            );
        }
        Ok(())
    }

    /// The gradients by name (for traces).
    pub fn grads(&self) -> Grads {
        self.table
            .names
            .iter()
            .cloned()
            .zip(self.grads.iter().cloned())
            .collect()
    }
}

/// The f32 masters in the table's order.
fn masters(table: &ParamTable, params: &Params) -> Result<Vec<Tensor>> {
    table
        .names
        .iter()
        .map(|n| params.tensor(n).map_err(|e| anyhow!("{e}")))
        .collect()
}
