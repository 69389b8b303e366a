//! `squadlab doctor`: what this binary was built with, what it finds on this
//! machine (CPU features, threads, GPUs, the driver), and what to do when the
//! two do not fit. It asks `nvidia-smi` about GPUs rather than opening a CUDA
//! context, so it answers even where CUDA is broken.

use super::Report;
use crate::memory::gpus::query_gpus;
use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::process::Command;

#[derive(Args)]
pub struct DoctorArgs {
    #[arg(long)]
    pub json: bool,
    /// Also run the fused kernels' self-check on the CPU and on every GPU
    /// (this one opens a CUDA context) and print its table.
    #[arg(long)]
    pub kernels: bool,
}

pub fn run(args: &DoctorArgs) -> Result<Report> {
    let mut report = machine()?;
    if args.kernels {
        let (text, json) =
            super::doctor_kernels::check_all(report.json["gpus"].as_array().map_or(0, Vec::len));
        report.text += &text;
        report.json["kernels"] = json;
    }
    Ok(report)
}

fn machine() -> Result<Report> {
    let cuda_built = crate::model::CUDA_BUILT;
    let features: Vec<&str> = [("gui", cfg!(feature = "gui")), ("cuda", cuda_built)]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
    // Set when the binary was built (`CUDA_COMPUTE_CAP=90 cargo build --features cuda`).
    let compute_cap = option_env!("CUDA_COMPUTE_CAP");
    let levels = cpu_levels();
    let threads = rayon::current_num_threads();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (gpus, smi_error) = match query_gpus() {
        Ok(g) => (g, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    let driver_cuda = driver_cuda_version();
    let mut advice = Vec::new();
    match (cuda_built, gpus.is_empty()) {
        (false, false) => advice.push(
            "this machine has an NVIDIA GPU but this binary has no CUDA: rebuild with \
             `cargo build --release --features cuda` (README, \"CUDA\")"
                .to_string(),
        ),
        (true, true) => advice.push(
            "this binary has CUDA but no GPU answers: check the driver with `nvidia-smi`; \
             runs with device auto fall back to the CPU"
                .to_string(),
        ),
        (false, true) => {
            advice.push("CPU only: train on the CPU (device: cpu, dtype: f32)".to_string())
        }
        (true, false) => {}
    }
    if cuda_built {
        advice.push(format!(
            "the CUDA kernels were compiled by the build's nvcc; a driver older than that \
             nvcc refuses them (CUDA_ERROR_UNSUPPORTED_PTX_VERSION): build with the nvcc of \
             the driver's CUDA version ({}) or older",
            driver_cuda.as_deref().unwrap_or("unknown")
        ));
        if compute_cap.is_none() {
            advice.push(
                "CUDA_COMPUTE_CAP was not set at build time: set it to the GPU's compute \
                 capability without the dot (90 for an H100/H200)"
                    .to_string(),
            );
        }
    }

    let mut text = format!(
        "squadlab {}\nbuilt with: {}\n",
        env!("CARGO_PKG_VERSION"),
        if features.is_empty() {
            "no optional features".to_string()
        } else {
            features.join(", ")
        }
    );
    if cuda_built {
        text += &format!(
            "CUDA compute capability (build): {}\n",
            compute_cap.unwrap_or("not set")
        );
    }
    text += &format!(
        "CPU: {cores} cores, {threads} worker threads, {}; kernels use {}, matrix products {}{}\n",
        levels["detected"].as_str().unwrap_or("?"),
        levels["kernels"].as_str().unwrap_or("?"),
        levels["gemm"].as_str().unwrap_or("?"),
        if levels["gemm_avx512_built"] == true {
            ""
        } else {
            " (built without the avx512 feature)"
        },
    );
    match (&smi_error, gpus.is_empty()) {
        (Some(e), _) => text += &format!("GPUs: none found ({e})\n"),
        (None, true) => text += "GPUs: none found\n",
        (None, false) => {
            for (i, g) in gpus.iter().enumerate() {
                let mem = match (g.free_mib, g.total_mib) {
                    (Some(f), Some(t)) => format!("{f} MiB free of {t} MiB"),
                    _ => "memory unknown".into(),
                };
                text += &format!(
                    "GPU cuda:{i}: {}, compute capability {}, driver {}, {mem}\n",
                    g.name, g.compute_cap, g.driver
                );
            }
        }
    }
    if let Some(v) = &driver_cuda {
        text += &format!("driver's CUDA version: {v}\n");
    }
    for a in &advice {
        text += &format!("advice: {a}\n");
    }
    Ok(Report {
        text,
        json: json!({
            "version": env!("CARGO_PKG_VERSION"),
            "features": features,
            "cuda_built": cuda_built,
            "cuda_compute_cap_built": compute_cap,
            "cpu": {"cores": cores, "threads": threads, "levels": levels},
            "gpus": gpus.iter().map(|g| json!({
                "name": g.name, "driver": g.driver, "compute_cap": g.compute_cap,
                "free_mib": g.free_mib, "total_mib": g.total_mib,
            })).collect::<Vec<_>>(),
            "gpu_query_error": smi_error,
            "driver_cuda_version": driver_cuda,
            "advice": advice,
        }),
    })
}

/// What the CPU has, what the project's kernels use (less when
/// `SQUADLAB_CPU_LEVEL` caps it), and whether gemm has its AVX-512 kernels.
fn cpu_levels() -> serde_json::Value {
    use crate::model::kernels::cpu_level::{self, CpuLevel};
    let detected = cpu_level::detected();
    let active = cpu_level::active();
    let gemm = if cpu_level::GEMM_AVX512_BUILT && detected == CpuLevel::Avx512 {
        CpuLevel::Avx512
    } else {
        detected.min(CpuLevel::Avx2)
    };
    json!({
        "detected": detected.to_string(),
        "kernels": active.to_string(),
        "gemm": gemm.to_string(),
        "gemm_avx512_built": cpu_level::GEMM_AVX512_BUILT,
        "cap": std::env::var(cpu_level::ENV).ok(),
    })
}

/// "CUDA Version: 13.0" from nvidia-smi's banner: the newest CUDA the driver runs.
fn driver_cuda_version() -> Option<String> {
    let out = Command::new("nvidia-smi").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("CUDA Version:")?;
    text[at + "CUDA Version:".len()..]
        .split_whitespace()
        .next()
        .map(String::from)
}
