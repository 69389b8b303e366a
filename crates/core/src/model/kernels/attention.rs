//! Multi-head self-attention, `softmax(q·kᵀ·scale + mask) · v` with dropout on
//! the probabilities, as one op per (window, head) task.
//!
//! It reads q, k and v in the linears' `[b, s, hidden]` layout through strided
//! views (no head split or merge copies), and keeps no `s × s` tensor: the
//! backward pass recomputes each head's probabilities and dropout mask from
//! q, k and the seed, as flash attention does, so the graph holds only q, k, v.

use super::masks::dropout_in_place;
use super::math::{dot, exp};
use super::matmul::{gemm, View, ViewMut};
use super::multiversion;
use super::storage::{slice, with_values, SendPtr};
use crate::rng::philox::Dropout;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Dropout on the attention probabilities: drop with probability `p`; the
/// mask is a hash of `seed` and each element's index, so the backward pass
/// draws it again exactly.
#[derive(Clone, Copy, Debug)]
pub struct AttentionDropout {
    pub p: f32,
    pub seed: u64,
}

/// Context `[b, s, hidden]` for q, k, v `[b, s, hidden]` and a `[b, s]` mask
/// of kept (1) and padded (0) keys; `heads` divides `hidden`.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    key_mask: &Tensor,
    heads: usize,
    dropout: Option<AttentionDropout>,
    differentiable: bool,
) -> Result<Tensor> {
    let (b, s, hidden) = q.dims3()?;
    if k.dims() != q.dims() || v.dims() != q.dims() {
        bail!(
            "attention: q {:?}, k {:?}, v {:?} do not fit",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    if key_mask.dims() != [b, s] {
        bail!(
            "attention: mask {:?} does not fit q {:?}",
            key_mask.dims(),
            q.dims()
        );
    }
    let keep: Vec<f32> = key_mask
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let op = Attention(Heads::new(
        (b, s, hidden, heads),
        keep.iter().map(|&k| k > 0.0),
        dropout.filter(|d| d.p > 0.0).map(Masks::Hash),
    )?);
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    if differentiable {
        q.apply_op3(&k, &v, op)
    } else {
        q.apply_op3_no_bwd(&k, &v, &op)
    }
}

/// How one call's probabilities are dropped.
#[derive(Clone, Copy, Debug)]
pub enum Masks {
    /// The autograd graph's: a SplitMix64 hash of the seed and the
    /// element's index, the top 24 bits against p·2²⁴.
    Hash(AttentionDropout),
    /// The lean step's Philox words (`rng::philox`).
    Philox(Dropout),
}

impl Masks {
    fn p(&self) -> f32 {
        match self {
            Masks::Hash(d) => d.p,
            Masks::Philox(d) => d.p,
        }
    }
}

/// One attention call's (window, head) tasks: shapes, scale, key mask and
/// dropout. Both the candle op and the lean step's attention run these.
pub struct Heads {
    b: usize,
    s: usize,
    hidden: usize,
    heads: usize,
    d: usize,
    scale: f32,
    /// Per key, `[b·s]`: 0 if attended, f32::MIN if padding.
    mask: Vec<f32>,
    dropout: Option<Masks>,
}

/// Scratch for one task: probabilities, dropped probabilities, their
/// gradient, and mask words.
#[derive(Default)]
struct Scratch {
    probs: Vec<f32>,
    dropped: Vec<f32>,
    grad: Vec<f32>,
    words: Vec<u32>,
}

impl Heads {
    /// For `(b, s, hidden, heads)` and each key's kept flag (`b·s` of them).
    pub fn new(
        (b, s, hidden, heads): (usize, usize, usize, usize),
        keep: impl Iterator<Item = bool>,
        dropout: Option<Masks>,
    ) -> Result<Self> {
        if heads == 0 || !hidden.is_multiple_of(heads) {
            bail!("attention: {heads} heads do not divide hidden size {hidden}");
        }
        let mask: Vec<f32> = keep.map(|k| if k { 0.0 } else { f32::MIN }).collect();
        if mask.len() != b * s {
            bail!(
                "attention: a mask of {} keys for {b} x {s} windows",
                mask.len()
            );
        }
        let d = hidden / heads;
        Ok(Self {
            b,
            s,
            hidden,
            heads,
            d,
            scale: 1.0 / (d as f32).sqrt(),
            mask,
            dropout,
        })
    }

    /// Values in one `[b, s, hidden]` operand.
    pub fn elems(&self) -> usize {
        self.b * self.s * self.hidden
    }

    fn check(&self, what: &str, len: usize) -> Result<()> {
        if len < self.elems() {
            bail!(
                "attention: {what} holds {len} values, {} x {} x {} needs {}",
                self.b,
                self.s,
                self.hidden,
                self.elems()
            );
        }
        Ok(())
    }

    /// The `s × d` view of head `h` of window `w` in a `[b, s, hidden]` buffer.
    fn head(&self, base: *const f32, task: usize) -> View {
        let (w, h) = (task / self.heads, task % self.heads);
        View {
            ptr: base.wrapping_add(w * self.s * self.hidden + h * self.d),
            rs: self.hidden as isize,
            cs: 1,
        }
    }

    fn head_mut(&self, base: SendPtr, task: usize) -> ViewMut {
        let v = self.head(base.0, task);
        ViewMut {
            ptr: v.ptr as *mut f32,
            rs: v.rs,
            cs: v.cs,
        }
    }

    /// The context into `out`, head by head.
    pub fn forward(&self, q: &[f32], k: &[f32], v: &[f32], out: &mut [f32]) -> Result<()> {
        for (what, t) in [("q", q), ("k", k), ("v", v), ("the context", &*out)] {
            self.check(what, t.len())?;
        }
        let out = SendPtr(out.as_mut_ptr());
        (0..self.b * self.heads).into_par_iter().for_each_init(
            Scratch::default,
            |scratch, task| {
                self.probabilities(q, k, task, scratch);
                let p = if self.dropout.is_some() {
                    &scratch.dropped
                } else {
                    &scratch.probs
                };
                // SAFETY: each task writes its own head's columns of `out`,
                // which holds b·s·hidden values (checked above).
                unsafe {
                    gemm(
                        self.s,
                        self.d,
                        self.s,
                        self.head_mut(out, task),
                        View::row_major(p, self.s),
                        self.head(v.as_ptr(), task),
                        false,
                        1.0,
                        1,
                    )
                };
            },
        );
        Ok(())
    }

    /// dq, dk and dv for the context's gradient `g`, head by head.
    pub fn backward(
        &self,
        (q, k, v, g): (&[f32], &[f32], &[f32], &[f32]),
        (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
    ) -> Result<()> {
        for (what, t) in [("q", q), ("k", k), ("v", v), ("the gradient", g)] {
            self.check(what, t.len())?;
        }
        for (what, t) in [("dq", &*dq), ("dk", &*dk), ("dv", &*dv)] {
            self.check(what, t.len())?;
        }
        let ptrs = (
            SendPtr(dq.as_mut_ptr()),
            SendPtr(dk.as_mut_ptr()),
            SendPtr(dv.as_mut_ptr()),
        );
        (0..self.b * self.heads)
            .into_par_iter()
            .for_each_init(Scratch::default, |scratch, task| {
                self.head_backward((q, k, v, g), ptrs, task, scratch)
            });
        Ok(())
    }

    /// `scratch.probs` = softmax(q·kᵀ·scale + mask) for one head, and
    /// `scratch.dropped` the same after dropout (left empty without dropout).
    fn probabilities(&self, q: &[f32], k: &[f32], task: usize, scratch: &mut Scratch) {
        let s = self.s;
        scratch.probs.resize(s * s, 0.0);
        // SAFETY: the head views lie inside q and k (checked by the caller);
        // probs holds s × s.
        unsafe {
            gemm(
                s,
                s,
                self.d,
                ViewMut::row_major(&mut scratch.probs, s),
                self.head(q.as_ptr(), task),
                self.head(k.as_ptr(), task).t(),
                false,
                self.scale,
                1,
            )
        };
        let window = task / self.heads;
        softmax_rows(&mut scratch.probs, &self.mask[window * s..(window + 1) * s]);
        let first = (task * s * s) as u64;
        match self.dropout {
            None => {}
            Some(Masks::Hash(drop)) => {
                scratch.dropped.resize(s * s, 0.0);
                let threshold = (drop.p * (1u32 << 24) as f32) as u64;
                let keep_scale = 1.0 / (1.0 - drop.p);
                drop_probs(
                    &mut scratch.dropped,
                    &scratch.probs,
                    drop.seed,
                    first,
                    threshold,
                    keep_scale,
                );
            }
            Some(Masks::Philox(drop)) => {
                scratch.dropped.clear();
                scratch.dropped.extend_from_slice(&scratch.probs);
                scratch.words.resize(s * s, 0);
                dropout_in_place(&mut scratch.dropped, drop, first, &mut scratch.words);
            }
        }
    }

    /// Gradients of one head: writes its columns of dq, dk and dv.
    fn head_backward(
        &self,
        (q, k, v, g): (&[f32], &[f32], &[f32], &[f32]),
        (dq, dk, dv): (SendPtr, SendPtr, SendPtr),
        task: usize,
        scratch: &mut Scratch,
    ) {
        let (s, d) = (self.s, self.d);
        self.probabilities(q, k, task, scratch);
        let Scratch {
            probs,
            dropped,
            grad,
            ..
        } = scratch;
        grad.resize(s * s, 0.0);
        let used = if self.dropout.is_some() {
            &*dropped
        } else {
            &*probs
        };
        let g_head = self.head(g.as_ptr(), task);
        // SAFETY: views lie inside their buffers (checked by `backward`);
        // each task writes only its own head's columns of dq, dk and dv.
        unsafe {
            // d(used probs) = g · vᵀ;  dv = usedᵀ · g
            gemm(
                s,
                s,
                d,
                ViewMut::row_major(grad, s),
                g_head,
                self.head(v.as_ptr(), task).t(),
                false,
                1.0,
                1,
            );
            gemm(
                s,
                d,
                s,
                self.head_mut(dv, task),
                View::row_major(used, s).t(),
                g_head,
                false,
                1.0,
                1,
            );
        }
        if let Some(drop) = self.dropout {
            through_dropout(grad, dropped, 1.0 / (1.0 - drop.p()));
        }
        softmax_backward_rows(grad, probs, s);
        // SAFETY: as above.
        unsafe {
            // dq = ds · k · scale;  dk = dsᵀ · q · scale
            gemm(
                s,
                d,
                s,
                self.head_mut(dq, task),
                View::row_major(grad, s),
                self.head(k.as_ptr(), task),
                false,
                self.scale,
                1,
            );
            gemm(
                s,
                d,
                s,
                self.head_mut(dk, task),
                View::row_major(grad, s).t(),
                self.head(q.as_ptr(), task),
                false,
                self.scale,
                1,
            );
        }
    }
}

/// SplitMix64's output for element `index` of the stream `seed`.
#[inline(always)]
fn mix(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The candle op over `Heads`, with its hand-written backward pass.
struct Attention(Heads);

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (q, k, v) = (
            slice(qs, ql, "attention")?,
            slice(ks, kl, "attention")?,
            slice(vs, vl, "attention")?,
        );
        let mut out = vec![0f32; q.len()];
        self.0.forward(q, k, v, &mut out)?;
        Ok((CpuStorage::F32(out), ql.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = q.elem_count();
        let (mut dq, mut dk, mut dv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        with_values(q, "attention backward", |qv| {
            with_values(k, "attention backward", |kv| {
                with_values(v, "attention backward", |vv| {
                    with_values(grad, "attention backward", |g| {
                        self.0
                            .backward((qv, kv, vv, g), (&mut dq, &mut dk, &mut dv))
                    })
                })
            })
        })?;
        let dev = q.device();
        Ok((
            Some(Tensor::from_vec(dq, q.shape(), dev)?),
            Some(Tensor::from_vec(dk, q.shape(), dev)?),
            Some(Tensor::from_vec(dv, q.shape(), dev)?),
        ))
    }
}

multiversion! {
    /// Each `mask.len()`-wide row of `scores` plus the mask, softmaxed in place.
    pub(crate) fn softmax_rows(scores: &mut [f32], mask: &[f32]) {
        const L: usize = 16;
        for row in scores.chunks_exact_mut(mask.len()) {
            // One pass adds the mask and finds the maximum, one exponentiates
            // and sums, one normalises; blocked in 16 lanes to vectorise.
            let mut top = [f32::NEG_INFINITY; L];
            let mut chunks = row.chunks_exact_mut(L);
            let mut masks = mask.chunks_exact(L);
            for (c, m) in (&mut chunks).zip(&mut masks) {
                for j in 0..L {
                    c[j] += m[j];
                    top[j] = if c[j] > top[j] { c[j] } else { top[j] };
                }
            }
            let mut top = top.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            for (x, m) in chunks.into_remainder().iter_mut().zip(masks.remainder()) {
                *x += m;
                top = top.max(*x);
            }
            let mut total = [0f32; L];
            let mut chunks = row.chunks_exact_mut(L);
            for c in &mut chunks {
                for j in 0..L {
                    c[j] = exp(c[j] - top);
                    total[j] += c[j];
                }
            }
            let mut total: f32 = total.iter().sum();
            for x in chunks.into_remainder() {
                *x = exp(*x - top);
                total += *x;
            }
            let inv = 1.0 / total;
            for x in row.iter_mut() {
                *x *= inv;
            }
        }
    }
}

multiversion! {
    /// `probs` after dropout into `dropped`: element i is kept when the hash of
    /// (seed, first + i) clears `threshold` (p·2²⁴), and scaled by 1/(1−p).
    fn drop_probs(dropped: &mut [f32], probs: &[f32], seed: u64, first: u64, threshold: u64, keep_scale: f32) {
        for (i, (out, &p)) in dropped.iter_mut().zip(probs).enumerate() {
            let kept = (mix(seed, first + i as u64) >> 40) >= threshold;
            *out = if kept { p * keep_scale } else { 0.0 };
        }
    }
}

multiversion! {
    /// The gradient through dropout: kept where `dropped` is nonzero, scaled.
    fn through_dropout(grad: &mut [f32], dropped: &[f32], keep_scale: f32) {
        for (g, d) in grad.iter_mut().zip(dropped) {
            *g = if *d != 0.0 { *g * keep_scale } else { 0.0 };
        }
    }
}

multiversion! {
    /// The gradient through the softmax, row by row: ds = p ⊙ (dp − Σ dp ⊙ p).
    pub(crate) fn softmax_backward_rows(grad: &mut [f32], probs: &[f32], s: usize) {
        for (gr, pr) in grad.chunks_exact_mut(s).zip(probs.chunks_exact(s)) {
            let r = dot(gr, pr);
            for (x, &p) in gr.iter_mut().zip(pr) {
                *x = p * (*x - r);
            }
        }
    }
}
