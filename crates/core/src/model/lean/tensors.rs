//! The lean step's ops on candle tensors, on any device: the backend of the
//! lean step on CUDA. Each fused op goes to the fused implementation the
//! self-check trusts (the CUDA kernels, or on the CPU the twins) or, when
//! its kernel is switched off, to candle's generic ops; products go to
//! candle's matmul (cuBLAS on CUDA). Activations are flat tensors in their
//! precision; parameters are read as f32 masters, or as the compute-dtype
//! copies for products; each gradient is an f32 tensor per parameter. Every
//! product goes through `cuda_layout::matmul`, so one CUDA would refuse
//! fails in the CPU tests too.

use super::ops::{
    Activation, Attention, AttentionBackward, Buf, EmbedPads, Gemm, Norm, NormBackward, Ops, Prec,
    StepInput,
};
use crate::model::cuda_layout::matmul;
use crate::model::fused::generic::Generic;
use crate::model::fused::{FusedOps, Kernel, KernelSet, NormSpec, TokenIds};
use anyhow::{anyhow, bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

/// One micro-batch's inputs on the device.
struct DeviceInput {
    tokens: TokenIds,
    mask: Tensor,
    start: Tensor,
    end: Tensor,
}

/// The backend over one step's tensors.
pub struct TensorOps<'a> {
    device: Device,
    compute: DType,
    /// f32 masters, by parameter index.
    params: &'a [Tensor],
    /// The same in the compute dtype (the masters themselves in f32).
    compute_params: &'a [Tensor],
    /// f32 gradients, by parameter index, added into.
    grads: &'a mut [Tensor],
    acts: Vec<Option<Tensor>>,
    /// Attention's probabilities and dropped probabilities, by the context
    /// buffer they made, until its backward.
    kept: HashMap<Buf, (Tensor, Tensor)>,
    input: Option<DeviceInput>,
    fused: &'a dyn FusedOps,
    trusted: KernelSet,
    /// Each micro-batch's loss, `[1]` f32 on the device.
    pub losses: Vec<Tensor>,
    /// Calls into a kernel or a product: the launches the host issued, for
    /// the GPU script's count against the census.
    pub calls: usize,
}

impl<'a> TensorOps<'a> {
    pub fn new(
        params: &'a [Tensor],
        compute_params: &'a [Tensor],
        grads: &'a mut [Tensor],
        fused: &'a dyn FusedOps,
        trusted: KernelSet,
    ) -> Result<Self> {
        let first = compute_params
            .first()
            .ok_or_else(|| anyhow!("the lean step has no parameters"))?;
        Ok(Self {
            device: first.device().clone(),
            compute: first.dtype(),
            params,
            compute_params,
            grads,
            acts: Vec::new(),
            kept: HashMap::new(),
            input: None,
            fused,
            trusted,
            losses: Vec::new(),
            calls: 0,
        })
    }

    /// The implementation `kernel` runs on.
    fn op(&mut self, kernel: Kernel) -> &'a dyn FusedOps {
        self.calls += 1;
        if self.trusted.has(kernel) {
            self.fused
        } else {
            &Generic
        }
    }

    fn get(&self, b: Buf) -> Result<Tensor> {
        match b {
            Buf::Act(i) => self
                .acts
                .get(i as usize)
                .and_then(Option::as_ref)
                .cloned()
                .ok_or_else(|| anyhow!("lean step: activation {i} was freed or never made")),
            Buf::Param(i) => Ok(self.params[i as usize].clone()),
            Buf::Grad(i) => Ok(self.grads[i as usize].clone()),
        }
    }

    /// A parameter as a product's operand: its compute-dtype copy.
    fn operand(&self, b: Buf) -> Result<Tensor> {
        let t = match b {
            Buf::Param(i) => self.compute_params[i as usize].clone(),
            other => self.get(other)?,
        };
        Ok(if t.dtype() == self.compute {
            t
        } else {
            t.to_dtype(self.compute)?
        })
    }

    /// Stores `t` as `b`: an activation keeps its own dtype and length.
    fn set(&mut self, b: Buf, t: &Tensor) -> Result<()> {
        match b {
            Buf::Act(i) => {
                let slot = self
                    .acts
                    .get_mut(i as usize)
                    .ok_or_else(|| anyhow!("lean step: activation {i} was never made"))?;
                let old = slot
                    .as_ref()
                    .ok_or_else(|| anyhow!("lean step: activation {i} was freed"))?;
                let t = t.flatten_all()?;
                if t.elem_count() != old.elem_count() {
                    bail!(
                        "lean step: {} values for activation {i} of {}",
                        t.elem_count(),
                        old.elem_count()
                    );
                }
                *slot = Some(t.to_dtype(old.dtype())?);
                Ok(())
            }
            Buf::Grad(i) => {
                let g = &mut self.grads[i as usize];
                *g = t.to_dtype(DType::F32)?.reshape(g.shape())?;
                Ok(())
            }
            Buf::Param(i) => bail!("lean step: parameter {i} is written"),
        }
    }

    /// Adds `t` into the gradient `b`.
    fn add_grad(&mut self, b: Buf, t: &Tensor) -> Result<()> {
        let Buf::Grad(i) = b else {
            bail!("lean step: {b:?} is not a gradient")
        };
        let g = &mut self.grads[i as usize];
        *g = (&*g + t.to_dtype(DType::F32)?.reshape(g.shape())?)?;
        Ok(())
    }

    fn input(&mut self, input: &StepInput) -> Result<&DeviceInput> {
        if self.input.is_none() {
            let u32s = |v: &[u32], dims: &[usize]| Tensor::from_slice(v, dims, &self.device);
            let (b, s) = (input.b, input.s);
            self.input = Some(DeviceInput {
                tokens: TokenIds {
                    ids: u32s(&input.input_ids, &[b, s])?,
                    types: u32s(&input.token_type_ids, &[b, s])?,
                    positions: u32s(&input.positions(), &[b, s])?,
                },
                mask: u32s(&input.attention_mask, &[b, s])?,
                start: u32s(&input.start_positions, &[b])?,
                end: u32s(&input.end_positions, &[b])?,
            });
        }
        self.input
            .as_ref()
            .ok_or_else(|| anyhow!("lean step: no inputs"))
    }

    fn rows(&self, b: Buf, rows: usize, cols: usize) -> Result<Tensor> {
        let t = self.get(b)?;
        Ok(t.flatten_all()?
            .narrow(0, 0, rows * cols)?
            .reshape((rows, cols))?)
    }

    /// `[b·s, hidden]` as `[b, heads, s, d]`, contiguous, in the compute dtype.
    fn heads(&self, x: Buf, a: &Attention) -> Result<Tensor> {
        let d = a.hidden / a.heads;
        Ok(self
            .operand(x)?
            .reshape((a.b, a.s, a.heads, d))?
            .transpose(1, 2)?
            .contiguous()?)
    }
}

fn merge_heads(x: &Tensor) -> Result<Tensor> {
    Ok(x.transpose(1, 2)?.contiguous()?.flatten_all()?)
}

fn scale(a: &Attention) -> f32 {
    1.0 / ((a.hidden / a.heads) as f32).sqrt()
}

fn spec(n: &Norm, y_dtype: DType) -> NormSpec {
    NormSpec {
        eps: n.eps,
        input_dropout: n.input_dropout.filter(|d| d.p > 0.0),
        output_dropout: n.output_dropout.filter(|d| d.p > 0.0),
        y_dtype,
    }
}

impl Ops for TensorOps<'_> {
    fn alloc(&mut self, what: &'static str, elems: usize, prec: Prec) -> Result<Buf> {
        let dtype = match prec {
            Prec::Compute => self.compute,
            Prec::F32 => DType::F32,
        };
        let t = Tensor::zeros(elems, dtype, &self.device)
            .with_context(|| format!("allocating {what}"))?;
        self.acts.push(Some(t));
        Ok(Buf::Act((self.acts.len() - 1) as u32))
    }

    fn free(&mut self, buf: Buf) {
        if let Buf::Act(i) = buf {
            if let Some(slot) = self.acts.get_mut(i as usize) {
                *slot = None;
            }
        }
        self.kept.remove(&buf);
    }

    fn zero_grads(&mut self) -> Result<()> {
        for g in self.grads.iter_mut() {
            *g = g.zeros_like()?;
        }
        Ok(())
    }

    fn gemm(&mut self, g: &Gemm) -> Result<()> {
        self.calls += 1;
        let operand = |b: Buf, t: bool, (rows, cols): (usize, usize)| -> Result<Tensor> {
            let x = self.operand(b)?.flatten_all()?.narrow(0, 0, rows * cols)?;
            Ok(if t {
                x.reshape((cols, rows))?.t()?
            } else {
                x.reshape((rows, cols))?
            })
        };
        let a = operand(g.a, g.a_t, (g.m, g.k))?;
        let b = operand(g.b, g.b_t, (g.k, g.n))?;
        let mut product = matmul(&a, &b)?;
        if g.scale != 1.0 {
            product = (product * f64::from(g.scale))?;
        }
        let target_dtype = match g.c {
            Buf::Grad(_) => DType::F32,
            other => self.get(other)?.dtype(),
        };
        let mut c = product.to_dtype(target_dtype)?;
        if let Some(bias) = g.bias {
            let bias = self.get(bias)?;
            c = self.op(Kernel::Bias).add_bias(&c, &bias)?;
        }
        if g.accumulate {
            let held = self.rows(g.c, g.m, g.n)?;
            c = (held.to_dtype(target_dtype)? + c)?;
        }
        self.set(g.c, &c)
    }

    fn embed(&mut self, input: &StepInput, tables: [Buf; 3], out: Buf) -> Result<()> {
        let [w, p, t] = tables.map(|b| self.get(b));
        let (w, p, t) = (w?, p?, t?);
        // A table the step holds as an activation (DistilBERT's zero
        // token-type row) is flat: give it the word table's width.
        let h = w.dims2()?.1;
        let (p, t) = (p.reshape(((), h))?, t.reshape(((), h))?);
        let op = self.op(Kernel::Embedding);
        let inp = self.input(input)?;
        let e = op.embed_forward(&inp.tokens, [&w, &p, &t])?;
        self.set(out, &e)
    }

    fn embed_backward(
        &mut self,
        input: &StepInput,
        d_out: Buf,
        grads: [Buf; 3],
        pads: EmbedPads,
    ) -> Result<()> {
        // Each table's rows, from its gradient's size and the word table's width.
        let h = self.get(grads[0])?.dims2()?.1;
        let mut rows = [0; 3];
        for (r, g) in rows.iter_mut().zip(grads) {
            *r = self.get(g)?.elem_count() / h.max(1);
        }
        let d = self.rows(d_out, input.b * input.s, h)?;
        let op = self.op(Kernel::Embedding);
        let inp = self.input(input)?;
        let out = op.embed_backward(&d, &inp.tokens, rows, pads)?;
        for (g, t) in grads.into_iter().zip(&out) {
            // An activation's gradient (DistilBERT's zero token-type row) is dropped.
            if matches!(g, Buf::Grad(_)) {
                self.add_grad(g, t)?;
            }
        }
        Ok(())
    }

    fn norm(&mut self, n: &Norm) -> Result<()> {
        let a = self.rows(n.a, n.rows, n.width)?;
        let residual = n
            .residual
            .map(|(res, _)| self.rows(res, n.rows, n.width))
            .transpose()?;
        let (w, b) = (self.get(n.weight)?, self.get(n.bias)?);
        let y_dtype = self.get(n.y)?.dtype();
        let out = self.op(Kernel::LayerNorm).norm_forward(
            &a,
            residual.as_ref(),
            &w,
            &b,
            &spec(n, y_dtype),
        )?;
        self.set(n.y, &out.y)?;
        self.set(n.stats, &out.stats)?;
        if let (Some((_, r)), Some(sum)) = (n.residual, &out.r) {
            self.set(r, sum)?;
        }
        Ok(())
    }

    fn norm_backward(&mut self, nb: &NormBackward) -> Result<()> {
        let n = &nb.forward;
        let x = self.rows(nb.r, n.rows, n.width)?;
        let dy = self.rows(nb.dy, n.rows, n.width)?;
        let stats = self.rows(n.stats, n.rows, 2)?;
        let w = self.get(n.weight)?;
        let d_a_dtype = self.get(nb.d_a)?.dtype();
        let mut spec = spec(n, dy.dtype());
        if nb.d_residual.is_none() {
            spec.input_dropout = None;
        }
        let out = self.op(Kernel::LayerNorm).norm_backward(
            &x,
            &dy,
            &w,
            &stats,
            &spec,
            d_a_dtype,
            nb.d_residual.is_some(),
        )?;
        self.set(nb.d_a, &out.d_a)?;
        if let (Some(buf), Some(t)) = (nb.d_residual, &out.d_residual) {
            self.set(buf, t)?;
        }
        self.add_grad(nb.d_weight, &out.d_weight)?;
        self.add_grad(nb.d_bias, &out.d_bias)
    }

    fn attention(&mut self, input: &StepInput, a: &Attention) -> Result<()> {
        let (q, k, v) = (
            self.heads(a.q, a)?,
            self.heads(a.k, a)?,
            self.heads(a.v, a)?,
        );
        self.calls += 2;
        let scores = matmul(&q, &k.t()?)?;
        let op = self.op(Kernel::Softmax);
        let mask = self.input(input)?.mask.clone();
        let (probs, dropped) =
            op.softmax_forward(&scores, &mask, scale(a), a.dropout.filter(|d| d.p > 0.0))?;
        let context = merge_heads(&matmul(&dropped, &v)?)?;
        self.set(a.context, &context)?;
        self.kept.insert(a.context, (probs, dropped));
        Ok(())
    }

    fn attention_backward(&mut self, input: &StepInput, ab: &AttentionBackward) -> Result<()> {
        let a = &ab.forward;
        let (q, k, v) = (
            self.heads(a.q, a)?,
            self.heads(a.k, a)?,
            self.heads(a.v, a)?,
        );
        let d_context = self.heads(ab.d_context, a)?;
        let (probs, dropped) = match self.kept.remove(&a.context) {
            Some(kept) => kept,
            // A forward whose probabilities were not kept: recompute them.
            None => {
                let op = self.op(Kernel::Softmax);
                let mask = self.input(input)?.mask.clone();
                op.softmax_forward(
                    &matmul(&q, &k.t()?)?,
                    &mask,
                    scale(a),
                    a.dropout.filter(|d| d.p > 0.0),
                )?
            }
        };
        self.calls += 4;
        let d_dropped = matmul(&d_context, &v.t()?)?;
        let d_v = matmul(&dropped.t()?, &d_context)?;
        let d_scores = self.op(Kernel::Softmax).softmax_backward(
            &probs,
            &d_dropped,
            scale(a),
            a.dropout.filter(|d| d.p > 0.0),
        )?;
        self.set(ab.dq, &merge_heads(&matmul(&d_scores, &k)?)?)?;
        self.set(ab.dk, &merge_heads(&matmul(&d_scores.t()?, &q)?)?)?;
        self.set(ab.dv, &merge_heads(&d_v)?)
    }

    fn gelu(&mut self, u: Buf, g: Buf, elems: usize, act: Activation) -> Result<()> {
        let u = self.get(u)?.narrow(0, 0, elems)?;
        let out = match act {
            Activation::GeluErf => self.op(Kernel::Gelu).gelu_forward(&u)?,
            // The tanh form has no fused kernel: candle's op, in f32.
            Activation::GeluTanh => u.to_dtype(DType::F32)?.gelu()?.to_dtype(u.dtype())?,
        };
        self.set(g, &out)
    }

    fn gelu_backward(&mut self, u: Buf, d: Buf, elems: usize, act: Activation) -> Result<()> {
        let u = self.get(u)?.narrow(0, 0, elems)?;
        let dt = self.get(d)?.narrow(0, 0, elems)?;
        let out = match act {
            Activation::GeluErf => self.op(Kernel::Gelu).gelu_backward(&u, &dt)?,
            Activation::GeluTanh => tanh_gelu_backward(&u, &dt)?,
        };
        self.set(d, &out)
    }

    fn column_sums(&mut self, m: Buf, rows: usize, cols: usize, into: Buf) -> Result<()> {
        let m = self.rows(m, rows, cols)?;
        let sums = self.op(Kernel::ColumnSums).column_sums(&m)?;
        self.add_grad(into, &sums)
    }

    fn qa_loss(&mut self, input: &StepInput, logits: Buf, d_logits: Buf, scale: f32) -> Result<()> {
        for (name, targets) in [
            ("start_positions", &input.start_positions),
            ("end_positions", &input.end_positions),
        ] {
            if let Some((w, &t)) = targets
                .iter()
                .enumerate()
                .find(|(_, &t)| t as usize >= input.s)
            {
                bail!(
                    "lean step: {name} {t} of window {w} is outside its {} positions",
                    input.s
                );
            }
        }
        let logits = self
            .rows(logits, input.b * input.s, 2)?
            .to_dtype(DType::F32)?;
        let op = self.op(Kernel::QaLoss);
        let inp = self.input(input)?;
        let (loss, grad) = op.qa_loss(&logits, &inp.start, &inp.end, scale)?;
        self.losses.push(loss);
        self.set(d_logits, &grad)
    }
}

/// `d · gelu_new'(u)` in f32 from candle's ops, in `d`'s dtype:
/// 0.5 (1 + t) + 0.5 u (1 − t²) √(2/π) (1 + 3 · 0.044715 u²).
fn tanh_gelu_backward(u: &Tensor, d: &Tensor) -> Result<Tensor> {
    const K: f64 = 0.797_884_560_802_865_4;
    const C: f64 = 0.044715;
    let u = u.to_dtype(DType::F32)?;
    let u2 = u.sqr()?;
    let t = ((&u2 * C)? + 1.0)?.mul(&u)?.affine(K, 0.0)?.tanh()?;
    let left = (t.affine(0.5, 0.5))?;
    let right = ((1.0 - t.sqr()?)? * &u)?.mul(&u2.affine(3.0 * C * 0.5 * K, 0.5 * K)?)?;
    let slope = (left + right)?;
    Ok((d.to_dtype(DType::F32)? * slope)?.to_dtype(d.dtype())?)
}
