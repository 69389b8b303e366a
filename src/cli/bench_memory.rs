//! `squadlab bench memory`: one train step's measured peak memory beside the
//! planner's prediction. On the CPU the measure is the peak RSS during the
//! first step less the RSS before it (no warm-up: a warmed allocator would
//! hide the step's growth); on CUDA the device pool's peak use during the
//! step less its use before.

use super::Report;
use crate::config::{Graph, RunConfig};
use crate::memory::{counting, plan, plan_lean, rss, show_bytes};
use crate::model::cuda_tuning;
use crate::model::{LoadedModel, WindowBatch};
use crate::rng::SeededRng;
use crate::train::engine::{generator_for, Engine};
use crate::train::optimizer::{global_norm, AdamW};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use serde_json::json;

pub fn measure(
    device: &Device,
    compute: DType,
    graph: Graph,
    loaded: &LoadedModel,
    batch: &WindowBatch,
    optimizer: &mut AdamW,
) -> Result<Report> {
    let (n, seq) = batch.input_ids.dims2()?;
    let cuda = device.is_cuda();
    let before = if cuda {
        cuda_tuning::reset_peak(device)?;
        cuda_tuning::pool_peak(device)?.context("the CUDA pool reports no use")?
    } else {
        rss::reset_peak().context("cannot reset the peak RSS (/proc/self/clear_refs)")?;
        rss::resident().context("cannot read /proc/self/status")?.0
    };
    counting::reset_peak();
    let live_before = counting::live_and_peak().0;

    // One step as the trainer runs it, on the engine it would choose: the
    // autocast copies or the lean step's gradient arena, forward and
    // backward, the one read of loss and norms, clipping, AdamW.
    let run = RunConfig {
        graph,
        ..RunConfig::default()
    };
    let generator = generator_for(&run, device, compute);
    let mut engine = Engine::new(
        &run,
        &loaded.config,
        &loaded.params,
        device,
        compute,
        generator,
    )?;
    let lean = matches!(engine, Engine::Lean { .. });
    let mut rng = SeededRng::new(42);
    engine.begin(&loaded.params)?;
    engine.micro_batch(&loaded.params, batch, 1.0, 0, &mut rng)?;
    let (losses, squared) = engine.read()?;
    let loss = losses.first().copied().unwrap_or(f64::NAN);
    engine.update(optimizer, 1.0, global_norm(&squared), 1e-9)?;
    drop(engine);
    device.synchronize()?;

    let peak = if cuda {
        cuda_tuning::pool_peak(device)?.context("the CUDA pool reports no use")?
    } else {
        rss::resident().context("cannot read /proc/self/status")?.1
    };
    let live_peak = counting::live_and_peak().1 - live_before;
    if peak < before {
        bail!("the peak ({peak} bytes) is below the use before the step ({before} bytes)");
    }
    let measured = peak - before;
    let compute_bytes = compute.size_in_bytes() as u64;
    let p = if lean {
        plan_lean(
            &loaded.config,
            n,
            seq,
            compute_bytes,
            rayon::current_num_threads(),
        )
    } else {
        plan(&loaded.config, n, seq, compute_bytes, cuda)
    };
    let predicted = p.step_bytes();
    // An empty plan is an error here, not an infinite ratio in the report.
    let ratio = p.measured_over_planned(measured)?;
    let live_ratio = p.measured_over_planned(live_peak)?;
    let what = if cuda {
        "CUDA pool peak less its use before"
    } else {
        "peak RSS less the RSS before"
    };
    let mut text = format!(
        "one train step, {n} x {seq}, {compute:?} on {device:?}: measured {} ({what}), planned {} (gradients {}, activations {}, dropout masks {}, gradients candle keeps {}, backward workspace {}); measured / planned = {ratio:.3}; the allocator's live peak {} ({:.3} of planned)\n",
        show_bytes(measured),
        show_bytes(predicted),
        show_bytes(p.gradients),
        show_bytes(p.activation_bytes()),
        show_bytes(p.dropout_masks),
        show_bytes(p.retained_gradients),
        show_bytes(p.backward_workspace),
        show_bytes(live_peak),
        live_ratio,
    );
    text += &format!(
        "the whole run on this device: planned {} (weights {}, AdamW {}, runtime {}); loss {loss:.4}\n",
        show_bytes(p.total()),
        show_bytes(p.parameters),
        show_bytes(p.optimizer),
        show_bytes(p.runtime),
    );
    Ok(Report {
        text,
        json: json!({
            "case": "memory", "batch": n, "seq": seq, "dtype": format!("{compute:?}").to_lowercase(),
            "device": format!("{device:?}"), "method": what,
            "before_bytes": before, "peak_bytes": peak,
            "measured_step_bytes": measured, "planned_step_bytes": predicted,
            "measured_over_planned": ratio, "live_peak_step_bytes": live_peak, "planned_total_bytes": p.total(),
            "plan": serde_json::to_value(&p)?, "loss": loss,
        }),
    })
}
