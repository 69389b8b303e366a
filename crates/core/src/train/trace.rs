//! Per-tensor traces for the parity harness (`tools/reference/parity.py`),
//! set by environment variables and read once; nothing is traced unless one
//! is set. They say where squadlab and PyTorch part when their losses drift:
//!
//! - `SQUADLAB_TRACE_NORMS=FILE`: each optimizer step appends one JSON line,
//!   `{"step", "grad": {name: ‖g‖}, "weight": {name: ‖w‖}}`, the gradient
//!   norms before clipping and the weight norms after the update;
//! - `SQUADLAB_TRACE_DUMP_STEP=N` with `SQUADLAB_TRACE_DUMP_DIR=DIR`: step N's
//!   full gradients (before clipping) and updated weights go to
//!   `DIR/grads-N.safetensors` and `DIR/weights-N.safetensors`.

use super::optimizer::Grads;
use crate::model::Params;
use anyhow::{Context, Result};
use candle_core::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

pub const NORMS_FILE: &str = "SQUADLAB_TRACE_NORMS";
pub const DUMP_STEP: &str = "SQUADLAB_TRACE_DUMP_STEP";
pub const DUMP_DIR: &str = "SQUADLAB_TRACE_DUMP_DIR";

struct Settings {
    norms: Option<PathBuf>,
    dump: Option<(u64, PathBuf)>,
}

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| Settings {
        norms: std::env::var_os(NORMS_FILE).map(PathBuf::from),
        dump: std::env::var(DUMP_STEP)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .zip(std::env::var_os(DUMP_DIR).map(PathBuf::from)),
    })
}

/// The gradients of (1-based) `step` before clipping, kept only when a trace
/// will need them after the update.
pub struct PendingTrace {
    step: u64,
    grad_norms: Vec<(String, f64)>,
    grads: Option<Grads>,
}

/// Whether step `step` is traced at all (so a step that keeps its
/// gradients elsewhere builds them as tensors only then).
pub fn wanted(step: u64) -> bool {
    let s = settings();
    s.norms.is_some() || s.dump.as_ref().is_some_and(|(at, _)| *at == step)
}

/// Records what the trace needs of the gradients, before clipping scales them.
pub fn before_clipping(step: u64, grads: &Grads) -> Result<Option<PendingTrace>> {
    let s = settings();
    let dump = s.dump.as_ref().is_some_and(|(at, _)| *at == step);
    if s.norms.is_none() && !dump {
        return Ok(None);
    }
    let grad_norms = grads
        .iter()
        .map(|(name, g)| Ok((name.clone(), norm(g)?)))
        .collect::<Result<_>>()?;
    Ok(Some(PendingTrace {
        step,
        grad_norms,
        grads: dump.then(|| grads.clone()),
    }))
}

/// Writes the step's trace once the update is applied.
pub fn after_update(pending: Option<PendingTrace>, params: &Params) -> Result<()> {
    let Some(t) = pending else { return Ok(()) };
    let s = settings();
    if let Some(path) = &s.norms {
        let weights = params
            .vars()
            .map(|(name, v)| Ok((name.clone(), norm(v.as_tensor())?)))
            .collect::<Result<Vec<_>>>()?;
        let line = serde_json::json!({
            "step": t.step,
            "grad": t.grad_norms.iter().cloned().collect::<BTreeMap<_, _>>(),
            "weight": weights.into_iter().collect::<BTreeMap<_, _>>(),
        });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {NORMS_FILE} file {}", path.display()))?;
        writeln!(file, "{line}")?;
    }
    if let (Some(grads), Some((_, dir))) = (&t.grads, &s.dump) {
        std::fs::create_dir_all(dir)?;
        let grads: HashMap<String, Tensor> = grads.clone().into_iter().collect();
        let weights: HashMap<String, Tensor> = params
            .vars()
            .map(|(name, v)| (name.clone(), v.as_tensor().detach()))
            .collect();
        candle_core::safetensors::save(&grads, dir.join(format!("grads-{}.safetensors", t.step)))?;
        candle_core::safetensors::save(
            &weights,
            dir.join(format!("weights-{}.safetensors", t.step)),
        )?;
    }
    Ok(())
}

fn norm(t: &Tensor) -> Result<f64> {
    let sq = t
        .to_dtype(candle_core::DType::F64)?
        .sqr()?
        .sum_all()?
        .to_scalar::<f64>()?;
    Ok(sq.sqrt())
}
