//! The lean step's fused ops behind one interface (`ops::FusedOps`), each
//! with a generic twin made of candle's own ops, and the self-check that
//! trusts a fused implementation on a device only once it agrees with the
//! generic one there (`check`).

pub mod check;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "cuda")]
mod cuda_check;
pub mod fault;
pub mod generic;
pub mod kernel;
pub mod ops;
pub mod twin;

pub use check::{CheckReport, KernelCheck};
pub use kernel::{Kernel, KernelSet};
pub use ops::{
    AdamState, AdamStep, EmbedPads, FusedOps, NormForward, NormGrads, NormSpec, TokenIds,
};

use candle_core::{DType, Device};
use std::sync::OnceLock;

/// The CPU twins' check, run once per process (well under a second).
pub fn cpu_check() -> &'static CheckReport {
    static REPORT: OnceLock<CheckReport> = OnceLock::new();
    REPORT.get_or_init(|| check::run(&twin::CpuTwin, "cpu twins", &Device::Cpu, DType::F32))
}

/// The checks of every fused implementation `device` has: the CPU twins on
/// the CPU; on a CUDA device, its kernels in f32 and bf16 (TF32 off), once
/// per device and process. A module that does not load is one failed check
/// per kernel, never an abort.
pub fn device_checks(device: &Device) -> Vec<CheckReport> {
    match device {
        Device::Cpu => vec![cpu_check().clone()],
        #[cfg(feature = "cuda")]
        Device::Cuda(cuda) => cuda_check::checks(cuda),
        _ => Vec::new(),
    }
}
