//! The arithmetic of one training micro-batch, shared by the trainer and
//! `squadlab bench train-step`, so the benchmark times the code that trains.

use super::optimizer::Grads;
use crate::model::layers::SeededRng;
use crate::model::{qa_loss, BertQa, Params, WindowBatch};
use anyhow::Result;
use candle_core::DType;

/// Forward (dropout on) and backward for one micro-batch: adds the gradients
/// of `loss × scale` into `grads` (f32, by parameter name) and returns the
/// unscaled loss. A non-finite loss returns at once, before any backward pass.
pub fn accumulate_gradients(
    model: &BertQa,
    params: &Params,
    batch: &WindowBatch,
    scale: f64,
    rng: &mut SeededRng,
    grads: &mut Grads,
) -> Result<f64> {
    let (start, end) = model.forward(&batch.as_batch(), Some(rng))?;
    let loss = qa_loss(&start, &end, &batch.start_positions, &batch.end_positions)?;
    let value = f64::from(loss.to_scalar::<f32>()?);
    if !value.is_finite() {
        return Ok(value);
    }
    let step_grads = (loss * scale)?.backward()?;
    for (name, var) in params.vars() {
        if let Some(g) = step_grads.get(var) {
            let g = g.to_dtype(DType::F32)?;
            let sum = match grads.remove(name) {
                Some(acc) => (acc + g)?,
                None => g,
            };
            grads.insert(name.clone(), sum);
        }
    }
    Ok(value)
}
