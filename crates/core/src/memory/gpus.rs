//! The GPUs `nvidia-smi` reports, asked without a CUDA context: the app and
//! `doctor` can look without claiming a GPU, and they answer even where CUDA
//! is broken.

use crate::schema::events::GpuUsage;
use std::process::Command;

/// One GPU as `nvidia-smi` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Gpu {
    pub name: String,
    pub driver: String,
    pub compute_cap: String,
    pub free_mib: Option<u64>,
    pub total_mib: Option<u64>,
}

/// Every GPU in nvidia-smi's (PCI bus) order, which is CUDA's with
/// `CUDA_DEVICE_ORDER=PCI_BUS_ID` and on any one-GPU machine; or why none
/// could be listed.
pub fn query_gpus() -> Result<Vec<Gpu>, String> {
    let rows = nvidia_smi("name,driver_version,compute_cap,memory.free,memory.total")?;
    Ok(rows
        .iter()
        .map(|f| {
            let get = |i: usize| f.get(i).cloned().unwrap_or_default();
            Gpu {
                name: get(0),
                driver: get(1),
                compute_cap: get(2),
                free_mib: get(3).parse().ok(),
                total_mib: get(4).parse().ok(),
            }
        })
        .collect())
}

/// Every GPU's utilisation, memory used, power draw and temperature, or why
/// nvidia-smi could not say.
pub fn query_gpu_usage() -> Result<Vec<GpuUsage>, String> {
    let rows = nvidia_smi("index,utilization.gpu,memory.used,power.draw,temperature.gpu")?;
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let num = |k: usize| {
                f.get(k)
                    .and_then(|v| v.parse::<f64>().ok())
                    .filter(|v| v.is_finite())
            };
            GpuUsage {
                index: f.first().and_then(|v| v.parse().ok()).unwrap_or(i as u32),
                utilization_percent: num(1),
                memory_used_mib: num(2),
                power_watts: num(3),
                temperature_c: num(4),
            }
        })
        .collect())
}

/// `nvidia-smi --query-gpu=FIELDS` as CSV rows of trimmed fields.
fn nvidia_smi(fields: &str) -> Result<Vec<Vec<String>>, String> {
    let out = Command::new("nvidia-smi")
        .arg(format!("--query-gpu={fields}"))
        .arg("--format=csv,noheader,nounits")
        .output()
        .map_err(|e| format!("nvidia-smi: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nvidia-smi failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| line.split(',').map(|f| f.trim().to_string()).collect())
        .collect())
}
