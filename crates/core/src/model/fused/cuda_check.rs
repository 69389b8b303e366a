//! The self-check of the CUDA kernels on a device, once per device and
//! process: f32 with TF32 off (restored after), then bf16.

use super::check::{self, CheckReport, KernelCheck};
use super::cuda::CudaKernels;
use super::kernel::Kernel;
use candle_core::{CudaDevice, DType, Device};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub fn checks(cuda: &CudaDevice) -> Vec<CheckReport> {
    static DONE: Mutex<BTreeMap<usize, Vec<CheckReport>>> = Mutex::new(BTreeMap::new());
    let device = Device::Cuda(cuda.clone());
    let ordinal = match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => gpu_id,
        _ => 0,
    };
    let mut done = DONE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(reports) = done.get(&ordinal) {
        return reports.clone();
    }
    let tf32 = candle_core::cuda::gemm_reduced_precision_f32();
    candle_core::cuda::set_gemm_reduced_precision_f32(false);
    let reports = match CudaKernels::load(cuda) {
        Ok(kernels) => {
            // The fault switch breaks the kernels' outputs here (there is
            // no CPU code of theirs to break).
            let kernels = super::fault::with_fault(kernels);
            [DType::F32, DType::BF16]
                .into_iter()
                .map(|dt| check::run(&*kernels, "cuda kernels", &device, dt))
                .collect()
        }
        Err(e) => vec![not_loaded(&device, &format!("{e:#}"))],
    };
    candle_core::cuda::set_gemm_reduced_precision_f32(tf32);
    done.insert(ordinal, reports.clone());
    reports
}

/// A module that would not load: every kernel fails, with the reason.
fn not_loaded(device: &Device, why: &str) -> CheckReport {
    CheckReport {
        device: crate::model::describe(device, DType::F32).0,
        implementation: "cuda kernels".into(),
        checks: Kernel::ALL
            .into_iter()
            .map(|k| KernelCheck {
                kernel: k.name(),
                direction: "load",
                dtype: "-".into(),
                error: f64::INFINITY,
                tolerance: 0.0,
                finite: false,
                passed: false,
                failure: Some(format!("the PTX module did not load: {why}")),
            })
            .collect(),
        seconds: 0.0,
    }
}
