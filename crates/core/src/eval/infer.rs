//! Batched inference: windows through the model in eval mode, no graph kept.

use crate::data::{FeatureSet, SquadDataset};
use crate::model::{BertQa, WindowBatch};
use anyhow::Result;
use candle_core::Device;

/// Start and end logits of every window, in window order, as rows of
/// `max_length`. Each batch runs padded only to its longest window (the mask
/// makes padding invisible to real positions); positions past a window's
/// batch length read `f32::MIN`, which no answer span can use.
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
        let padded = features.longest(windows).min(len);
        let batch = WindowBatch::new(features, data, windows, padded, device)?;
        let (s, e) = model.forward_inference(&batch.as_batch())?;
        for (logits, out) in [(s, &mut starts), (e, &mut ends)] {
            for row in logits.detach().to_vec2::<f32>()? {
                out.extend_from_slice(&row);
                out.resize(out.len() + len - row.len(), f32::MIN);
            }
        }
    }
    Ok((starts, ends))
}
