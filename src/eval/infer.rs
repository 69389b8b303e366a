//! Batched inference: windows through the model in eval mode, no graph kept.

use crate::data::{FeatureSet, SquadDataset};
use crate::model::{Batch, BertQa};
use anyhow::Result;
use candle_core::{Device, Tensor};

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
    for first in (0..features.len()).step_by(batch_size.max(1)) {
        let windows = first..(first + batch_size).min(features.len());
        let n = windows.len();
        let (mut ids, mut types, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for w in windows {
            let t = features.tensors(w, data, len);
            ids.extend(t.input_ids);
            types.extend(t.token_type_ids);
            mask.extend(t.attention_mask);
        }
        let ids = Tensor::from_vec(ids, (n, len), device)?;
        let types = Tensor::from_vec(types, (n, len), device)?;
        let mask = Tensor::from_vec(mask, (n, len), device)?;
        let batch = Batch {
            input_ids: &ids,
            token_type_ids: &types,
            attention_mask: &mask,
        };
        let (s, e) = model.forward_inference(&batch)?;
        starts.extend(s.detach().flatten_all()?.to_vec1::<f32>()?);
        ends.extend(e.detach().flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((starts, ends))
}
