//! Windows turned into the model's input tensors.

use super::{Batch, BertConfig};
use crate::data::{FeatureSet, SquadDataset};
use candle_core::{DType, Device, Result, Tensor};

/// `[n, len]` u32 input tensors for `n` windows, plus their `[n]` answer labels.
pub struct WindowBatch {
    pub input_ids: Tensor,
    pub token_type_ids: Tensor,
    pub attention_mask: Tensor,
    pub start_positions: Tensor,
    pub end_positions: Tensor,
}

impl WindowBatch {
    /// `n` windows of fixed pseudo-random ids, every position real (as with
    /// padding to max_length), with labels spread over the positions: inputs
    /// for benchmarks and censuses that need no data.
    pub fn synthetic(config: &BertConfig, n: usize, seq: usize, device: &Device) -> Result<Self> {
        let vocab = config.vocab_size as u32;
        let low = 1000.min(vocab / 2);
        let ids: Vec<u32> = (0..n * seq)
            .map(|i| low + (i as u32 * 7919) % (vocab - low))
            .collect();
        let labels: Vec<u32> = (0..n as u32).map(|i| i % seq as u32).collect();
        Ok(Self {
            input_ids: Tensor::from_vec(ids, (n, seq), device)?,
            token_type_ids: Tensor::zeros((n, seq), DType::U32, device)?,
            attention_mask: Tensor::ones((n, seq), DType::U32, device)?,
            start_positions: Tensor::from_vec(labels.clone(), n, device)?,
            end_positions: Tensor::from_vec(labels, n, device)?,
        })
    }

    /// Windows `windows` of `features`, each padded to `len` positions.
    pub fn new(
        features: &FeatureSet,
        data: &SquadDataset,
        windows: &[usize],
        len: usize,
        device: &Device,
    ) -> Result<Self> {
        let n = windows.len();
        let (mut ids, mut types, mut mask) = (
            Vec::with_capacity(n * len),
            Vec::with_capacity(n * len),
            Vec::with_capacity(n * len),
        );
        let (mut starts, mut ends) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for &w in windows {
            let t = features.tensors(w, data, len);
            ids.extend(t.input_ids);
            types.extend(t.token_type_ids);
            mask.extend(t.attention_mask);
            starts.push(features.windows[w].start_position);
            ends.push(features.windows[w].end_position);
        }
        Ok(Self {
            input_ids: Tensor::from_vec(ids, (n, len), device)?,
            token_type_ids: Tensor::from_vec(types, (n, len), device)?,
            attention_mask: Tensor::from_vec(mask, (n, len), device)?,
            start_positions: Tensor::from_vec(starts, n, device)?,
            end_positions: Tensor::from_vec(ends, n, device)?,
        })
    }

    pub fn as_batch(&self) -> Batch<'_> {
        Batch {
            input_ids: &self.input_ids,
            token_type_ids: &self.token_type_ids,
            attention_mask: &self.attention_mask,
        }
    }

    /// Windows in the batch.
    pub fn len(&self) -> usize {
        self.start_positions.dims1().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
