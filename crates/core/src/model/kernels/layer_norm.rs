//! LayerNorm over the last dimension in one pass per row, forward and
//! backward; the backward pass recomputes each row's mean and deviation
//! rather than keeping them.

use super::math::{dot, sum};
use super::multiversion;
use super::storage::{slice, with_values};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Rows handled per task, a fixed split so the weight gradients sum in the
/// same order whatever the thread count.
const BLOCK_ROWS: usize = 64;

/// `(x − mean) / √(var + eps) · weight + bias` over the last dimension.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps: eps as f32 },
    )
}

struct LayerNorm {
    eps: f32,
}

/// The row's mean and 1/√(var + eps).
#[inline(always)]
pub(crate) fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let mut acc = [0f32; 16];
    let chunks = row.chunks_exact(16);
    let mut tail = 0f32;
    for v in chunks.remainder() {
        tail += (v - mean) * (v - mean);
    }
    for c in chunks {
        for j in 0..16 {
            acc[j] += (c[j] - mean) * (c[j] - mean);
        }
    }
    let var = (acc.iter().sum::<f32>() + tail) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
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
        let (x, w, b) = (
            slice(xs, xl, "layer_norm")?,
            slice(ws, wl, "layer_norm")?,
            slice(bs, bl, "layer_norm")?,
        );
        let h = w.len();
        if h == 0 || b.len() != h || xl.dims().last() != Some(&h) {
            bail!(
                "layer_norm: input {:?} does not fit weight {:?} and bias {:?}",
                xl.dims(),
                wl.dims(),
                bl.dims()
            );
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(h * BLOCK_ROWS)
            .zip(x.par_chunks(h * BLOCK_ROWS))
            .for_each(|(ys, xs)| forward_rows(ys, xs, w, b, self.eps));
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let h = w.elem_count();
        let dev = x.device();
        let (dx, dw, db) = with_values(x, "layer_norm backward", |xv| {
            with_values(w, "layer_norm backward", |wv| {
                with_values(grad, "layer_norm backward", |g| {
                    Ok(self.backward(xv, wv, g, h))
                })
            })
        })?;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, w.shape(), dev)?),
            Some(Tensor::from_vec(db, w.shape(), dev)?),
        ))
    }
}

impl LayerNorm {
    /// (dx, dweight, dbias) for input `x`, weight `w` and output gradient `g`.
    fn backward(
        &self,
        x: &[f32],
        w: &[f32],
        g: &[f32],
        h: usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut dx = vec![0f32; x.len()];
        let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
            .par_chunks_mut(h * BLOCK_ROWS)
            .zip(x.par_chunks(h * BLOCK_ROWS))
            .zip(g.par_chunks(h * BLOCK_ROWS))
            .map(|((dxs, xs), gs)| {
                let mut dw = vec![0f32; h];
                let mut db = vec![0f32; h];
                backward_rows(dxs, xs, gs, w, self.eps, &mut dw, &mut db);
                (dw, db)
            })
            .collect();
        let mut dw = vec![0f32; h];
        let mut db = vec![0f32; h];
        for (pw, pb) in partials {
            for i in 0..h {
                dw[i] += pw[i];
                db[i] += pb[i];
            }
        }
        (dx, dw, db)
    }
}

multiversion! {
    /// LayerNorm of each `w.len()`-wide row of `xs` into `ys`.
    fn forward_rows(ys: &mut [f32], xs: &[f32], w: &[f32], b: &[f32], eps: f32) {
        let h = w.len();
        for (yr, xr) in ys.chunks_exact_mut(h).zip(xs.chunks_exact(h)) {
            let (mean, rstd) = moments(xr, eps);
            for i in 0..h {
                yr[i] = (xr[i] - mean) * rstd * w[i] + b[i];
            }
        }
    }
}

multiversion! {
    /// Input gradients of these rows into `dxs`; weight and bias gradients added into `dw`, `db`.
    fn backward_rows(
        dxs: &mut [f32],
        xs: &[f32],
        gs: &[f32],
        w: &[f32],
        eps: f32,
        dw: &mut [f32],
        db: &mut [f32],
    ) {
        let h = w.len();
        let mut gw = vec![0f32; h];
        let mut xhat = vec![0f32; h];
        let rows = dxs.chunks_exact_mut(h).zip(xs.chunks_exact(h)).zip(gs.chunks_exact(h));
        for ((dxr, xr), gr) in rows {
            let stats = moments(xr, eps);
            row_backward(dxr, xr, gr, w, stats, (&mut *dw, &mut *db), (&mut gw, &mut xhat));
        }
    }
}

/// One row's input gradient into `dx` from its mean and 1/σ; its weight and
/// bias gradients added into `grads`. Inlined into its callers' AVX-512 and
/// AVX2 bodies (the lean step's LayerNorm backward is one).
#[inline(always)]
pub(crate) fn row_backward(
    dx: &mut [f32],
    x: &[f32],
    g: &[f32],
    w: &[f32],
    (mean, rstd): (f32, f32),
    (dw, db): (&mut [f32], &mut [f32]),
    (gw, xhat): (&mut [f32], &mut [f32]),
) {
    let h = w.len();
    for i in 0..h {
        xhat[i] = (x[i] - mean) * rstd;
        gw[i] = g[i] * w[i];
        dw[i] += g[i] * xhat[i];
        db[i] += g[i];
    }
    let n = h as f32;
    let mean_gw = sum(gw) / n;
    let mean_gw_xhat = dot(gw, xhat) / n;
    for i in 0..h {
        dx[i] = rstd * (gw[i] - mean_gw - xhat[i] * mean_gw_xhat);
    }
}
