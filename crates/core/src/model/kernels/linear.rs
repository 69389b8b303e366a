//! `y = x·Wᵀ + b` as one op: the bias seeds the product's output instead of
//! taking its own pass, and the backward pass multiplies through transposed
//! views instead of transposed copies.

use super::matmul::{gemm, pool_threads, View, ViewMut};
use super::multiversion;
use super::storage::{slice, with_values};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `x [.., in] · weight [out, in]ᵀ + bias [out]`, differentiable in all three.
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(&weight.contiguous()?, &bias.contiguous()?, Linear)
}

struct Linear;

/// Rows of `x` and the weight's (out, in), checked against each other.
fn dims(x: &Layout, w: &Layout, b: &Layout) -> Result<(usize, usize, usize)> {
    let (out, inp) = w.shape().dims2()?;
    let x_in = *x.dims().last().unwrap_or(&0);
    if x_in != inp || b.shape().elem_count() != out {
        bail!(
            "linear: input {:?}, weight {:?} and bias {:?} do not fit",
            x.dims(),
            w.dims(),
            b.dims()
        );
    }
    Ok((x.shape().elem_count() / inp.max(1), out, inp))
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, out, inp) = dims(xl, wl, bl)?;
        let (x, w, b) = (
            slice(xs, xl, "linear")?,
            slice(ws, wl, "linear")?,
            slice(bs, bl, "linear")?,
        );
        // The bias rows seed the output (no zero fill first); the product adds on.
        let mut y = Vec::with_capacity(rows * out);
        for _ in 0..rows {
            y.extend_from_slice(b);
        }
        // SAFETY: the views cover exactly the slices above.
        unsafe {
            gemm(
                rows,
                out,
                inp,
                ViewMut::row_major(&mut y, out),
                View::row_major(x, inp),
                View::row_major(w, inp).t(),
                true,
                1.0,
                pool_threads(),
            )
        };
        let mut shape = xl.dims().to_vec();
        *shape.last_mut().expect("checked rank") = out;
        Ok((CpuStorage::F32(y), Shape::from(shape)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (out, inp) = w.dims2()?;
        let rows = x.elem_count() / inp.max(1);
        let dev = x.device();
        let (dx, dw, db) = with_values(grad, "linear backward", |g| {
            with_values(x, "linear backward", |xv| {
                with_values(w, "linear backward", |wv| {
                    let mut dx = vec![0f32; rows * inp];
                    let mut dw = vec![0f32; out * inp];
                    // SAFETY: the views cover exactly the slices above.
                    unsafe {
                        gemm(
                            rows,
                            inp,
                            out,
                            ViewMut::row_major(&mut dx, inp),
                            View::row_major(g, out),
                            View::row_major(wv, inp),
                            false,
                            1.0,
                            pool_threads(),
                        );
                        gemm(
                            out,
                            inp,
                            rows,
                            ViewMut::row_major(&mut dw, inp),
                            View::row_major(g, out).t(),
                            View::row_major(xv, inp),
                            false,
                            1.0,
                            pool_threads(),
                        );
                    }
                    Ok((dx, dw, column_sums(g, out)))
                })
            })
        })?;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, (out, inp), dev)?),
            Some(Tensor::from_vec(db, out, dev)?),
        ))
    }
}

/// Σ over rows of a row-major `[rows, cols]` matrix: fixed blocks of rows
/// summed in parallel, then the blocks in order, so any thread count agrees.
pub fn column_sums(m: &[f32], cols: usize) -> Vec<f32> {
    const BLOCK_ROWS: usize = 256;
    let partials: Vec<Vec<f32>> = m
        .par_chunks(cols * BLOCK_ROWS)
        .map(|block| {
            let mut acc = vec![0f32; cols];
            add_rows(&mut acc, block);
            acc
        })
        .collect();
    let mut total = vec![0f32; cols];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

multiversion! {
    /// Adds each `acc.len()`-wide row of `block` into `acc`.
    fn add_rows(acc: &mut [f32], block: &[f32]) {
        for row in block.chunks_exact(acc.len()) {
            for (a, v) in acc.iter_mut().zip(row) {
                *a += v;
            }
        }
    }
}
