//! The arithmetic of one training micro-batch, shared by the trainer and
//! `squadlab bench train-step`, so the benchmark times the code that trains.

use super::optimizer::Grads;
use crate::model::{qa_loss, BertQa, Params, WindowBatch};
use crate::rng::SeededRng;
use anyhow::Result;
use candle_core::{DType, Tensor};

/// Forward (dropout on) and backward for one micro-batch: adds the gradients
/// of `loss × scale` into `grads` (f32, by parameter name) and returns the
/// unscaled loss, a detached f32 scalar still on the device. It is not read
/// here: on CUDA each read is a host sync, so the trainer reads the step's
/// losses and gradient norms together, once. A non-finite loss gives
/// non-finite gradients, which the trainer stops on.
pub fn accumulate_gradients(
    model: &BertQa,
    params: &Params,
    batch: &WindowBatch,
    scale: f64,
    rng: &mut SeededRng,
    grads: &mut Grads,
) -> Result<Tensor> {
    let (start, end) = model.forward(&batch.as_batch(), Some(rng))?;
    let loss = qa_loss(&start, &end, &batch.start_positions, &batch.end_positions)?;
    let step_grads = (&loss * scale)?.backward()?;
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
    Ok(loss.detach())
}
