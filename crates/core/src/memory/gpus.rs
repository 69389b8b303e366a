//! The GPUs `nvidia-smi` reports, asked without a CUDA context: the app and
//! `doctor` can look without claiming a GPU, and they answer even where CUDA
//! is broken.

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
    let out = Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,driver_version,compute_cap,memory.free,memory.total",
            "--format=csv,noheader,nounits",
        ])
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
        .map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("").to_string();
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
