//! `squadlab bench check`: the device's graph against the CPU's, for the GPU
//! check (bench/gpu.sh, section 2). TF32 stays off throughout.
//!
//! - **Logits.** The same weights and windows on the CPU (f32, fused
//!   kernels) and on `--device` (f32, the generic graph): the largest
//!   absolute difference of the start and end logits, held to 1e-3.
//! - **Trajectory.** `--steps` train steps on `--device` in f32 and in half
//!   precision (bf16 on CUDA, f16 on the CPU, whose matmul has no bf16), both
//!   on the generic graph with dropout off, from the same weights on the same
//!   windows: the largest relative loss difference, held to ten unit
//!   roundoffs of the half type (bf16 3.9%, f16 0.49%). There is no loss
//!   scaler, so this checks the casts and the graph, not half-precision
//!   training quality; 30 f16 steps on the tiny task measured 7.8e-4
//!   (tests/it/generic_graph.rs), under two roundoffs.
//!
//! - **Fused against generic.** `--steps` lean steps on `--device` with
//!   dropout on (p = 0.1, the same Philox masks on both), in bf16 on CUDA
//!   and f32 on the CPU: the fused kernels the device's self-check trusts
//!   against candle's generic ops alone. Held to ten bf16 roundoffs (3.9%)
//!   on CUDA, 1e-5 in f32.
//!
//! No NaN passes: a non-finite logit or loss, on either side, fails the
//! check with an error naming it (`numeric`), where a fold with `f64::max`
//! would have skipped it and reported "max |Δ| 0".

use super::Report;
use crate::model::kernels::generic_graph;
use crate::model::{load_qa_model, BertQa, WindowBatch};
use crate::numeric;
use crate::rng::SeededRng;
use crate::train::accumulate_gradients;
use crate::train::optimizer::{
    clip_to_norm, global_norm, squared_norms, AdamW, AdamWParams, Grads,
};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::json;
use std::path::Path;

pub const LOGITS_TOLERANCE: f64 = 1e-3;

pub struct CheckShape {
    pub batch: usize,
    pub seq: usize,
    pub steps: usize,
    pub learning_rate: f64,
}

pub fn check(model_dir: &Path, device: &Device, shape: &CheckShape) -> Result<Report> {
    if shape.steps == 0 {
        bail!("--steps must be at least 1: there is no loss to compare");
    }
    crate::model::cuda_tuning::set_tf32(false);
    let (cpu, dev, logits_shape) = logits_on_both(model_dir, device, shape)?;
    let logits = logits_verdict(&format!("{device:?}"), &cpu, &dev)?;
    let half = if device.is_cuda() {
        DType::BF16
    } else {
        DType::F16
    };
    let full = trajectory(model_dir, device, DType::F32, shape)?;
    let reduced = trajectory(model_dir, device, half, shape)?;
    let losses = trajectory_verdict(&full, &reduced, half)?;
    let lean_dtype = if device.is_cuda() {
        DType::BF16
    } else {
        DType::F32
    };
    let (fused, generic, kernels) = fused_against_generic(model_dir, device, lean_dtype, shape)?;
    let lean = lean_verdict(&fused, &generic, lean_dtype)?;
    let (Some(first), Some(last), Some(first_half), Some(last_half)) =
        (full.first(), full.last(), reduced.first(), reduced.last())
    else {
        bail!("no loss was recorded in {} steps", shape.steps);
    };
    let text = format!(
        "logits, {device:?} f32 (generic graph) against the CPU f32 (fused) on {logits_shape:?}: max |Δ| {:.3e} (tolerance {LOGITS_TOLERANCE:e}) {}\n\
         {} steps, {half:?} against f32 on {device:?}, dropout off: worst relative loss difference {:.3e} (tolerance {:.3e}) {}; losses {first:.4} → {last:.4} (f32), {first_half:.4} → {last_half:.4} ({half:?})\n",
        logits.worst,
        verdict(logits.pass),
        shape.steps,
        losses.worst,
        losses.tolerance,
        verdict(losses.pass),
    ) + &format!(
        "{} lean steps in {lean_dtype:?} on {device:?}, dropout 0.1 with the same masks: fused ({}) against the generic ops, worst relative loss difference {:.3e} (tolerance {:.1e}) {}\n",
        shape.steps,
        kernels.join(", "),
        lean.worst,
        lean.tolerance,
        verdict(lean.pass),
    );
    if !(logits.pass && losses.pass && lean.pass) {
        bail!("{text}");
    }
    Ok(Report {
        text,
        json: json!({
            "case": "check", "device": format!("{device:?}"), "tf32": false,
            "logits": {"max_abs_diff": logits.worst, "tolerance": LOGITS_TOLERANCE, "shape": logits_shape, "pass": logits.pass},
            "trajectory": {
                "steps": shape.steps, "half": format!("{half:?}").to_lowercase(),
                "f32": full, "reduced": reduced, "worst_relative_diff": losses.worst,
                "tolerance": losses.tolerance, "pass": losses.pass,
            },
            "fused_vs_generic": {
                "steps": shape.steps, "dtype": format!("{lean_dtype:?}").to_lowercase(),
                "fused_kernels": kernels, "fused": fused, "generic": generic,
                "worst_relative_diff": lean.worst, "tolerance": lean.tolerance, "pass": lean.pass,
            },
        }),
    })
}

/// A figure held to its tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub worst: f64,
    pub tolerance: f64,
    pub pass: bool,
}

/// The device's logits against the CPU's: the largest absolute difference,
/// held to [`LOGITS_TOLERANCE`]. A non-finite logit on either side, or a
/// count that differs, is an error naming the logit, never a pass: a fold
/// with `f64::max` would skip a NaN and report 0.
pub fn logits_verdict(device: &str, cpu: &[f32], on_device: &[f32]) -> Result<Verdict> {
    let what = format!("logits on {device} against the CPU's");
    let worst = numeric::max_abs_diff(&what, on_device, cpu)?;
    Ok(Verdict {
        worst,
        tolerance: LOGITS_TOLERANCE,
        pass: numeric::within(&what, worst, LOGITS_TOLERANCE)?,
    })
}

/// The half-precision run's losses against the f32 run's: the largest
/// relative difference, held to ten unit roundoffs of `half`. A non-finite
/// loss in either run is an error naming the step.
pub fn trajectory_verdict(full: &[f64], reduced: &[f64], half: DType) -> Result<Verdict> {
    let what = format!("{half:?} losses against f32's");
    let tolerance = 10.0 * unit_roundoff(half);
    // No floor: a loss is never 0, and a 0 would make the ratio non-finite,
    // and so an error.
    let worst = numeric::max_rel_diff(&what, reduced, full, 0.0)?;
    Ok(Verdict {
        worst,
        tolerance,
        pass: numeric::within(&what, worst, tolerance)?,
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn unit_roundoff(dtype: DType) -> f64 {
    match dtype {
        DType::BF16 => 2f64.powi(-8),
        DType::F16 => 2f64.powi(-11),
        _ => f64::from(f32::EPSILON) / 2.0,
    }
}

/// The logits on the CPU and on `device`, from the same files, with their
/// shape.
fn logits_on_both(
    dir: &Path,
    device: &Device,
    s: &CheckShape,
) -> Result<(Vec<f32>, Vec<f32>, Vec<usize>)> {
    let logits = |device: &Device, generic: bool| -> Result<Vec<f32>> {
        let _graph = generic_graph(generic);
        let loaded = load_qa_model(dir, device, 0)?;
        let batch = WindowBatch::synthetic(&loaded.config, s.batch, s.seq, device)?;
        let model = BertQa::new(loaded.config.clone(), &loaded.params)?;
        // The training graph without dropout: what the device trains with.
        let (start, end) = model.forward(&batch.as_batch(), None)?;
        Ok(Tensor::cat(&[start, end], 1)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    let cpu = logits(&Device::Cpu, false)?;
    let dev = logits(device, true)?;
    Ok((cpu, dev, vec![s.batch, 2 * s.seq]))
}

/// The losses of `steps` train steps in `compute`, dropout off, on the
/// generic graph, each step on the same windows.
fn trajectory(dir: &Path, device: &Device, compute: DType, s: &CheckShape) -> Result<Vec<f64>> {
    let _graph = generic_graph(true);
    let mut loaded = load_qa_model(dir, device, 0)?;
    loaded.config.hidden_dropout_prob = 0.0;
    loaded.config.attention_probs_dropout_prob = 0.0;
    let batch = WindowBatch::synthetic(&loaded.config, s.batch, s.seq, device)?;
    let mut optimizer = AdamW::new(&loaded.params, AdamWParams::default())?;
    let mut rng = SeededRng::new(42);
    let mut losses = Vec::with_capacity(s.steps);
    for _ in 0..s.steps {
        let model = BertQa::with_dtype(loaded.config.clone(), &loaded.params, compute)?;
        let mut grads = Grads::new();
        let loss = accumulate_gradients(&model, &loaded.params, &batch, 1.0, &mut rng, &mut grads)?;
        losses.push(f64::from(loss.to_scalar::<f32>()?));
        let norm = global_norm(&squared_norms(&grads)?.to_vec1::<f64>()?);
        clip_to_norm(&mut grads, 1.0, norm)?;
        optimizer.step(&grads, s.learning_rate)?;
    }
    Ok(losses)
}

/// The fused run's losses against the generic run's: ten roundoffs in a
/// half type, 1e-5 in f32 (the lean step's own tests' tolerance).
fn lean_verdict(fused: &[f64], generic: &[f64], dtype: DType) -> Result<Verdict> {
    let what = format!("fused {dtype:?} losses against the generic ops'");
    let tolerance = match dtype {
        DType::F32 => 1e-5,
        half => 10.0 * unit_roundoff(half),
    };
    let worst = numeric::max_rel_diff(&what, fused, generic, 0.0)?;
    Ok(Verdict {
        worst,
        tolerance,
        pass: numeric::within(&what, worst, tolerance)?,
    })
}

/// `steps` lean steps with dropout on, once with the kernels the device
/// trusts and once on the generic ops alone, from the same weights on the
/// same windows with the same masks: both runs' losses and the kernels the
/// first ran fused.
fn fused_against_generic(
    dir: &Path,
    device: &Device,
    compute: DType,
    s: &CheckShape,
) -> Result<(Vec<f64>, Vec<f64>, Vec<String>)> {
    use crate::model::fused::KernelSet;
    use crate::model::lean::MicroBatchDropout;
    use crate::rng::philox::MaskStream;
    use crate::train::lean::device::DeviceStep;
    use crate::train::optimizer::clip_coefficient;
    let run = |kernels: KernelSet| -> Result<(Vec<f64>, KernelSet)> {
        let loaded = load_qa_model(dir, device, 0)?;
        let batch = WindowBatch::synthetic(&loaded.config, s.batch, s.seq, device)?;
        let mut optimizer = AdamW::new(&loaded.params, AdamWParams::default())?;
        let mut step =
            DeviceStep::new(&loaded.config, &loaded.params, compute)?.with_kernels(kernels);
        let key = MaskStream::key_for_seed(42);
        let mut losses = Vec::with_capacity(s.steps);
        for i in 0..s.steps {
            step.begin(&loaded.params)?;
            let dropout = MicroBatchDropout {
                key,
                round: i as u32,
                hidden: 0.1,
                attention: 0.1,
            };
            step.micro_batch(&loaded.params, &batch, Some(dropout), 1.0)?;
            let (loss, squared) = step.read()?;
            losses.extend(loss);
            let clip = clip_coefficient(1.0, global_norm(&squared)).unwrap_or(1.0);
            step.update(&mut optimizer, clip as f32, s.learning_rate)?;
        }
        Ok((losses, step.kernels()))
    };
    let (fused, kernels) = run(KernelSet::all())?;
    let (generic, _) = run(KernelSet::none())?;
    Ok((fused, generic, kernels.names()))
}
