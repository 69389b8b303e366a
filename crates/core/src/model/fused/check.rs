//! The self-check: every fused kernel, forward and backward, against
//! candle's generic ops on the same device, on small random inputs, before a
//! run trusts it. A kernel that disagrees beyond its tolerance, or gives a
//! value that is not finite, is switched off for the process; its op falls
//! back to the generic ops (`KernelSet`).

use super::generic::Generic;
use super::kernel::{Kernel, KernelSet};
use super::ops::{AdamState, AdamStep, EmbedPads, FusedOps, NormSpec, TokenIds};
use crate::rng::philox::{Dropout, MaskStream};
use crate::rng::SeededRng;
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use std::time::Instant;

/// One kernel's check in one direction.
#[derive(Clone, Debug, Serialize)]
pub struct KernelCheck {
    pub kernel: &'static str,
    /// `forward` or `backward`.
    pub direction: &'static str,
    pub dtype: String,
    /// max |fused − generic| / max(1, max |generic|), over every output.
    pub error: f64,
    pub tolerance: f64,
    /// Every fused output value is finite.
    pub finite: bool,
    pub passed: bool,
    /// The fused implementation's own error, if it failed to run.
    pub failure: Option<String>,
}

/// The check of one implementation on one device.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub device: String,
    pub implementation: String,
    pub checks: Vec<KernelCheck>,
    pub seconds: f64,
}

impl CheckReport {
    /// The kernels whose every check passed.
    pub fn trusted(&self) -> KernelSet {
        self.failed()
            .into_iter()
            .fold(KernelSet::all(), KernelSet::without)
    }

    /// The kernels with a failed check, each once.
    pub fn failed(&self) -> Vec<Kernel> {
        Kernel::ALL
            .into_iter()
            .filter(|k| {
                self.checks
                    .iter()
                    .any(|c| c.kernel == k.name() && !c.passed)
            })
            .collect()
    }

    /// One line per switched-off kernel, saying what the run does instead.
    pub fn warnings(&self) -> Vec<String> {
        self.failed()
            .into_iter()
            .map(|k| {
                let worst = self
                    .checks
                    .iter()
                    .filter(|c| c.kernel == k.name() && !c.passed)
                    .map(|c| match &c.failure {
                        Some(f) => format!("{} {}: {f}", c.direction, c.dtype),
                        None if !c.finite => format!("{} {}: a value that is not finite", c.direction, c.dtype),
                        None => format!(
                            "{} {}: error {:.3e} > tolerance {:.1e}",
                            c.direction, c.dtype, c.error, c.tolerance
                        ),
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                let masks = if matches!(k, Kernel::Softmax | Kernel::LayerNorm) {
                    " Its dropout masks stay the same Philox draws: the generic ops take them from the host."
                } else {
                    ""
                };
                format!(
                    "the fused {} kernel ({}) disagreed with candle's generic ops on {} ({worst}); it is switched off for this process and its op runs on the generic ops.{masks}",
                    k.name(),
                    k.what(),
                    self.device
                )
            })
            .collect()
    }
}

/// Tolerances in f32 (the check's own precision) and in half precision.
fn tolerance(k: Kernel, dtype: DType) -> f64 {
    if dtype != DType::F32 {
        return 3e-2;
    }
    match k {
        Kernel::Softmax | Kernel::Gelu | Kernel::Bias | Kernel::AdamW => 1e-5,
        Kernel::LayerNorm | Kernel::ColumnSums | Kernel::Embedding | Kernel::QaLoss => 1e-4,
        Kernel::Norms => 1e-6,
    }
}

/// Small random inputs, the same every time.
struct Inputs {
    rng: SeededRng,
    device: Device,
    dtype: DType,
}

impl Inputs {
    fn normal(&mut self, dims: &[usize], scale: f64, dtype: DType) -> Result<Tensor> {
        let n = dims.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| (self.rng.next_normal() * scale) as f32)
            .collect();
        Ok(Tensor::from_vec(values, dims, &self.device)?.to_dtype(dtype)?)
    }

    fn compute(&mut self, dims: &[usize], scale: f64) -> Result<Tensor> {
        let dt = self.dtype;
        self.normal(dims, scale, dt)
    }

    fn f32s(&mut self, dims: &[usize], scale: f64) -> Result<Tensor> {
        self.normal(dims, scale, DType::F32)
    }

    fn u32s(&self, values: Vec<u32>, dims: &[usize]) -> Result<Tensor> {
        Ok(Tensor::from_vec(values, dims, &self.device)?)
    }
}

fn dropout(p: f32, site: u32) -> Option<Dropout> {
    Some(Dropout {
        p,
        stream: MaskStream {
            key: MaskStream::key_for_seed(42),
            round: 3,
            site,
        },
    })
}

/// The largest scaled difference between paired outputs, and whether every
/// fused value is finite.
fn compare(pairs: &[(&Tensor, &Tensor)]) -> Result<(f64, bool)> {
    let (mut error, mut finite) = (0f64, true);
    for (fused, generic) in pairs {
        let f = fused
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        let g = generic
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        if f.len() != g.len() {
            anyhow::bail!("{} values where the generic op gives {}", f.len(), g.len());
        }
        finite &= f.iter().all(|v| v.is_finite());
        let scale = g.iter().fold(1f64, |m, v| m.max(v.abs()));
        let worst = f.iter().zip(&g).fold(0f64, |m, (a, b)| {
            // NaN never passes: a NaN difference makes the error infinite.
            let d = (a - b).abs();
            if d.is_nan() {
                f64::INFINITY
            } else {
                m.max(d)
            }
        });
        error = error.max(worst / scale);
    }
    Ok((error, finite))
}

type Outputs = Vec<Tensor>;

/// Runs every check of `fused` against the generic ops on `device`, with
/// compute tensors in `dtype`.
pub fn run(
    fused: &dyn FusedOps,
    implementation: &str,
    device: &Device,
    dtype: DType,
) -> CheckReport {
    let started = Instant::now();
    let mut inputs = Inputs {
        rng: SeededRng::new(31),
        device: device.clone(),
        dtype,
    };
    let mut checks = Vec::new();
    for (kernel, direction, case) in cases() {
        let outcome = case(&mut inputs, fused).and_then(|(f, g)| {
            let pairs: Vec<(&Tensor, &Tensor)> = f.iter().zip(&g).collect();
            compare(&pairs)
        });
        let tolerance = tolerance(kernel, dtype);
        let (error, finite, failure) = match outcome {
            Ok((error, finite)) => (error, finite, None),
            Err(e) => (f64::INFINITY, false, Some(format!("{e:#}"))),
        };
        checks.push(KernelCheck {
            kernel: kernel.name(),
            direction,
            dtype: dtype.as_str().to_string(),
            error,
            tolerance,
            finite,
            passed: failure.is_none() && finite && error <= tolerance,
            failure,
        });
    }
    CheckReport {
        device: crate::model::describe(device, dtype).0,
        implementation: implementation.to_string(),
        checks,
        seconds: started.elapsed().as_secs_f64(),
    }
}

type Case = fn(&mut Inputs, &dyn FusedOps) -> Result<(Outputs, Outputs)>;

const B: usize = 2;
const S: usize = 24;
const HEADS: usize = 2;
const WIDTH: usize = 48;
const ROWS: usize = B * S;

fn key_mask(x: &Inputs) -> Result<Tensor> {
    // The second window is padding after 17 positions.
    let mask = (0..ROWS).map(|i| u32::from(i < S || i % S < 17)).collect();
    x.u32s(mask, &[B, S])
}

fn norm_spec(x: &Inputs, residual: bool) -> NormSpec {
    NormSpec {
        eps: 1e-12,
        input_dropout: if residual { dropout(0.1, 5) } else { None },
        output_dropout: if residual { None } else { dropout(0.1, 6) },
        y_dtype: x.dtype,
    }
}

fn cases() -> Vec<(Kernel, &'static str, Case)> {
    vec![
        (Kernel::Softmax, "forward", |x, f| {
            let scores = x.compute(&[B, HEADS, S, S], 3.0)?;
            let mask = key_mask(x)?;
            let run = |o: &dyn FusedOps| -> Result<Outputs> {
                let (p, d) = o.softmax_forward(&scores, &mask, 0.125, dropout(0.1, 1))?;
                Ok(vec![p, d])
            };
            Ok((run(f)?, run(&Generic)?))
        }),
        (Kernel::Softmax, "backward", |x, f| {
            let mask = key_mask(x)?;
            let (probs, _) =
                Generic.softmax_forward(&x.compute(&[B, HEADS, S, S], 3.0)?, &mask, 0.125, None)?;
            let grad = x.compute(&[B, HEADS, S, S], 1.0)?;
            let run = |o: &dyn FusedOps| -> Result<Outputs> {
                Ok(vec![o.softmax_backward(
                    &probs,
                    &grad,
                    0.125,
                    dropout(0.1, 1),
                )?])
            };
            Ok((run(f)?, run(&Generic)?))
        }),
        (Kernel::LayerNorm, "forward", |x, f| {
            let (a, res) = (
                x.compute(&[ROWS, WIDTH], 1.0)?,
                x.compute(&[ROWS, WIDTH], 1.0)?,
            );
            let a32 = x.f32s(&[ROWS, WIDTH], 2.0)?;
            let (w, b) = (x.f32s(&[WIDTH], 1.0)?, x.f32s(&[WIDTH], 1.0)?);
            let (with, without) = (norm_spec(x, true), norm_spec(x, false));
            let run = |o: &dyn FusedOps| -> Result<Outputs> {
                let one = o.norm_forward(&a, Some(&res), &w, &b, &with)?;
                let two = o.norm_forward(&a32, None, &w, &b, &without)?;
                let r = one.r.ok_or_else(|| anyhow::anyhow!("no residual sum"))?;
                Ok(vec![one.y, one.stats, r, two.y, two.stats])
            };
            Ok((run(f)?, run(&Generic)?))
        }),
        (Kernel::LayerNorm, "backward", |x, f| {
            let r = x.f32s(&[ROWS, WIDTH], 1.0)?;
            let a32 = x.f32s(&[ROWS, WIDTH], 2.0)?;
            let (w, b) = (x.f32s(&[WIDTH], 1.0)?, x.f32s(&[WIDTH], 1.0)?);
            let (with, without) = (norm_spec(x, true), norm_spec(x, false));
            let stats_r = Generic.norm_forward(&r, None, &w, &b, &with)?.stats;
            let stats_a = Generic.norm_forward(&a32, None, &w, &b, &without)?.stats;
            let dy = x.compute(&[ROWS, WIDTH], 1.0)?;
            let dt = x.dtype;
            let run = |o: &dyn FusedOps| -> Result<Outputs> {
                let one = o.norm_backward(&r, &dy, &w, &stats_r, &with, dt, true)?;
                let two = o.norm_backward(&a32, &dy, &w, &stats_a, &without, DType::F32, false)?;
                let d_res = one
                    .d_residual
                    .ok_or_else(|| anyhow::anyhow!("no residual gradient"))?;
                Ok(vec![
                    one.d_a,
                    d_res,
                    one.d_weight,
                    one.d_bias,
                    two.d_a,
                    two.d_weight,
                    two.d_bias,
                ])
            };
            Ok((run(f)?, run(&Generic)?))
        }),
        (Kernel::Bias, "forward", |x, f| {
            let (c, bias) = (x.compute(&[ROWS, WIDTH], 1.0)?, x.f32s(&[WIDTH], 1.0)?);
            Ok((
                vec![f.add_bias(&c, &bias)?],
                vec![Generic.add_bias(&c, &bias)?],
            ))
        }),
        (Kernel::Gelu, "forward", |x, f| {
            let u = x.compute(&[ROWS, WIDTH], 2.0)?;
            Ok((vec![f.gelu_forward(&u)?], vec![Generic.gelu_forward(&u)?]))
        }),
        (Kernel::Gelu, "backward", |x, f| {
            let (u, d) = (
                x.compute(&[ROWS, WIDTH], 2.0)?,
                x.compute(&[ROWS, WIDTH], 1.0)?,
            );
            Ok((
                vec![f.gelu_backward(&u, &d)?],
                vec![Generic.gelu_backward(&u, &d)?],
            ))
        }),
        (Kernel::ColumnSums, "backward", |x, f| {
            let m = x.compute(&[ROWS, WIDTH], 1.0)?;
            Ok((vec![f.column_sums(&m)?], vec![Generic.column_sums(&m)?]))
        }),
        (Kernel::Embedding, "forward", |x, f| {
            let (tokens, tables) = embedding_inputs(x)?;
            let t = [&tables[0], &tables[1], &tables[2]];
            Ok((
                vec![f.embed_forward(&tokens, t)?],
                vec![Generic.embed_forward(&tokens, t)?],
            ))
        }),
        (Kernel::Embedding, "backward", |x, f| {
            let (tokens, _) = embedding_inputs(x)?;
            let d = x.f32s(&[ROWS, WIDTH], 1.0)?;
            let rows = [VOCAB, S + 8, 2];
            let pads = EmbedPads {
                word: 0,
                position: Some(0),
            };
            let run = |o: &dyn FusedOps| -> Result<Outputs> {
                Ok(o.embed_backward(&d, &tokens, rows, pads)?.to_vec())
            };
            Ok((run(f)?, run(&Generic)?))
        }),
        (Kernel::QaLoss, "forward", |x, f| {
            let logits = x.f32s(&[ROWS, 2], 2.0)?;
            let (start, end) = (x.u32s(vec![3, 20], &[B])?, x.u32s(vec![5, 0], &[B])?);
            let run = |o: &dyn FusedOps| -> Result<Outputs> {
                let (loss, grad) = o.qa_loss(&logits, &start, &end, 0.5)?;
                Ok(vec![loss, grad])
            };
            Ok((run(f)?, run(&Generic)?))
        }),
        (Kernel::AdamW, "forward", |x, f| {
            let dims = [WIDTH, 5];
            let (w, g) = (x.f32s(&dims, 1.0)?, x.f32s(&dims, 0.1)?);
            let (m, v) = (x.f32s(&dims, 0.01)?, x.f32s(&dims, 1e-3)?.abs()?);
            let step = AdamStep {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                step_size: 2e-5 / (1.0 - 0.9f32.powi(3)),
                bias_correction2_sqrt: (1.0 - 0.999f32.powi(3)).sqrt(),
                decay: 1.0 - 2e-5 * 0.01,
                grad_scale: 0.7,
            };
            let half = (x.dtype != DType::F32).then_some(x.dtype);
            let run = |o: &dyn FusedOps| -> Result<Outputs> {
                // Copies: a fused update may write its state in place.
                let state = AdamState {
                    w: w.copy()?,
                    m: m.copy()?,
                    v: v.copy()?,
                };
                let (s, h) = o.adamw(state, &g, &step, half)?;
                Ok([s.w, s.m, s.v].into_iter().chain(h).collect())
            };
            Ok((run(f)?, run(&Generic)?))
        }),
        (Kernel::Norms, "forward", |x, f| {
            let grads = vec![
                x.f32s(&[WIDTH, 7], 1.0)?,
                x.f32s(&[3], 0.5)?,
                x.f32s(&[1000], 0.1)?,
            ];
            let run = |o: &dyn FusedOps| -> Result<Outputs> {
                let norms = o.squared_norms(&grads)?;
                Ok(vec![Tensor::new(norms, &Device::Cpu)?])
            };
            Ok((run(f)?, run(&Generic)?))
        }),
    ]
}

const VOCAB: usize = 40;

fn embedding_inputs(x: &mut Inputs) -> Result<(TokenIds, [Tensor; 3])> {
    // Some ids are the pad id 0, and repeats meet in the scatter-add.
    // Positions are RoBERTa's (pads on row 0, which gets no gradient).
    let ids: Vec<u32> = (0..ROWS)
        .map(|i| ((i * 7) % VOCAB) as u32 * u32::from(i % 5 != 0))
        .collect();
    let positions = crate::model::position_ids(crate::model::Family::Roberta, &ids, S, 0);
    let types = (0..ROWS).map(|i| u32::from(i % S >= S / 2)).collect();
    let tables = [
        x.f32s(&[VOCAB, WIDTH], 1.0)?,
        x.f32s(&[S + 8, WIDTH], 1.0)?,
        x.f32s(&[2, WIDTH], 1.0)?,
    ];
    let tokens = TokenIds {
        ids: x.u32s(ids, &[B, S])?,
        types: x.u32s(types, &[B, S])?,
        positions: x.u32s(positions, &[B, S])?,
    };
    Ok((tokens, tables))
}
