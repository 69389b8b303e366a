//! The CPU twins of the fused kernels: the lean CPU step's own ops
//! (`model::lean::cpu`, with every kernel fused) behind `FusedOps`, so the
//! self-check holds the very code a CPU run trains with to the generic ops.
//! f32 tensors on the CPU only.

use super::kernel::Kernel;
use super::ops::{
    AdamState, AdamStep, EmbedPads, FusedOps, NormForward, NormGrads, NormSpec, TokenIds,
};
use crate::model::kernels::attention::{softmax_backward_rows, softmax_rows};
use crate::model::kernels::masks::dropout_in_place;
use crate::model::kernels::optimizer::{squared_norm, update_chunk};
use crate::model::lean::cpu::Cpu;
use crate::model::lean::ops::{Activation, Buf, Norm, NormBackward, Ops, StepInput};
use crate::rng::philox::Dropout;
use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Device, Tensor};

/// The lean step's CPU ops.
pub struct CpuTwin;

fn host(t: &Tensor, what: &str) -> Result<Vec<f32>> {
    if t.dtype() != DType::F32 || !t.device().is_cpu() {
        bail!(
            "{what}: the CPU twins take f32 CPU tensors, not {:?} on {:?}",
            t.dtype(),
            t.device()
        );
    }
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

fn ids(t: &Tensor, what: &str) -> Result<Vec<u32>> {
    t.flatten_all()?
        .to_vec1::<u32>()
        .map_err(|e| anyhow!("{what}: {e}"))
}

fn out(values: Vec<f32>, dims: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_vec(values, dims, &Device::Cpu)?)
}

fn drop_all(x: &mut [f32], d: Option<Dropout>) {
    if let Some(d) = d.filter(|d| d.p > 0.0) {
        let mut words = vec![0u32; x.len()];
        dropout_in_place(x, d, 0, &mut words);
    }
}

fn norm_op(rows: usize, width: usize, spec: &NormSpec) -> Norm {
    Norm {
        rows,
        width,
        a: Buf::Act(0),
        input_dropout: spec.input_dropout,
        residual: None,
        weight: Buf::Param(0),
        bias: Buf::Param(1),
        eps: spec.eps,
        y: Buf::Act(0),
        output_dropout: spec.output_dropout,
        stats: Buf::Act(0),
    }
}

/// A step input of a batch's token ids (the rest empty).
fn step_input(t: &TokenIds) -> Result<StepInput> {
    let (b, s) = t.ids.dims2()?;
    Ok(StepInput {
        b,
        s,
        input_ids: ids(&t.ids, "input_ids")?,
        token_type_ids: ids(&t.types, "token_type_ids")?,
        position_ids: ids(&t.positions, "position_ids")?,
        ..StepInput::default()
    })
}

impl FusedOps for CpuTwin {
    fn softmax_forward(
        &self,
        scores: &Tensor,
        key_mask: &Tensor,
        scale: f32,
        dropout: Option<Dropout>,
    ) -> Result<(Tensor, Tensor)> {
        let (_, heads, s, _) = scores.dims4()?;
        let mut probs = host(scores, "scores")?;
        let mask: Vec<f32> = ids(key_mask, "key_mask")?
            .iter()
            .map(|&k| if k > 0 { 0.0 } else { f32::MIN })
            .collect();
        for (r, row) in probs.chunks_exact_mut(s).enumerate() {
            let w = r / (heads * s);
            row.iter_mut().for_each(|x| *x *= scale);
            softmax_rows(row, &mask[w * s..(w + 1) * s]);
        }
        let mut dropped = probs.clone();
        drop_all(&mut dropped, dropout);
        Kernel::Softmax.sabotage(&mut dropped);
        Ok((out(probs, scores.dims())?, out(dropped, scores.dims())?))
    }

    fn softmax_backward(
        &self,
        probs: &Tensor,
        grad: &Tensor,
        scale: f32,
        dropout: Option<Dropout>,
    ) -> Result<Tensor> {
        let s = *probs.dims().last().unwrap_or(&1);
        let p = host(probs, "probs")?;
        let mut g = host(grad, "grad")?;
        drop_all(&mut g, dropout);
        softmax_backward_rows(&mut g, &p, s);
        g.iter_mut().for_each(|x| *x *= scale);
        Kernel::Softmax.sabotage(&mut g);
        out(g, grad.dims())
    }

    fn norm_forward(
        &self,
        a: &Tensor,
        residual: Option<&Tensor>,
        weight: &Tensor,
        bias: &Tensor,
        spec: &NormSpec,
    ) -> Result<NormForward> {
        let (rows, width) = a.dims2()?;
        let (w, b) = (host(weight, "weight")?, host(bias, "bias")?);
        let mut cpu = Cpu::new(vec![&w, &b], Vec::new());
        let mut op = norm_op(rows, width, spec);
        op.a = cpu.put(host(a, "a")?);
        if let Some(res) = residual {
            let res = cpu.put(host(res, "residual")?);
            op.residual = Some((res, cpu.put(vec![0.0; rows * width])));
        } else {
            op.input_dropout = None;
        }
        op.y = cpu.put(vec![0.0; rows * width]);
        op.stats = cpu.put(vec![0.0; rows * 2]);
        cpu.norm(&op)?;
        let r = match op.residual {
            Some((_, r)) => Some(out(cpu.take(r)?, &[rows, width])?),
            None => None,
        };
        Ok(NormForward {
            y: out(cpu.take(op.y)?, &[rows, width])?.to_dtype(spec.y_dtype)?,
            stats: out(cpu.take(op.stats)?, &[rows, 2])?,
            r,
        })
    }

    fn norm_backward(
        &self,
        x: &Tensor,
        dy: &Tensor,
        weight: &Tensor,
        stats: &Tensor,
        spec: &NormSpec,
        d_a_dtype: DType,
        residual: bool,
    ) -> Result<NormGrads> {
        let (rows, width) = x.dims2()?;
        let w = host(weight, "weight")?;
        let (mut dw, mut db) = (vec![0f32; width], vec![0f32; width]);
        let mut cpu = Cpu::new(vec![&w, &w], vec![&mut dw, &mut db]);
        let mut forward = norm_op(rows, width, spec);
        forward.stats = cpu.put(host(stats, "stats")?);
        let op = NormBackward {
            forward,
            r: cpu.put(host(x, "x")?),
            dy: cpu.put(host(dy, "dy")?),
            d_a: cpu.put(vec![0.0; rows * width]),
            d_residual: residual.then(|| cpu.put(vec![0.0; rows * width])),
            d_weight: Buf::Grad(0),
            d_bias: Buf::Grad(1),
        };
        cpu.norm_backward(&op)?;
        let d_a = out(cpu.take(op.d_a)?, &[rows, width])?.to_dtype(d_a_dtype)?;
        let d_residual = match op.d_residual {
            Some(b) => Some(out(cpu.take(b)?, &[rows, width])?.to_dtype(dy.dtype())?),
            None => None,
        };
        drop(cpu);
        Ok(NormGrads {
            d_a,
            d_residual,
            d_weight: out(dw, &[width])?,
            d_bias: out(db, &[width])?,
        })
    }

    fn add_bias(&self, c: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (_, n) = c.dims2()?;
        let bias = host(bias, "bias")?;
        let mut values = host(c, "c")?;
        for row in values.chunks_exact_mut(n) {
            row.iter_mut().zip(&bias).for_each(|(x, b)| *x += b);
        }
        Kernel::Bias.sabotage(&mut values);
        out(values, c.dims())
    }

    fn gelu_forward(&self, u: &Tensor) -> Result<Tensor> {
        let n = u.elem_count();
        let mut cpu = Cpu::new(Vec::new(), Vec::new());
        let (ub, g) = (cpu.put(host(u, "u")?), cpu.put(vec![0.0; n]));
        cpu.gelu(ub, g, n, Activation::GeluErf)?;
        out(cpu.take(g)?, u.dims())
    }

    fn gelu_backward(&self, u: &Tensor, d: &Tensor) -> Result<Tensor> {
        let n = u.elem_count();
        let mut cpu = Cpu::new(Vec::new(), Vec::new());
        let (ub, db) = (cpu.put(host(u, "u")?), cpu.put(host(d, "d")?));
        cpu.gelu_backward(ub, db, n, Activation::GeluErf)?;
        out(cpu.take(db)?, d.dims())
    }

    fn column_sums(&self, m: &Tensor) -> Result<Tensor> {
        let (rows, cols) = m.dims2()?;
        let mut sums = vec![0f32; cols];
        let mut cpu = Cpu::new(Vec::new(), vec![&mut sums]);
        let mb = cpu.put(host(m, "m")?);
        cpu.column_sums(mb, rows, cols, Buf::Grad(0))?;
        drop(cpu);
        out(sums, &[cols])
    }

    fn embed_forward(&self, t: &TokenIds, tables: [&Tensor; 3]) -> Result<Tensor> {
        let input = step_input(t)?;
        let h = tables[0].dims2()?.1;
        let values = tables
            .iter()
            .map(|t| host(t, "an embedding table"))
            .collect::<Result<Vec<_>>>()?;
        let mut cpu = Cpu::new(values.iter().map(Vec::as_slice).collect(), Vec::new());
        let e = cpu.put(vec![0.0; input.b * input.s * h]);
        cpu.embed(&input, [Buf::Param(0), Buf::Param(1), Buf::Param(2)], e)?;
        out(cpu.take(e)?, &[input.b * input.s, h])
    }

    fn embed_backward(
        &self,
        d: &Tensor,
        t: &TokenIds,
        rows: [usize; 3],
        pads: EmbedPads,
    ) -> Result<[Tensor; 3]> {
        let input = step_input(t)?;
        let h = d.dims2()?.1;
        let mut grads = rows.map(|r| vec![0f32; r * h]);
        let [g0, g1, g2] = &mut grads;
        let mut cpu = Cpu::new(Vec::new(), vec![g0, g1, g2]);
        let db = cpu.put(host(d, "d")?);
        cpu.embed_backward(&input, db, [Buf::Grad(0), Buf::Grad(1), Buf::Grad(2)], pads)?;
        drop(cpu);
        let [g0, g1, g2] = grads;
        Ok([
            out(g0, &[rows[0], h])?,
            out(g1, &[rows[1], h])?,
            out(g2, &[rows[2], h])?,
        ])
    }

    fn qa_loss(
        &self,
        logits: &Tensor,
        start: &Tensor,
        end: &Tensor,
        scale: f32,
    ) -> Result<(Tensor, Tensor)> {
        let (rows, _) = logits.dims2()?;
        let b = start.dims1()?;
        let input = StepInput {
            b,
            s: rows / b.max(1),
            start_positions: ids(start, "start_positions")?,
            end_positions: ids(end, "end_positions")?,
            ..StepInput::default()
        };
        let mut cpu = Cpu::new(Vec::new(), Vec::new());
        let (l, d) = (
            cpu.put(host(logits, "logits")?),
            cpu.put(vec![0.0; rows * 2]),
        );
        cpu.qa_loss(&input, l, d, scale)?;
        let loss = cpu
            .losses
            .pop()
            .ok_or_else(|| anyhow!("the QA loss computed nothing"))?;
        Ok((out(vec![loss], &[1])?, out(cpu.take(d)?, &[rows, 2])?))
    }

    fn adamw(
        &self,
        state: AdamState,
        g: &Tensor,
        step: &AdamStep,
        half: Option<DType>,
    ) -> Result<(AdamState, Option<Tensor>)> {
        let dims = state.w.dims().to_vec();
        let (mut w, mut m, mut v) = (
            host(&state.w, "weight")?,
            host(&state.m, "exp_avg")?,
            host(&state.v, "exp_avg_sq")?,
        );
        update_chunk(&mut w, &mut m, &mut v, &host(g, "gradient")?, *step);
        Kernel::AdamW.sabotage(&mut w);
        let w = out(w, &dims)?;
        let half = half.map(|dt| w.to_dtype(dt)).transpose()?;
        Ok((
            AdamState {
                w,
                m: out(m, &dims)?,
                v: out(v, &dims)?,
            },
            half,
        ))
    }

    fn squared_norms(&self, grads: &[Tensor]) -> Result<Vec<f64>> {
        let mut norms = grads
            .iter()
            .map(|g| Ok(squared_norm(&host(g, "gradient")?)))
            .collect::<Result<Vec<f64>>>()?;
        if Kernel::Norms.is_broken_on_purpose() {
            if let Some(first) = norms.first_mut() {
                *first += 1.0;
            }
        }
        Ok(norms)
    }
}
