//! The memory a training step needs, predicted from the model's config, the
//! batch and the precision, before anything is allocated.
//!
//! It counts the generic graph, the one a CUDA build trains with: every
//! tensor the forward pass makes stays alive until the backward pass ends
//! (the loss holds the graph), so the peak comes at the end of the backward
//! pass, when all of them, every parameter's gradient and the backward's own
//! temporaries coexist. The activation terms are exact: each kind below is
//! the byte count of the graph's kernel outputs, tested node for node against
//! `squadlab bench census` (tests/serial/memory_plan.rs).
//!
//! The backward pass adds what candle 0.11's `backward` keeps: it computes a
//! gradient for every operand of a differentiable op, even one that needs
//! none (a dropout mask, the broadcast attention mask, the embeddings'
//! [PAD] split), and keeps it in the gradient store until `backward` returns,
//! together with the tensors its recorded op still holds: for a mask that
//! multiplies, the zeros it was summed into, the product and the incoming
//! gradient, four tensors of the masked one's size. Measured at MiniLM
//! 8 × 384: the store held 1.92 GiB when `backward` returned, as counted here.
//! The backward workspace is the softmax's backward at its widest.
//!
//! The fused CPU graph (f32 on the CPU) needs less: its attention keeps no
//! `b·h·s·s` scores.

use crate::model::BertConfig;
use crate::numeric::{self, NumericError};
use serde::Serialize;

/// Where the bytes go, each in bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MemoryPlan {
    /// f32 master weights.
    pub parameters: u64,
    /// AdamW's two f32 moments per parameter.
    pub optimizer: u64,
    /// f32 gradients of the parameters, all alive when the backward pass ends.
    pub gradients: u64,
    /// The forward graph's tensors, by kind (the census's kinds), including
    /// autocast's weight copies.
    pub activations: Vec<(&'static str, u64)>,
    /// Dropout's masks, held by the graph beside the values they masked.
    pub dropout_masks: u64,
    /// The gradients of operands that need none, and what their ops hold,
    /// kept by candle until the backward pass returns (see above).
    pub retained_gradients: u64,
    /// The backward pass's temporaries at its widest: through a softmax's
    /// quotient, the incoming gradient, the numerator's, the divisor's three
    /// temporaries (chained by their recorded ops) and the zeros it is summed
    /// into, six `b·h·s·s` f32 tensors; or, if larger, the word embeddings'
    /// scattered gradient beside their sum, one more vocab × hidden f32.
    pub backward_workspace: u64,
    /// The CUDA context, cuBLAS and kernel modules: an estimate, 0 off CUDA.
    pub runtime: u64,
}

/// What the CUDA runtime itself takes (context, cuBLAS workspace, candle's
/// kernel modules), before any tensor: an estimate of 600 MiB.
pub const CUDA_RUNTIME_BYTES: u64 = 600 << 20;

impl MemoryPlan {
    pub fn activation_bytes(&self) -> u64 {
        self.activations.iter().map(|(_, b)| b).sum()
    }

    /// What one train step adds to memory already holding the weights and
    /// the optimizer: its peak less what lives before it.
    pub fn step_bytes(&self) -> u64 {
        self.step_terms().iter().map(|(_, b)| b).sum()
    }

    /// The step's bytes term by term, named: the gradients, each activation
    /// kind, the dropout masks, the retained gradients and the workspace.
    pub fn step_terms(&self) -> Vec<(&'static str, u64)> {
        let mut terms = vec![("gradients", self.gradients)];
        terms.extend(self.activations.iter().copied());
        terms.extend([
            ("dropout masks", self.dropout_masks),
            ("retained gradients", self.retained_gradients),
            ("backward workspace", self.backward_workspace),
        ]);
        terms
    }

    /// The peak: everything at once.
    pub fn total(&self) -> u64 {
        self.parameters + self.optimizer + self.runtime + self.step_bytes()
    }

    /// A measured step's bytes over the planned step's, the figure the
    /// planner's check holds to its band (`bench memory`,
    /// tests/serial/memory_plan.rs). An empty plan gives no finite ratio,
    /// and so an error rather than a figure a band could pass or fail.
    pub fn measured_over_planned(&self, measured: u64) -> Result<f64, NumericError> {
        numeric::ratio(
            "measured / planned step bytes",
            measured as f64,
            self.step_bytes() as f64,
        )
    }
}

/// The plan for training `model` on batches of `batch × seq` windows with
/// matrix products in `compute_bytes` (4 for f32, 2 for bf16/f16 autocast).
pub fn plan(
    model: &BertConfig,
    batch: usize,
    seq: usize,
    compute_bytes: u64,
    cuda: bool,
) -> MemoryPlan {
    let c = compute_bytes;
    let f = 4u64; // f32
    let half = u64::from(c != f);
    let (b, s) = (batch as u64, seq as u64);
    let (h, i) = (model.hidden_size as u64, model.intermediate_size as u64);
    let layers = model.num_hidden_layers as u64;
    let heads = model.num_attention_heads as u64;
    let t = b * s; // tokens
    let (th, ti) = (t * h, t * i);
    let scores = b * heads * s * s; // one attention-probabilities tensor
    let norms = 2 * layers + 1;
    let hidden_dropout = u64::from(model.hidden_dropout_prob > 0.0);
    let attention_dropout = u64::from(model.attention_probs_dropout_prob > 0.0);

    let linear_params = layers * (4 * h * h + 4 * h + 2 * h * i + i + h) + 2 * h + 2;
    let all_params = crate::model::expected_shapes(model)
        .iter()
        .map(|(_, shape)| shape.iter().product::<usize>() as u64)
        .sum::<u64>();
    let dropout = (hidden_dropout * norms * th + attention_dropout * layers * scores) * c;
    let activations = vec![
        // Each product's output and its bias add: q, k, v, attention output
        // and the feed-forward output (hidden wide), the intermediate (4×),
        // and the QA head's two logits.
        ("linear", (layers * (10 * th + 2 * ti) + 2 * 2 * t) * c),
        // q scaled, q and k copied into heads, the scores, the mask added.
        ("attention scores", layers * (3 * th + 2 * scores) * c),
        // v copied into heads, the context, copied back out of heads.
        ("attention context", layers * 3 * th * c),
        // In f32: max, shifted, exp, sum, quotient; with autocast the casts
        // in and out.
        (
            "softmax",
            layers * ((3 * scores + 2 * b * heads * s) * f + half * scores * (f + c)),
        ),
        ("dropout", dropout),
        ("gelu", layers * ti * c),
        // In f32: mean (sum, scale), centred, squared, variance (sum, scale,
        // + eps, sqrt), normalised, scaled, shifted; with autocast the casts
        // in (not after the embeddings, already f32) and out.
        (
            "layer_norm",
            norms * (5 * th + 6 * t) * f + half * (2 * layers * th * f + norms * th * c),
        ),
        ("residual add", layers * 2 * th * c),
        // Word rows, the [PAD] split (kept, detached, summed), token types,
        // their sum and the positions (one row per position).
        ("embeddings", (6 * th + s * h) * f),
        // The start and end logits cast back to f32.
        ("qa head", half * 2 * t * f),
        // Two log-softmaxes over the positions and their picks.
        ("loss", (6 * t + 8 * b + 6) * f),
        ("weight cast", half * linear_params * c),
    ];
    MemoryPlan {
        parameters: all_params * f,
        optimizer: 2 * all_params * f,
        gradients: all_params * f,
        activations,
        dropout_masks: dropout,
        // Each mask's four; one `b·h·s·s` sum per layer for the attention
        // mask (its zeros and sum record no op); the [PAD] split's four.
        retained_gradients: 4 * dropout + layers * scores * c + 4 * th * f,
        backward_workspace: (6 * scores * f).max(model.vocab_size as u64 * h * f),
        runtime: if cuda { CUDA_RUNTIME_BYTES } else { 0 },
    }
}

/// The plan for the lean step (`model::lean`), which trains f32 runs on
/// the CPU: its activations are the live bytes at the peak of the very op
/// sequence it runs, recorded without arithmetic (`lean::plan`), kind by
/// kind; its gradients one f32 arena. It keeps no dropout masks (each op
/// redraws its own from the counters) and no retained gradients; its
/// workspace is the attention's per-head scratch, on each of `threads`
/// threads: probabilities, dropped probabilities, their gradient (f32) and
/// the mask words (u32), each `s × s`.
pub fn plan_lean(
    model: &BertConfig,
    batch: usize,
    seq: usize,
    compute_bytes: u64,
    threads: usize,
) -> MemoryPlan {
    let f = 4u64;
    let all_params = crate::model::expected_shapes(model)
        .iter()
        .map(|(_, shape)| shape.iter().product::<usize>() as u64)
        .sum::<u64>();
    // The recorder does no arithmetic and cannot fail on a valid config; an
    // invalid one (no such parameter) plans no activations.
    let activations = crate::model::lean::plan::record(model, batch, seq, compute_bytes as usize)
        .map(|(_, recorded)| {
            recorded
                .peak_by_kind
                .iter()
                .map(|(kind, bytes)| (*kind, *bytes as u64))
                .collect()
        })
        .unwrap_or_default();
    let s = seq as u64;
    MemoryPlan {
        parameters: all_params * f,
        optimizer: 2 * all_params * f,
        gradients: all_params * f,
        activations,
        dropout_masks: 0,
        retained_gradients: 0,
        backward_workspace: threads as u64 * 4 * s * s * f,
        runtime: 0,
    }
}

/// Bytes as people read them: "3.42 GiB", "512 MiB".
pub fn show_bytes(bytes: u64) -> String {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.2} GiB")
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}
