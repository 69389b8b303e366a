//! `squadlab doctor --kernels`: the fused kernels' self-check (the one a
//! run makes when its device opens), as a table: each kernel forward and
//! backward against candle's generic ops on the same device.

use crate::model::fused::{device_checks, CheckReport, Kernel};
use candle_core::Device;
use serde_json::{json, Value};

/// The checks on the CPU and on each of `gpus` CUDA devices, as text and JSON.
pub fn check_all(gpus: usize) -> (String, Value) {
    let mut reports = device_checks(&Device::Cpu);
    let mut text = String::new();
    // A fault switch that names no kernel breaks nothing: say so.
    let unknown = crate::faults::broken_kernel().filter(|n| Kernel::from_name(n).is_none());
    if let Some(name) = unknown {
        let known: Vec<&str> = Kernel::ALL.iter().map(|k| k.name()).collect();
        text += &format!(
            "{}={name:?} names no kernel, so none is broken (the kernels: {})\n",
            crate::faults::BROKEN_KERNEL,
            known.join(", ")
        );
    }
    for i in 0..gpus {
        match crate::model::select_device(crate::config::Device::Cuda(i)) {
            Ok(device) => reports.extend(device_checks(&device)),
            Err(e) => text += &format!("kernels on cuda:{i}: the device did not open ({e:#})\n"),
        }
    }
    for r in &reports {
        text += &table(r);
    }
    (text, json!(reports))
}

fn table(r: &CheckReport) -> String {
    let mut out = format!(
        "\nfused kernels: {} on {} ({:.3} s)\n{:<12} {:<9} {:<5} {:>10} {:>10}  verdict\n",
        r.implementation, r.device, r.seconds, "kernel", "direction", "dtype", "error", "tolerance"
    );
    for c in &r.checks {
        let verdict = match (&c.failure, c.passed, c.finite) {
            (Some(f), _, _) => format!("OFF ({f})"),
            (None, true, _) => "fused".to_string(),
            (None, false, false) => "OFF (not finite)".to_string(),
            (None, false, true) => "OFF (disagrees)".to_string(),
        };
        out += &format!(
            "{:<12} {:<9} {:<5} {:>10.2e} {:>10.1e}  {verdict}\n",
            c.kernel, c.direction, c.dtype, c.error, c.tolerance
        );
    }
    let off = r.failed();
    out += &match off.is_empty() {
        true => "every kernel runs fused\n".to_string(),
        false => format!(
            "switched off, on the generic ops: {}\n",
            off.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
        ),
    };
    out
}
