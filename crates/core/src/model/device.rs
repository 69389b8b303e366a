//! From the config's device and precision to candle's.

use crate::config;
use anyhow::{bail, Result};
use candle_core::{DType, Device};

/// Whether this build has CUDA (the `cuda` feature). The CLI and the app
/// ask here: their crates forward the feature to this one, and only this one
/// knows it.
pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

/// `auto` is the first CUDA device when this build has CUDA and one is present.
pub fn select_device(choice: config::Device) -> Result<Device> {
    match choice {
        config::Device::Cpu => Ok(Device::Cpu),
        config::Device::Auto if candle_core::utils::cuda_is_available() => {
            tuned(Device::new_cuda(0)?)
        }
        config::Device::Auto => Ok(Device::Cpu),
        config::Device::Cuda(n) => {
            if !candle_core::utils::cuda_is_available() {
                bail!("device cuda:{n}: this build has no CUDA support; rebuild with `--features cuda`, or set device: \"cpu\"");
            }
            let device =
                Device::new_cuda(n).map_err(|e| anyhow::anyhow!("device cuda:{n}: {e}"))?;
            tuned(device)
        }
    }
}

fn tuned(device: Device) -> Result<Device> {
    super::cuda_tuning::tune(&device).map_err(|e| {
        anyhow::anyhow!("configuring {device:?} (event tracking, memory pool): {e}")
    })?;
    Ok(device)
}

/// The compute dtype. bf16 and f16 autocast need CUDA: the CPU trains in
/// f32, except that the generic graph runs f16 there to check the casts
/// (candle's CPU matmul has f16 but no bf16 without MKL).
pub fn compute_dtype(
    choice: config::DType,
    device: &Device,
    graph: config::Graph,
) -> Result<DType> {
    let generic = graph == config::Graph::Generic;
    match (choice, device.is_cpu()) {
        (config::DType::F32, _) => Ok(DType::F32),
        (config::DType::F16, true) if generic => Ok(DType::F16),
        (config::DType::F16, true) => bail!(
            "dtype F16 on the CPU runs only in the generic graph (graph: generic); for training on the CPU use dtype: f32"
        ),
        (config::DType::Bf16, true) => bail!(
            "dtype Bf16 needs a CUDA device: candle's CPU matrix product has no bf16; on the CPU use dtype: f32 (or f16 with graph: generic)"
        ),
        (config::DType::Bf16, false) => Ok(DType::BF16),
        (config::DType::F16, false) => Ok(DType::F16),
    }
}

/// The device and dtype as the app shows them: `cpu`, `cuda:0`, `bf16`.
pub fn describe(device: &Device, dtype: DType) -> (String, String) {
    let name = match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    };
    (name, dtype.as_str().to_string())
}
