//! Batched inference: windows through the model in eval mode, no graph kept.

use crate::data::{FeatureSet, SquadDataset};
use crate::model::{BertQa, WindowBatch};
use anyhow::Result;
use candle_core::Device;

/// Start and end logits of every window, rows padded to `max_length`, in window order.
pub fn window_logits(
    model: &BertQa,
    data: &SquadDataset,
    features: &FeatureSet,
    batch_size: usize,
    device: &Device,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let len = features.params.max_length;
    let (mut starts, mut ends) = (
        Vec::with_capacity(features.len() * len),
        Vec::with_capacity(features.len() * len),
    );
    let all: Vec<usize> = (0..features.len()).collect();
    for windows in all.chunks(batch_size.max(1)) {
        let batch = WindowBatch::new(features, data, windows, len, device)?;
        let (s, e) = model.forward_inference(&batch.as_batch())?;
        starts.extend(s.detach().flatten_all()?.to_vec1::<f32>()?);
        ends.extend(e.detach().flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((starts, ends))
}
