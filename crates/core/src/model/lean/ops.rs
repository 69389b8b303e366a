//! The lean step's op vocabulary: what one launch is. The step
//! (`sequence.rs`) is written once against `Ops`; the CPU computes each op
//! (`cpu.rs`), and the plan (`plan.rs`) only records the buffers they use, so
//! the census and the memory planner count the very sequence that trains.
//!
//! Buffers are handles: the step names an activation, a parameter or a
//! parameter's gradient, and the backend resolves it.

pub use crate::model::Activation;
use anyhow::Result;

/// A buffer the step names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Buf {
    /// An activation (or its gradient) of this micro-batch, by allocation.
    Act(u32),
    /// A parameter's weights, by index in the parameter table.
    Param(u16),
    /// That parameter's f32 gradient, in the step's gradient arena.
    Grad(u16),
}

/// What an activation holds: the compute dtype (a matrix product's operand,
/// f16 or bf16 under autocast) or f32 (LayerNorm statistics, the
/// embeddings' sum, logits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prec {
    Compute,
    F32,
}

pub use crate::rng::philox::Dropout;

/// One batch's host inputs, `[b, s]` row-major.
#[derive(Clone, Debug, Default)]
pub struct StepInput {
    pub b: usize,
    pub s: usize,
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    pub attention_mask: Vec<u32>,
    pub start_positions: Vec<u32>,
    pub end_positions: Vec<u32>,
    /// Each token's position row as the family numbers them
    /// (`model::position_ids`); empty means 0, 1, 2… in every window.
    pub position_ids: Vec<u32>,
}

impl StepInput {
    /// Token `n`'s position row.
    pub fn position(&self, n: usize) -> usize {
        match self.position_ids.get(n) {
            Some(&p) => p as usize,
            None => n % self.s.max(1),
        }
    }

    /// Every token's position row.
    pub fn positions(&self) -> Vec<u32> {
        (0..self.b * self.s)
            .map(|n| self.position(n) as u32)
            .collect()
    }
}

/// The embedding rows that get no gradient (PyTorch's `padding_idx`): the
/// word table's pad row always, the position table's only for RoBERTa.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbedPads {
    pub word: u32,
    pub position: Option<u32>,
}

/// `c (m×n) [+]= a · b (+ bias on every row)`, row-major; `a` is stored
/// `[m, k]`, or `[k, m]` when `a_t`; `b` is `[k, n]`, or `[n, k]` when
/// `b_t`. One launch: a bias rides in the GEMM's epilogue (cuBLASLt's
/// `EPILOGUE_BIAS`), so it is never a launch of its own.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub c: Buf,
    pub a: Buf,
    pub a_t: bool,
    pub b: Buf,
    pub b_t: bool,
    pub accumulate: bool,
    pub bias: Option<Buf>,
    /// Multiplies the product (not the bias or what `c` held).
    pub scale: f32,
}

/// `r = dropout(a) + residual; y = LayerNorm(r) · w + b`, then `y` dropped
/// out when `output_dropout` is set. Without a residual, `r` is `a` itself
/// (and `a` gets no dropout). `stats` keeps each row's mean and 1/σ.
#[derive(Clone, Copy, Debug)]
pub struct Norm {
    pub rows: usize,
    pub width: usize,
    pub a: Buf,
    pub input_dropout: Option<Dropout>,
    /// `(residual, r)`: what is added, and where the sum goes.
    pub residual: Option<(Buf, Buf)>,
    pub weight: Buf,
    pub bias: Buf,
    pub eps: f32,
    pub y: Buf,
    pub output_dropout: Option<Dropout>,
    pub stats: Buf,
}

/// `Norm`'s backward: from `dy`, the gradient of the LayerNorm's input
/// `dr` goes to `d_a` (through the input dropout) and, with a residual,
/// unchanged to `d_residual`; the weight and bias gradients add into theirs.
/// Two launches: the rows, then the reduction of the weight gradients'
/// per-block partial sums.
#[derive(Clone, Copy, Debug)]
pub struct NormBackward {
    pub forward: Norm,
    /// The LayerNorm's input: `r` with a residual, else `a`.
    pub r: Buf,
    pub dy: Buf,
    pub d_a: Buf,
    pub d_residual: Option<Buf>,
    pub d_weight: Buf,
    pub d_bias: Buf,
}

/// Self-attention over `q, k, v` `[b·s, hidden]` in `heads` heads:
/// `context = dropout(softmax(q·kᵀ·scale + mask)) · v`. Three launches: the
/// scores' batched GEMM, one scale + mask + softmax + dropout op, the
/// context's batched GEMM.
#[derive(Clone, Copy, Debug)]
pub struct Attention {
    pub b: usize,
    pub s: usize,
    pub hidden: usize,
    pub heads: usize,
    pub q: Buf,
    pub k: Buf,
    pub v: Buf,
    pub context: Buf,
    pub dropout: Option<Dropout>,
}

/// Attention's backward: five launches (dP = dC·vᵀ and dv = Pᵀ·dC, the
/// softmax and dropout backward op, dq = dS·k and dk = dSᵀ·q).
#[derive(Clone, Copy, Debug)]
pub struct AttentionBackward {
    pub forward: Attention,
    pub d_context: Buf,
    pub dq: Buf,
    pub dk: Buf,
    pub dv: Buf,
}

/// The backends: each method is one fused op (launch counts in
/// `sequence.rs`, where the step calls them).
pub trait Ops {
    /// A fresh activation of `elems` elements, zeroed.
    fn alloc(&mut self, what: &'static str, elems: usize, prec: Prec) -> Result<Buf>;
    /// Frees an activation the step no longer reads.
    fn free(&mut self, buf: Buf);
    /// Zeroes the gradient arena (one memset).
    fn zero_grads(&mut self) -> Result<()>;
    fn gemm(&mut self, g: &Gemm) -> Result<()>;
    /// Word + token type + position rows into `out` `[b·s, hidden]`.
    fn embed(&mut self, input: &StepInput, tables: [Buf; 3], out: Buf) -> Result<()>;
    /// The scatter-add of `d_out` into the three tables' gradients; the
    /// `pads` rows get none (PyTorch's `padding_idx`).
    fn embed_backward(
        &mut self,
        input: &StepInput,
        d_out: Buf,
        grads: [Buf; 3],
        pads: EmbedPads,
    ) -> Result<()>;
    fn norm(&mut self, n: &Norm) -> Result<()>;
    fn norm_backward(&mut self, n: &NormBackward) -> Result<()>;
    fn attention(&mut self, input: &StepInput, a: &Attention) -> Result<()>;
    fn attention_backward(&mut self, input: &StepInput, a: &AttentionBackward) -> Result<()>;
    /// `g = GELU(u)`, erf form or tanh approximation.
    fn gelu(&mut self, u: Buf, g: Buf, elems: usize, act: Activation) -> Result<()>;
    /// `d ← d · GELU'(u)`, in place.
    fn gelu_backward(&mut self, u: Buf, d: Buf, elems: usize, act: Activation) -> Result<()>;
    /// Column sums of `m` `[rows, cols]` added into `into` (a bias gradient).
    fn column_sums(&mut self, m: Buf, rows: usize, cols: usize, into: Buf) -> Result<()>;
    /// The QA loss of `logits` `[b·s, 2]` (mean over windows of the start
    /// and end cross-entropies, halved) and its gradient times `scale`
    /// into `d_logits`, in one op; the loss stays on the device.
    fn qa_loss(&mut self, input: &StepInput, logits: Buf, d_logits: Buf, scale: f32) -> Result<()>;
}
