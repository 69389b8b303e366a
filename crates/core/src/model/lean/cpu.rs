//! The lean step's ops on the CPU, f32, with the fused kernels' arithmetic
//! (`model::kernels`). Attention's three forward launches run together head
//! by head, and its backward recomputes each head's probabilities, so no
//! `s × s` matrix outlives its head (it stays in L2); the op boundaries
//! between the heads' tasks are the ones a GPU runs.

use super::fallback;
use super::ops::{
    Activation, Attention, AttentionBackward, Buf, Dropout, EmbedPads, Gemm, Norm, NormBackward,
    Ops, Prec, StepInput,
};
use crate::model::fused::{Kernel, KernelSet};
use crate::model::kernels::attention::{Heads, Masks};
use crate::model::kernels::gelu;
use crate::model::kernels::layer_norm::{moments, row_backward};
use crate::model::kernels::linear::column_sums;
pub use crate::model::kernels::masks::dropout_in_place;
use crate::model::kernels::math::exp;
use crate::model::kernels::matmul::{gemm, pool_threads, View, ViewMut};
use crate::model::kernels::multiversion;
use anyhow::{anyhow, bail, Result};
use rayon::prelude::*;

/// Rows per LayerNorm task: a fixed split, so the weight gradients sum in
/// the same order whatever the thread count.
const BLOCK_ROWS: usize = 64;
const CHUNK: usize = 1 << 14;

/// The CPU backend over borrowed parameter values and a gradient arena.
pub struct Cpu<'a> {
    params: Vec<&'a [f32]>,
    grads: Vec<&'a mut [f32]>,
    acts: Vec<Option<Vec<f32>>>,
    /// Each micro-batch's loss, in order.
    pub losses: Vec<f32>,
    /// The kernels that run fused; the others go through candle's generic
    /// ops (`fallback`).
    fused: KernelSet,
}

impl<'a> Cpu<'a> {
    pub fn new(params: Vec<&'a [f32]>, grads: Vec<&'a mut [f32]>) -> Self {
        Self {
            params,
            grads,
            acts: Vec::new(),
            losses: Vec::new(),
            fused: KernelSet::all(),
        }
    }

    /// The same backend with only `fused` running fused.
    pub fn with_kernels(mut self, fused: KernelSet) -> Self {
        self.fused = fused;
        self
    }

    /// Puts host values in as an activation (the self-check's inputs).
    pub fn put(&mut self, values: Vec<f32>) -> Buf {
        self.acts.push(Some(values));
        Buf::Act((self.acts.len() - 1) as u32)
    }

    /// Takes an activation's values out.
    pub fn take(&mut self, buf: Buf) -> Result<Vec<f32>> {
        match buf {
            Buf::Act(i) => self
                .acts
                .get_mut(i as usize)
                .and_then(Option::take)
                .ok_or_else(|| anyhow!("lean step: activation {i} was freed or never made")),
            other => bail!("lean step: {other:?} is not an activation"),
        }
    }

    fn raw(&mut self, b: Buf) -> Result<(*mut f32, usize)> {
        Ok(match b {
            Buf::Act(i) => {
                let v = self
                    .acts
                    .get_mut(i as usize)
                    .and_then(Option::as_mut)
                    .ok_or_else(|| anyhow!("lean step: activation {i} was freed or never made"))?;
                (v.as_mut_ptr(), v.len())
            }
            Buf::Param(i) => {
                let p = self.params[i as usize];
                (p.as_ptr() as *mut f32, p.len())
            }
            Buf::Grad(i) => {
                let g = &mut self.grads[i as usize];
                (g.as_mut_ptr(), g.len())
            }
        })
    }

    /// The slices an op reads and writes. Writes never alias each other or a
    /// read, and never touch a parameter (checked).
    #[allow(clippy::type_complexity)]
    fn io(&mut self, reads: &[Buf], writes: &[Buf]) -> Result<(Vec<&[f32]>, Vec<&mut [f32]>)> {
        for (i, w) in writes.iter().enumerate() {
            if matches!(w, Buf::Param(_)) || reads.contains(w) || writes[..i].contains(w) {
                bail!("lean step: {w:?} is written while another operand uses it");
            }
        }
        let mut r = Vec::with_capacity(reads.len());
        for &b in reads {
            let (ptr, len) = self.raw(b)?;
            // SAFETY: `raw` points into a live buffer of `len` elements that
            // nothing writes during this op (the check above).
            r.push(unsafe { std::slice::from_raw_parts(ptr as *const f32, len) });
        }
        let mut w = Vec::with_capacity(writes.len());
        for &b in writes {
            let (ptr, len) = self.raw(b)?;
            // SAFETY: as above; each written buffer is distinct from every
            // other operand, so this is its only reference.
            w.push(unsafe { std::slice::from_raw_parts_mut(ptr, len) });
        }
        Ok((r, w))
    }
}

fn need(what: &str, have: usize, want: usize) -> Result<()> {
    if have < want {
        bail!("lean step: {what} holds {have} values, the op needs {want}");
    }
    Ok(())
}

impl Ops for Cpu<'_> {
    fn alloc(&mut self, _what: &'static str, elems: usize, _prec: Prec) -> Result<Buf> {
        self.acts.push(Some(vec![0f32; elems]));
        Ok(Buf::Act((self.acts.len() - 1) as u32))
    }

    fn free(&mut self, buf: Buf) {
        if let Buf::Act(i) = buf {
            if let Some(slot) = self.acts.get_mut(i as usize) {
                *slot = None;
            }
        }
    }

    fn zero_grads(&mut self) -> Result<()> {
        for g in &mut self.grads {
            g.fill(0.0);
        }
        Ok(())
    }

    fn gemm(&mut self, g: &Gemm) -> Result<()> {
        let mut reads = vec![g.a, g.b];
        reads.extend(g.bias);
        let fused = self.fused;
        let (r, mut w) = self.io(&reads, &[g.c])?;
        let c = &mut *w[0];
        need("a GEMM's left operand", r[0].len(), g.m * g.k)?;
        need("a GEMM's right operand", r[1].len(), g.k * g.n)?;
        need("a GEMM's output", c.len(), g.m * g.n)?;
        let c = &mut c[..g.m * g.n];
        let bias_fused = fused.has(Kernel::Bias);
        if let Some(bias) = r.get(2).filter(|_| bias_fused) {
            need("a GEMM's bias", bias.len(), g.n)?;
            for row in c.chunks_exact_mut(g.n) {
                if g.accumulate {
                    row.iter_mut().zip(*bias).for_each(|(c, b)| *c += b);
                } else {
                    row.copy_from_slice(&bias[..g.n]);
                }
            }
        }
        let lhs = if g.a_t {
            View::row_major(r[0], g.m).t()
        } else {
            View::row_major(r[0], g.k)
        };
        let rhs = if g.b_t {
            View::row_major(r[1], g.k).t()
        } else {
            View::row_major(r[1], g.n)
        };
        // SAFETY: the views cover the lengths checked above; `c` is written
        // by this call alone (`io`).
        unsafe {
            gemm(
                g.m,
                g.n,
                g.k,
                ViewMut::row_major(c, g.n),
                lhs,
                rhs,
                g.accumulate || (g.bias.is_some() && bias_fused),
                g.scale,
                pool_threads(),
            )
        };
        match r.get(2) {
            Some(bias) if !bias_fused => fallback::add_bias(c, bias, g.n)?,
            Some(_) => Kernel::Bias.sabotage(c),
            None => {}
        }
        Ok(())
    }

    fn embed(&mut self, input: &StepInput, tables: [Buf; 3], out: Buf) -> Result<()> {
        let fused = self.fused;
        let (r, mut w) = self.io(&tables, &[out])?;
        if !fused.has(Kernel::Embedding) {
            return fallback::embed(input, [r[0], r[1], r[2]], w[0]);
        }
        let (word, position, token_type) = (r[0], r[1], r[2]);
        let h = w[0].len() / (input.b * input.s).max(1);
        for (n, row) in w[0].chunks_exact_mut(h).enumerate() {
            let id = input.input_ids[n] as usize;
            let ty = input.token_type_ids[n] as usize;
            let pos = input.position(n);
            let (wr, tr, pr) = (
                table_row(word, id, h, "input_ids", "word_embeddings")?,
                table_row(token_type, ty, h, "token_type_ids", "token_type_embeddings")?,
                table_row(position, pos, h, "positions", "position_embeddings")?,
            );
            for i in 0..h {
                row[i] = (wr[i] + tr[i]) + pr[i];
            }
        }
        Kernel::Embedding.sabotage(w[0]);
        Ok(())
    }

    fn embed_backward(
        &mut self,
        input: &StepInput,
        d_out: Buf,
        grads: [Buf; 3],
        pads: EmbedPads,
    ) -> Result<()> {
        let fused = self.fused;
        let (r, mut w) = self.io(&[d_out], &grads)?;
        if !fused.has(Kernel::Embedding) {
            let [word, position, token_type] = &mut w[..] else {
                bail!("lean step: three embedding tables")
            };
            return fallback::embed_backward(input, r[0], [word, position, token_type], pads);
        }
        let d = r[0];
        let h = d.len() / (input.b * input.s).max(1);
        let [word, position, token_type] = &mut w[..] else {
            bail!("lean step: three embedding tables")
        };
        for (n, row) in d.chunks_exact(h).enumerate() {
            let id = input.input_ids[n];
            let pos = input.position(n);
            let targets: [(&mut [f32], usize, bool); 3] = [
                (word, id as usize, id != pads.word),
                (token_type, input.token_type_ids[n] as usize, true),
                (position, pos, pads.position != Some(pos as u32)),
            ];
            for (table, at, add) in targets {
                if add {
                    add_into(&mut table[at * h..(at + 1) * h], row);
                }
            }
        }
        Kernel::Embedding.sabotage(position);
        Ok(())
    }

    fn norm(&mut self, n: &Norm) -> Result<()> {
        let mut reads = vec![n.a, n.weight, n.bias];
        let mut writes = vec![n.y, n.stats];
        if let Some((res, r)) = n.residual {
            reads.push(res);
            writes.push(r);
        }
        let fused = self.fused;
        let (r, w) = self.io(&reads, &writes)?;
        let (a, weight, bias) = (r[0], r[1], r[2]);
        let residual = r.get(3).copied();
        let mut w = w.into_iter();
        let (y, stats) = (w.next().expect("y"), w.next().expect("stats"));
        let sum_out = w.next();
        if !fused.has(Kernel::LayerNorm) {
            return fallback::norm(n, [a, weight, bias], residual, y, stats, sum_out);
        }
        let width = n.width;
        need("a LayerNorm's input", a.len(), n.rows * width)?;
        let blocks = n.rows.div_ceil(BLOCK_ROWS);
        let mut sums: Vec<Option<&mut [f32]>> = match sum_out {
            Some(s) => s.chunks_mut(BLOCK_ROWS * width).map(Some).collect(),
            None => (0..blocks).map(|_| None).collect(),
        };
        sums.resize_with(blocks, || None);
        y.par_chunks_mut(BLOCK_ROWS * width)
            .zip(stats.par_chunks_mut(BLOCK_ROWS * 2))
            .zip(sums.into_par_iter())
            .enumerate()
            .for_each(|(block, ((y, stats), sum_out))| {
                let first = block * BLOCK_ROWS;
                let span = first * width..first * width + y.len();
                let mut words = vec![0u32; width];
                let r: &[f32] = match (residual, sum_out) {
                    (Some(res), Some(out)) => {
                        for (i, row) in out.chunks_exact_mut(width).enumerate() {
                            let at = (first + i) * width;
                            dropped_sum(
                                row,
                                &a[at..at + width],
                                &res[at..at + width],
                                n.input_dropout,
                                at as u64,
                                &mut words,
                            );
                        }
                        out
                    }
                    _ => &a[span],
                };
                for (i, ((yr, xr), st)) in y
                    .chunks_exact_mut(width)
                    .zip(r.chunks_exact(width))
                    .zip(stats.chunks_exact_mut(2))
                    .enumerate()
                {
                    let (mean, rstd) = moments(xr, n.eps);
                    st[0] = mean;
                    st[1] = rstd;
                    norm_row(yr, xr, weight, bias, mean, rstd);
                    if let Some(d) = n.output_dropout {
                        dropout_in_place(yr, d, ((first + i) * width) as u64, &mut words);
                    }
                }
            });
        Kernel::LayerNorm.sabotage(y);
        Ok(())
    }

    fn norm_backward(&mut self, nb: &NormBackward) -> Result<()> {
        let n = &nb.forward;
        let reads = [nb.r, nb.dy, n.weight, n.stats];
        let mut writes = vec![nb.d_a, nb.d_weight, nb.d_bias];
        writes.extend(nb.d_residual);
        let fused = self.fused;
        let (r, w) = self.io(&reads, &writes)?;
        let (x, dy, weight, stats) = (r[0], r[1], r[2], r[3]);
        let mut w = w.into_iter();
        let (d_a, d_weight, d_bias) = (
            w.next().expect("d_a"),
            w.next().expect("d_weight"),
            w.next().expect("d_bias"),
        );
        let d_res = w.next();
        if !fused.has(Kernel::LayerNorm) {
            return fallback::norm_backward(
                n,
                [x, dy, weight, stats],
                d_a,
                d_res,
                d_weight,
                d_bias,
            );
        }
        let width = n.width;
        need("a LayerNorm's gradient", dy.len(), n.rows * width)?;
        let partials: Vec<(Vec<f32>, Vec<f32>)> = d_a[..n.rows * width]
            .par_chunks_mut(BLOCK_ROWS * width)
            .enumerate()
            .map(|(block, d_a)| {
                let first = block * BLOCK_ROWS;
                let (mut dw, mut db) = (vec![0f32; width], vec![0f32; width]);
                let mut words = vec![0u32; width];
                let mut dyo = vec![0f32; width];
                let (mut gw, mut xhat) = (vec![0f32; width], vec![0f32; width]);
                for (i, dr) in d_a.chunks_exact_mut(width).enumerate() {
                    let row = first + i;
                    let at = row * width;
                    dyo.copy_from_slice(&dy[at..at + width]);
                    if let Some(d) = n.output_dropout {
                        dropout_in_place(&mut dyo, d, at as u64, &mut words);
                    }
                    let (mean, rstd) = (stats[2 * row], stats[2 * row + 1]);
                    norm_backward_row(
                        dr,
                        &x[at..at + width],
                        &dyo,
                        weight,
                        (mean, rstd),
                        (&mut dw, &mut db),
                        (&mut gw, &mut xhat),
                    );
                }
                (dw, db)
            })
            .collect();
        for (pw, pb) in partials {
            add_into(d_weight, &pw);
            add_into(d_bias, &pb);
        }
        // The residual's gradient is the LayerNorm input's; the branch's goes
        // back through its dropout.
        if let Some(d_res) = d_res {
            d_res[..n.rows * width].copy_from_slice(&d_a[..n.rows * width]);
        }
        if let Some(d) = n.input_dropout {
            d_a[..n.rows * width]
                .par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(i, chunk)| {
                    let mut words = vec![0u32; chunk.len()];
                    dropout_in_place(chunk, d, (i * CHUNK) as u64, &mut words);
                });
        }
        Kernel::LayerNorm.sabotage(d_a);
        Ok(())
    }

    fn attention(&mut self, input: &StepInput, a: &Attention) -> Result<()> {
        let fused = self.fused;
        let (r, mut w) = self.io(&[a.q, a.k, a.v], &[a.context])?;
        if !fused.has(Kernel::Softmax) {
            return fallback::attention(input, a, [r[0], r[1], r[2]], w[0]);
        }
        heads(input, a)?.forward(r[0], r[1], r[2], w[0])?;
        Kernel::Softmax.sabotage(w[0]);
        Ok(())
    }

    fn attention_backward(&mut self, input: &StepInput, ab: &AttentionBackward) -> Result<()> {
        let a = &ab.forward;
        let fused = self.fused;
        let (r, mut w) = self.io(&[a.q, a.k, a.v, ab.d_context], &[ab.dq, ab.dk, ab.dv])?;
        let [dq, dk, dv] = &mut w[..] else {
            bail!("lean step: attention has three input gradients")
        };
        if !fused.has(Kernel::Softmax) {
            return fallback::attention_backward(input, a, [r[0], r[1], r[2], r[3]], [dq, dk, dv]);
        }
        heads(input, a)?.backward((r[0], r[1], r[2], r[3]), (dq, dk, dv))?;
        Kernel::Softmax.sabotage(dq);
        Ok(())
    }

    fn gelu(&mut self, u: Buf, g: Buf, elems: usize, act: Activation) -> Result<()> {
        let fused = self.fused;
        let (r, mut w) = self.io(&[u], &[g])?;
        need("GELU's input", r[0].len(), elems)?;
        if act == Activation::GeluTanh {
            // The tanh form has no kernel of the self-check's: always ours.
            w[0][..elems]
                .par_chunks_mut(CHUNK)
                .zip(r[0][..elems].par_chunks(CHUNK))
                .for_each(|(ys, xs)| gelu::tanh_forward(ys, xs));
            return Ok(());
        }
        if !fused.has(Kernel::Gelu) {
            return fallback::gelu(&r[0][..elems], &mut w[0][..elems]);
        }
        w[0][..elems]
            .par_chunks_mut(CHUNK)
            .zip(r[0][..elems].par_chunks(CHUNK))
            .for_each(|(ys, xs)| gelu::forward(ys, xs));
        Kernel::Gelu.sabotage(w[0]);
        Ok(())
    }

    fn gelu_backward(&mut self, u: Buf, d: Buf, elems: usize, act: Activation) -> Result<()> {
        let fused = self.fused;
        let (r, mut w) = self.io(&[u], &[d])?;
        need("GELU's input", r[0].len(), elems)?;
        if act == Activation::GeluTanh {
            w[0][..elems]
                .par_chunks_mut(CHUNK)
                .zip(r[0][..elems].par_chunks(CHUNK))
                .for_each(|(ds, xs)| gelu::tanh_backward_in_place(ds, xs));
            return Ok(());
        }
        if !fused.has(Kernel::Gelu) {
            return fallback::gelu_backward(&r[0][..elems], &mut w[0][..elems]);
        }
        w[0][..elems]
            .par_chunks_mut(CHUNK)
            .zip(r[0][..elems].par_chunks(CHUNK))
            .for_each(|(ds, xs)| gelu_backward_in_place(ds, xs));
        Kernel::Gelu.sabotage(w[0]);
        Ok(())
    }

    fn column_sums(&mut self, m: Buf, rows: usize, cols: usize, into: Buf) -> Result<()> {
        let fused = self.fused;
        let (r, mut w) = self.io(&[m], &[into])?;
        need("a bias gradient's input", r[0].len(), rows * cols)?;
        if !fused.has(Kernel::ColumnSums) {
            return fallback::column_sums(r[0], rows, cols, w[0]);
        }
        let mut sums = column_sums(&r[0][..rows * cols], cols);
        Kernel::ColumnSums.sabotage(&mut sums);
        add_into(&mut w[0][..cols], &sums);
        Ok(())
    }

    fn qa_loss(&mut self, input: &StepInput, logits: Buf, d_logits: Buf, scale: f32) -> Result<()> {
        let fused = self.fused;
        let (r, mut w) = self.io(&[logits], &[d_logits])?;
        let (b, s) = (input.b, input.s);
        need("the logits", r[0].len(), b * s * 2)?;
        for (name, targets) in [
            ("start_positions", &input.start_positions),
            ("end_positions", &input.end_positions),
        ] {
            if let Some((window, &target)) =
                targets.iter().enumerate().find(|(_, &t)| t as usize >= s)
            {
                bail!("lean step: {name} {target} of window {window} is outside its {s} positions");
            }
        }
        if !fused.has(Kernel::QaLoss) {
            let loss = fallback::qa_loss(input, r[0], w[0], scale)?;
            drop(w);
            self.losses.push(loss);
            return Ok(());
        }
        let mut means = [0f32; 2];
        for (column, (mean, targets)) in means
            .iter_mut()
            .zip([&input.start_positions, &input.end_positions])
            .enumerate()
        {
            let mut total = 0f32;
            let mut z = vec![0f32; s];
            for window in 0..b {
                let target = targets[window] as usize;
                for (j, zj) in z.iter_mut().enumerate() {
                    *zj = r[0][(window * s + j) * 2 + column];
                }
                let top = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum_exp: f32 = z.iter().map(|&v| (v - top).exp()).sum();
                let log_sum = sum_exp.ln();
                total += -((z[target] - top) - log_sum);
                let g = scale / (2.0 * b as f32);
                for (j, &zj) in z.iter().enumerate() {
                    let p = ((zj - top) - log_sum).exp();
                    let onehot = if j == target { 1.0 } else { 0.0 };
                    w[0][(window * s + j) * 2 + column] = (p - onehot) * g;
                }
            }
            *mean = total / b as f32;
        }
        drop(w);
        let mut loss = [(means[0] + means[1]) / 2.0];
        Kernel::QaLoss.sabotage(&mut loss);
        self.losses.push(loss[0]);
        Ok(())
    }
}

fn table_row<'t>(
    table: &'t [f32],
    row: usize,
    h: usize,
    input: &str,
    name: &str,
) -> Result<&'t [f32]> {
    table.get(row * h..(row + 1) * h).ok_or_else(|| {
        anyhow!(
            "{input}: {row} is outside the {} rows of {name}",
            table.len() / h.max(1)
        )
    })
}

/// The (window, head) tasks of one attention op: the fused kernel's own.
fn heads(input: &StepInput, a: &Attention) -> Result<Heads> {
    if input.attention_mask.len() != a.b * a.s {
        bail!(
            "attention_mask: {} values for {} x {} windows",
            input.attention_mask.len(),
            a.b,
            a.s
        );
    }
    Ok(Heads::new(
        (a.b, a.s, a.hidden, a.heads),
        input.attention_mask.iter().map(|&keep| keep > 0),
        a.dropout.filter(|d| d.p > 0.0).map(Masks::Philox),
    )?)
}

multiversion! {
    /// `out += add`, element by element.
    fn add_into(out: &mut [f32], add: &[f32]) {
        for (o, a) in out.iter_mut().zip(add) {
            *o += a;
        }
    }
}

/// `out = dropout(a) + residual` for one row whose first element is `at`.
fn dropped_sum(
    out: &mut [f32],
    a: &[f32],
    residual: &[f32],
    dropout: Option<Dropout>,
    at: u64,
    words: &mut [u32],
) {
    out.copy_from_slice(a);
    if let Some(d) = dropout {
        dropout_in_place(out, d, at, words);
    }
    add_into(out, residual);
}

/// The CPU's attention op on host values (for tests of its masks): the
/// context for `q, k, v` `[b·s, hidden]`.
pub fn attention_on(
    input: &StepInput,
    [q, k, v]: [&[f32]; 3],
    hidden: usize,
    heads_n: usize,
    dropout: Option<Dropout>,
) -> Result<Vec<f32>> {
    let op = Attention {
        b: input.b,
        s: input.s,
        hidden,
        heads: heads_n,
        q: Buf::Act(0),
        k: Buf::Act(1),
        v: Buf::Act(2),
        context: Buf::Act(3),
        dropout,
    };
    let mut context = vec![0.0; input.b * input.s * hidden];
    heads(input, &op)?.forward(q, k, v, &mut context)?;
    Ok(context)
}

multiversion! {
    fn norm_row(y: &mut [f32], x: &[f32], w: &[f32], b: &[f32], mean: f32, rstd: f32) {
        for i in 0..y.len() {
            y[i] = (x[i] - mean) * rstd * w[i] + b[i];
        }
    }
}

multiversion! {
    /// One row's LayerNorm backward from its stored statistics.
    fn norm_backward_row(
        dx: &mut [f32],
        x: &[f32],
        g: &[f32],
        w: &[f32],
        stats: (f32, f32),
        grads: (&mut [f32], &mut [f32]),
        scratch: (&mut [f32], &mut [f32]),
    ) {
        row_backward(dx, x, g, w, stats, grads, scratch);
    }
}

multiversion! {
    /// `d ← d · (Φ(x) + x·φ(x))`, GELU's derivative, in place.
    fn gelu_backward_in_place(ds: &mut [f32], xs: &[f32]) {
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for (d, &x) in ds.iter_mut().zip(xs) {
            let cdf = 0.5 * (1.0 + crate::model::kernels::math::erf(x * std::f32::consts::FRAC_1_SQRT_2));
            let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
            *d *= cdf + x * pdf;
        }
    }
}
