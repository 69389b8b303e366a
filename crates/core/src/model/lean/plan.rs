//! The lean step without arithmetic: the same sequence (`sequence.rs`) run
//! over a backend that only records its buffers, for any dtype. The census
//! counts its launches; the memory planner reads its peak of live
//! activation bytes. Tests hold both to the CPU backend's real run.

use super::ops::{
    Activation, Attention, AttentionBackward, Buf, EmbedPads, Gemm, Norm, NormBackward, Ops, Prec,
    StepInput,
};
use super::sequence::{Launches, MicroBatchDropout, ParamTable, Sequence};
use crate::model::BertConfig;
use anyhow::Result;
use std::collections::BTreeMap;

/// Live and peak activation bytes, by what the step called them.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Bytes per element of the compute dtype.
    pub compute_bytes: usize,
    live: Vec<Option<(&'static str, usize)>>,
    pub live_bytes: usize,
    pub peak_bytes: usize,
    /// At the peak, by kind.
    pub peak_by_kind: BTreeMap<&'static str, usize>,
}

impl Plan {
    pub fn new(compute_bytes: usize) -> Self {
        Self {
            compute_bytes,
            ..Self::default()
        }
    }
}

/// One micro-batch of `batch × seq` windows with the model's dropout, its
/// gradients zeroed first, recorded in a compute dtype of `compute_bytes`
/// per element: its launches and its buffers.
pub fn record(
    config: &BertConfig,
    batch: usize,
    seq: usize,
    compute_bytes: usize,
) -> Result<(Launches, Plan)> {
    let table = ParamTable::new(config);
    let mut plan = Plan::new(compute_bytes);
    let input = StepInput {
        b: batch,
        s: seq,
        ..StepInput::default()
    };
    let dropout = MicroBatchDropout {
        key: [0, 0],
        round: 0,
        hidden: config.hidden_dropout_prob as f32,
        attention: config.attention_probs_dropout_prob as f32,
    };
    let mut sequence = Sequence::new(&mut plan, config, &table);
    sequence.zero_grads()?;
    sequence.micro_batch(&input, Some(dropout), 1.0)?;
    let launches = sequence.launches;
    Ok((launches, plan))
}

impl Ops for Plan {
    fn alloc(&mut self, what: &'static str, elems: usize, prec: Prec) -> Result<Buf> {
        let bytes = elems
            * match prec {
                Prec::Compute => self.compute_bytes,
                Prec::F32 => 4,
            };
        self.live.push(Some((what, bytes)));
        self.live_bytes += bytes;
        if self.live_bytes > self.peak_bytes {
            self.peak_bytes = self.live_bytes;
            self.peak_by_kind.clear();
            for (kind, b) in self.live.iter().flatten() {
                *self.peak_by_kind.entry(kind).or_default() += b;
            }
        }
        Ok(Buf::Act((self.live.len() - 1) as u32))
    }

    fn free(&mut self, buf: Buf) {
        if let Buf::Act(i) = buf {
            if let Some((_, bytes)) = self.live.get_mut(i as usize).and_then(Option::take) {
                self.live_bytes -= bytes;
            }
        }
    }

    fn zero_grads(&mut self) -> Result<()> {
        Ok(())
    }
    fn gemm(&mut self, _: &Gemm) -> Result<()> {
        Ok(())
    }
    fn embed(&mut self, _: &StepInput, _: [Buf; 3], _: Buf) -> Result<()> {
        Ok(())
    }
    fn embed_backward(&mut self, _: &StepInput, _: Buf, _: [Buf; 3], _: EmbedPads) -> Result<()> {
        Ok(())
    }
    fn norm(&mut self, _: &Norm) -> Result<()> {
        Ok(())
    }
    fn norm_backward(&mut self, _: &NormBackward) -> Result<()> {
        Ok(())
    }
    fn attention(&mut self, _: &StepInput, _: &Attention) -> Result<()> {
        Ok(())
    }
    fn attention_backward(&mut self, _: &StepInput, _: &AttentionBackward) -> Result<()> {
        Ok(())
    }
    fn gelu(&mut self, _: Buf, _: Buf, _: usize, _: Activation) -> Result<()> {
        Ok(())
    }
    fn gelu_backward(&mut self, _: Buf, _: Buf, _: usize, _: Activation) -> Result<()> {
        Ok(())
    }
    fn column_sums(&mut self, _: Buf, _: usize, _: usize, _: Buf) -> Result<()> {
        Ok(())
    }
    fn qa_loss(&mut self, _: &StepInput, _: Buf, _: Buf, _: f32) -> Result<()> {
        Ok(())
    }
}
