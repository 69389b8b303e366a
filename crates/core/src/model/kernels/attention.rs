//! Multi-head self-attention, `softmax(q·kᵀ·scale + mask) · v` with dropout on
//! the probabilities, as one op per (window, head) task.
//!
//! It reads q, k and v in the linears' `[b, s, hidden]` layout through strided
//! views (no head split or merge copies), and keeps no `s × s` tensor: the
//! backward pass recomputes each head's probabilities and dropout mask from
//! q, k and the seed, as flash attention does, so the graph holds only q, k, v.

use super::math::{dot, exp};
use super::matmul::{gemm, View, ViewMut};
use super::multiversion;
use super::storage::{slice, with_values, SendPtr};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

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
    if k.dims() != q.dims() || v.dims() != q.dims() || heads == 0 || hidden % heads != 0 {
        bail!(
            "attention: q {:?}, k {:?}, v {:?} with {heads} heads do not fit",
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
    let additive: Vec<f32> = key_mask
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|keep| if keep > 0.0 { 0.0 } else { f32::MIN })
        .collect();
    let head_dim = hidden / heads;
    let op = Attention {
        heads,
        scale: 1.0 / (head_dim as f32).sqrt(),
        mask: Arc::new(additive),
        dropout: dropout.filter(|d| d.p > 0.0),
    };
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    if differentiable {
        q.apply_op3(&k, &v, op)
    } else {
        q.apply_op3_no_bwd(&k, &v, &op)
    }
}

struct Attention {
    heads: usize,
    scale: f32,
    /// Per key, `[b·s]`: 0 if attended, f32::MIN if padding.
    mask: Arc<Vec<f32>>,
    dropout: Option<AttentionDropout>,
}

/// Shapes of one call: windows, positions, hidden size, head size.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    s: usize,
    hidden: usize,
    d: usize,
}

impl Dims {
    /// The `s × d` view of head `h` of window `w` in a `[b, s, hidden]` buffer.
    fn head(&self, base: *const f32, task: usize, heads: usize) -> View {
        let (w, h) = (task / heads, task % heads);
        View {
            ptr: base.wrapping_add(w * self.s * self.hidden + h * self.d),
            rs: self.hidden as isize,
            cs: 1,
        }
    }

    fn head_mut(&self, base: SendPtr, task: usize, heads: usize) -> ViewMut {
        let v = self.head(base.0, task, heads);
        ViewMut {
            ptr: v.ptr as *mut f32,
            rs: v.rs,
            cs: v.cs,
        }
    }
}

/// Scratch for one task: probabilities, dropped probabilities, their gradient.
#[derive(Default)]
struct Scratch {
    probs: Vec<f32>,
    dropped: Vec<f32>,
    grad: Vec<f32>,
}

impl Attention {
    fn dims(&self, l: &Layout) -> Result<Dims> {
        let (b, s, hidden) = l.shape().dims3()?;
        Ok(Dims {
            b,
            s,
            hidden,
            d: hidden / self.heads,
        })
    }

    /// `scratch.probs` = softmax(q·kᵀ·scale + mask) for one head, and
    /// `scratch.dropped` the same after dropout (left empty without dropout).
    fn probabilities(&self, dims: Dims, q: &[f32], k: &[f32], task: usize, scratch: &mut Scratch) {
        let s = dims.s;
        scratch.probs.resize(s * s, 0.0);
        // SAFETY: the head views lie inside q and k; probs holds s × s.
        unsafe {
            gemm(
                s,
                s,
                dims.d,
                ViewMut::row_major(&mut scratch.probs, s),
                dims.head(q.as_ptr(), task, self.heads),
                dims.head(k.as_ptr(), task, self.heads).t(),
                false,
                self.scale,
                1,
            )
        };
        let window = task / self.heads;
        let mask = &self.mask[window * s..(window + 1) * s];
        softmax_rows(&mut scratch.probs, mask);
        if let Some(drop) = self.dropout {
            scratch.dropped.resize(s * s, 0.0);
            let threshold = (drop.p * (1u32 << 24) as f32) as u64;
            let keep_scale = 1.0 / (1.0 - drop.p);
            let first = (task * s * s) as u64;
            let seed = drop.seed;
            drop_probs(
                &mut scratch.dropped,
                &scratch.probs,
                seed,
                first,
                threshold,
                keep_scale,
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
        let dims = self.dims(ql)?;
        let (q, k, v) = (
            slice(qs, ql, "attention")?,
            slice(ks, kl, "attention")?,
            slice(vs, vl, "attention")?,
        );
        if self.mask.len() != dims.b * dims.s {
            bail!(
                "attention: mask of {} keys for {:?}",
                self.mask.len(),
                ql.dims()
            );
        }
        let mut out = vec![0f32; q.len()];
        let out_ptr = SendPtr(out.as_mut_ptr());
        (0..dims.b * self.heads).into_par_iter().for_each_init(
            Scratch::default,
            |scratch, task| {
                self.probabilities(dims, q, k, task, scratch);
                let p = if self.dropout.is_some() {
                    &scratch.dropped
                } else {
                    &scratch.probs
                };
                // SAFETY: each task writes its own head's columns of `out`.
                unsafe {
                    gemm(
                        dims.s,
                        dims.d,
                        dims.s,
                        dims.head_mut(out_ptr, task, self.heads),
                        View::row_major(p, dims.s),
                        dims.head(v.as_ptr(), task, self.heads),
                        false,
                        1.0,
                        1,
                    )
                };
            },
        );
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
        let (b, s, hidden) = q.dims3()?;
        let dims = Dims {
            b,
            s,
            hidden,
            d: hidden / self.heads,
        };
        let n = q.elem_count();
        let (mut dq, mut dk, mut dv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
        let ptrs = (
            SendPtr(dq.as_mut_ptr()),
            SendPtr(dk.as_mut_ptr()),
            SendPtr(dv.as_mut_ptr()),
        );
        with_values(q, "attention backward", |q| {
            with_values(k, "attention backward", |k| {
                with_values(v, "attention backward", |v| {
                    with_values(grad, "attention backward", |g| {
                        (0..b * self.heads).into_par_iter().for_each_init(
                            Scratch::default,
                            |scratch, task| {
                                self.head_backward(dims, (q, k, v, g), ptrs, task, scratch)
                            },
                        );
                        Ok(())
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

impl Attention {
    /// Gradients of one head: writes its columns of dq, dk and dv.
    fn head_backward(
        &self,
        dims: Dims,
        (q, k, v, g): (&[f32], &[f32], &[f32], &[f32]),
        (dq, dk, dv): (SendPtr, SendPtr, SendPtr),
        task: usize,
        scratch: &mut Scratch,
    ) {
        let (s, d, heads) = (dims.s, dims.d, self.heads);
        self.probabilities(dims, q, k, task, scratch);
        let Scratch {
            probs,
            dropped,
            grad,
        } = scratch;
        grad.resize(s * s, 0.0);
        let used = if self.dropout.is_some() {
            &*dropped
        } else {
            &*probs
        };
        let g_head = dims.head(g.as_ptr(), task, heads);
        // SAFETY: views lie inside their buffers; each task writes only its
        // own head's columns of dq, dk and dv.
        unsafe {
            // d(used probs) = g · vᵀ;  dv = usedᵀ · g
            gemm(
                s,
                s,
                d,
                ViewMut::row_major(grad, s),
                g_head,
                dims.head(v.as_ptr(), task, heads).t(),
                false,
                1.0,
                1,
            );
            gemm(
                s,
                d,
                s,
                dims.head_mut(dv, task, heads),
                View::row_major(used, s).t(),
                g_head,
                false,
                1.0,
                1,
            );
        }
        let keep_scale = self.dropout.map(|drop| 1.0 / (1.0 - drop.p));
        if let Some(keep_scale) = keep_scale {
            through_dropout(grad, dropped, keep_scale);
        }
        softmax_backward_rows(grad, probs, s);
        // SAFETY: as above.
        unsafe {
            // dq = ds · k · scale;  dk = dsᵀ · q · scale
            gemm(
                s,
                d,
                s,
                dims.head_mut(dq, task, heads),
                View::row_major(grad, s),
                dims.head(k.as_ptr(), task, heads),
                false,
                self.scale,
                1,
            );
            gemm(
                s,
                d,
                s,
                dims.head_mut(dk, task, heads),
                View::row_major(grad, s).t(),
                dims.head(q.as_ptr(), task, heads),
                false,
                self.scale,
                1,
            );
        }
    }
}

multiversion! {
    /// Each `mask.len()`-wide row of `scores` plus the mask, softmaxed in place.
    fn softmax_rows(scores: &mut [f32], mask: &[f32]) {
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
    fn softmax_backward_rows(grad: &mut [f32], probs: &[f32], s: usize) {
        for (gr, pr) in grad.chunks_exact_mut(s).zip(probs.chunks_exact(s)) {
            let r = dot(gr, pr);
            for (x, &p) in gr.iter_mut().zip(pr) {
                *x = p * (*x - r);
            }
        }
    }
}
