//! Whether a run's training step fits its device, decided before launch.
//!
//! The device's free memory comes from `nvidia-smi` (no CUDA context, so the
//! app can ask without claiming the GPU) or, for the CPU, /proc/meminfo. A
//! CUDA run that cannot fit is refused with the batch split that would; a CPU
//! run or an unknown device gets a warning only: the CPU can swap, and its
//! fused f32 graph needs less than the plan (which counts the generic graph).

use super::gpus::Gpu;
use super::plan::{plan, plan_lean, show_bytes, MemoryPlan};
use crate::config::{self, ModelSource, RunConfig};
use crate::model::{locate_model, BertConfig};

/// The memory of the device a run names.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceMemory {
    /// `cpu` or `cuda:N`.
    pub name: String,
    pub cuda: bool,
    /// Free bytes, when known.
    pub free: Option<u64>,
}

/// The device `choice` resolves to in this build, with its free memory:
/// `gpus` is `nvidia-smi`'s answer (asked once by the caller).
pub fn device_memory(choice: config::Device, gpus: &Result<Vec<Gpu>, String>) -> DeviceMemory {
    let cuda_built = candle_core::utils::cuda_is_available();
    let gpu = |n: usize| DeviceMemory {
        name: format!("cuda:{n}"),
        cuda: true,
        free: gpus
            .as_ref()
            .ok()
            .and_then(|g| g.get(n))
            .and_then(|g| g.free_mib)
            .map(|mib| mib << 20),
    };
    match choice {
        config::Device::Cuda(n) => gpu(n),
        config::Device::Auto if cuda_built && gpus.as_ref().is_ok_and(|g| !g.is_empty()) => gpu(0),
        config::Device::Auto | config::Device::Cpu => DeviceMemory {
            name: "cpu".into(),
            cuda: false,
            free: available_ram(),
        },
    }
}

/// MemAvailable from /proc/meminfo (Linux).
pub fn available_ram() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib << 10)
}

/// The model's config without a download: built in for the paper's models,
/// else the config.json of a local, pip or already cached hub model.
pub fn model_config(source: &ModelSource) -> Option<BertConfig> {
    let id = source.as_str();
    BertConfig::known(id.trim_start_matches("hub:")).or_else(|| {
        let files = locate_model(source, false).ok()?;
        BertConfig::load(&files.config_json()).ok()
    })
}

/// The plan for `config` against its device, or `None` when the model's
/// config is not at hand without a download.
pub fn check_run(config: &RunConfig, gpus: &Result<Vec<Gpu>, String>) -> Option<Fit> {
    let model = model_config(&config.model)?;
    Some(check(config, &model, &device_memory(config.device, gpus)))
}

/// The prediction for a run, set against its device.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    pub plan: MemoryPlan,
    pub device: DeviceMemory,
    /// A CUDA run that cannot fit: refuse it before launch.
    pub refuse: bool,
    /// A CPU run that may not fit: say so, launch anyway.
    pub warn: bool,
    /// "needs about 7.12 GiB; cuda:0 has 139.50 GiB free", plus advice.
    pub message: String,
}

/// The training step of `config` on `model`, against `device`.
pub fn check(config: &RunConfig, model: &BertConfig, device: &DeviceMemory) -> Fit {
    let bytes = |c: &RunConfig| match c.dtype {
        config::DType::F32 => 4,
        config::DType::Bf16 | config::DType::F16 => 2,
    };
    // The lean step trains f32 on the CPU with graph auto; the rest is the
    // autograd graph, planned as the generic one.
    let lean = !device.cuda && config.graph == config::Graph::Auto && bytes(config) == 4;
    let threads = rayon::current_num_threads().max(1);
    let plan_for = |batch: usize| {
        if lean {
            plan_lean(model, batch, config.max_seq_length, 4, threads)
        } else {
            plan(
                model,
                batch,
                config.max_seq_length,
                bytes(config),
                device.cuda,
            )
        }
    };
    let p = plan_for(config.per_device_train_batch_size);
    let needs = format!("needs about {}", show_bytes(p.total()));
    // The generic graph's plan bounds the CPU's fused autograd graph, which
    // keeps no attention scores.
    let fused_cpu = !device.cuda && !lean && config.graph != config::Graph::Generic;
    let bound = if fused_cpu {
        " (at most: the fused CPU graph needs less)"
    } else {
        ""
    };
    let (refuse, warn, message) = match device.free {
        None => (
            false,
            false,
            format!("{needs}{bound}; {}'s free memory is unknown", device.name),
        ),
        Some(free) if p.total() <= free => (
            false,
            false,
            format!(
                "{needs}{bound}; {} has {} free",
                device.name,
                show_bytes(free)
            ),
        ),
        Some(free) => {
            let advice = split_advice(config, free, &plan_for);
            let message = format!(
                "{needs}{bound}, more than the {} free on {}: {advice}",
                show_bytes(free),
                device.name
            );
            (device.cuda, !device.cuda, message)
        }
    };
    Fit {
        plan: p,
        device: device.clone(),
        refuse,
        warn,
        message,
    }
}

/// The largest per-device batch (halving) that fits, with the accumulation
/// that keeps the effective batch.
fn split_advice(config: &RunConfig, free: u64, plan_for: &dyn Fn(usize) -> MemoryPlan) -> String {
    let batch = config.per_device_train_batch_size;
    let accumulation = config.gradient_accumulation_steps.max(1);
    let mut smaller = batch / 2;
    while smaller >= 1 {
        if plan_for(smaller).total() <= free && batch.is_multiple_of(smaller) {
            return format!(
                "set per_device_train_batch_size: {smaller} and gradient_accumulation_steps: {} \
                 (the same {} windows per optimizer step)",
                accumulation * batch / smaller,
                batch * accumulation
            );
        }
        smaller /= 2;
    }
    "it does not fit even one window per batch: lower max_seq_length or pick a smaller model"
        .to_string()
}
