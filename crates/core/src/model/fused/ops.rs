//! The fused ops' one interface, over candle tensors on any device. Three
//! implementations: candle's generic ops (`generic.rs`, the reference and
//! the fallback), the CPU twins (`twin.rs`, the lean step's CPU kernels)
//! and the CUDA kernels (`cuda.rs`, feature `cuda`). The self-check
//! (`check.rs`) holds each fused implementation to the generic one before
//! a run trusts it.
//!
//! Shapes: `rows = b·s`. Compute tensors are f32, bf16 or f16 (the
//! activations a matrix product reads); LayerNorm statistics, the
//! embeddings' sum, logits and every gradient of a parameter are f32.

use crate::rng::philox::Dropout;
use anyhow::Result;
use candle_core::{DType, Tensor};

pub use crate::model::lean::ops::EmbedPads;

/// A batch's token ids, `[b, s]` u32 each: word ids, token types, and the
/// position row of each token (the family's numbering).
pub struct TokenIds {
    pub ids: Tensor,
    pub types: Tensor,
    pub positions: Tensor,
}

/// `norm_forward`'s results.
pub struct NormForward {
    /// `[rows, width]` in `NormSpec::y_dtype`.
    pub y: Tensor,
    /// `[rows, 2]` f32: each row's mean and 1/σ.
    pub stats: Tensor,
    /// With a residual, `dropout_in(a) + residual`, f32 `[rows, width]`.
    pub r: Option<Tensor>,
}

/// `norm_backward`'s results.
pub struct NormGrads {
    /// The gradient of `a`, in the dtype asked for.
    pub d_a: Tensor,
    /// With a residual: the gradient of the residual (`y`'s dtype).
    pub d_residual: Option<Tensor>,
    /// f32 `[width]` each: this call's weight and bias gradients.
    pub d_weight: Tensor,
    pub d_bias: Tensor,
}

/// What a `norm` op is beyond its tensors.
#[derive(Clone, Copy, Debug)]
pub struct NormSpec {
    pub eps: f32,
    pub input_dropout: Option<Dropout>,
    pub output_dropout: Option<Dropout>,
    pub y_dtype: DType,
}

/// AdamW's constants for one parameter.
pub use crate::model::kernels::optimizer::AdamStep;

/// One parameter's AdamW state: the f32 weight and both moments.
pub struct AdamState {
    pub w: Tensor,
    pub m: Tensor,
    pub v: Tensor,
}

/// Every fused op of the lean step. Each method is one kernel (or, for the
/// generic implementation, the composition of candle ops it replaces).
pub trait FusedOps {
    /// `softmax(scale·scores + mask)` over the last axis of `scores`
    /// `[b, heads, s, s]`, keys whose `key_mask` `[b, s]` (u32) is 0 masked
    /// out; returns the probabilities and them after `dropout` (the same
    /// tensor without one).
    fn softmax_forward(
        &self,
        scores: &Tensor,
        key_mask: &Tensor,
        scale: f32,
        dropout: Option<Dropout>,
    ) -> Result<(Tensor, Tensor)>;

    /// From the gradient of the dropped probabilities to that of `scores`.
    fn softmax_backward(
        &self,
        probs: &Tensor,
        grad: &Tensor,
        scale: f32,
        dropout: Option<Dropout>,
    ) -> Result<Tensor>;

    /// `r = dropout_in(a) + residual` (or `a`), `y = dropout_out(LN(r))`.
    fn norm_forward(
        &self,
        a: &Tensor,
        residual: Option<&Tensor>,
        weight: &Tensor,
        bias: &Tensor,
        spec: &NormSpec,
    ) -> Result<NormForward>;

    /// The backward of `norm_forward` from `dy`; `x` is the LayerNorm's
    /// input (`r`, or `a` without a residual).
    #[allow(clippy::too_many_arguments)]
    fn norm_backward(
        &self,
        x: &Tensor,
        dy: &Tensor,
        weight: &Tensor,
        stats: &Tensor,
        spec: &NormSpec,
        d_a_dtype: DType,
        residual: bool,
    ) -> Result<NormGrads>;

    /// `c + bias` on every row (f32 bias, `c`'s dtype).
    fn add_bias(&self, c: &Tensor, bias: &Tensor) -> Result<Tensor>;

    /// GELU, erf form.
    fn gelu_forward(&self, u: &Tensor) -> Result<Tensor>;

    /// `d · GELU'(u)`.
    fn gelu_backward(&self, u: &Tensor, d: &Tensor) -> Result<Tensor>;

    /// Column sums of `m` `[rows, cols]`, f32 `[cols]`.
    fn column_sums(&self, m: &Tensor) -> Result<Tensor>;

    /// `word[ids] + token_type[types] + position[positions]`, f32
    /// `[b·s, hidden]`, for `ids`, `types`, `positions` `[b, s]` (u32).
    fn embed_forward(&self, ids: &TokenIds, tables: [&Tensor; 3]) -> Result<Tensor>;

    /// The three tables' gradients (word, position, token type; f32, with
    /// `rows` rows each) from `d` `[b·s, hidden]`; the `pads` rows get none.
    fn embed_backward(
        &self,
        d: &Tensor,
        ids: &TokenIds,
        rows: [usize; 3],
        pads: EmbedPads,
    ) -> Result<[Tensor; 3]>;

    /// The QA loss of `logits` `[b·s, 2]` for `start`, `end` `[b]` (u32):
    /// the loss `[1]` and its gradient times `scale`.
    fn qa_loss(
        &self,
        logits: &Tensor,
        start: &Tensor,
        end: &Tensor,
        scale: f32,
    ) -> Result<(Tensor, Tensor)>;

    /// One AdamW update from the f32 gradient `g`; with `half`, also the
    /// updated weight in that dtype (the autocast copy).
    fn adamw(
        &self,
        state: AdamState,
        g: &Tensor,
        step: &AdamStep,
        half: Option<DType>,
    ) -> Result<(AdamState, Option<Tensor>)>;

    /// Each tensor's squared L2 norm, summed in f64.
    fn squared_norms(&self, grads: &[Tensor]) -> Result<Vec<f64>>;
}
