//! `squadlab train`: one run from a config, with a progress bar, then
//! evaluation; Ctrl-C cancels at the next step with a checkpoint.

use super::progress::ProgressReporter;
use super::Report;
use crate::config::{Device, RunConfig};
use crate::store::{self, RunRecorder};
use crate::train::{checkpoint, Control, EventSink, RunRequest, TrainEvent, TrainerHandle};
use anyhow::{anyhow, bail, Result};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct TrainArgs {
    /// The run config (RON); optional with --resume, which reuses the checkpoint's.
    config: Option<PathBuf>,
    /// The folder the run writes; default: a new run folder in the store.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The store holding run folders (default: $SQUADLAB_HOME, else experiments/).
    #[arg(long)]
    store: Option<PathBuf>,
    /// Continue from a checkpoint folder (`<run>/checkpoints/checkpoint-N`).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Override the config's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the config's device: auto, cpu or cuda:N.
    #[arg(long)]
    device: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &TrainArgs) -> Result<Report> {
    let mut config = match (&args.config, &args.resume) {
        (Some(path), _) => RunConfig::load(path)?,
        (None, Some(dir)) => checkpoint::load_run_config(dir)?,
        (None, None) => bail!("give a config file, or --resume CHECKPOINT"),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(device) = &args.device {
        config.device = device
            .parse::<Device>()
            .map_err(|e| anyhow!("--device: {e}"))?;
    }
    let run_dir = run_dir(args, &config)?;
    store::write_config(&run_dir, &config)?;
    let handle = TrainerHandle::spawn(RunRequest {
        config,
        run_dir: run_dir.clone(),
        resume: args.resume.clone(),
    })?;
    cancel_on_ctrl_c(handle.controller());

    let mut recorder = RunRecorder::open(&run_dir)?;
    let mut progress = ProgressReporter::default();
    let mut last = None;
    for event in handle.events.iter() {
        recorder.on_event(&event)?;
        progress.on_event(&event)?;
        if event.is_terminal() {
            last = Some(event);
            break;
        }
    }
    handle.join();
    match last {
        Some(TrainEvent::Finished(s)) => {
            let eval = s.eval.clone().ok_or_else(|| anyhow!("the run ended without evaluation"))?;
            let text = format!(
                "run: {}\nsteps: {} ({:.2} epochs)\ntrain_runtime: {:.1} s\ntrain_samples_per_second: {:.3}\ntrain_steps_per_second: {:.3}\ntotal_flos: {:.3e}\ntrain_loss: {:.4}\nexact_match: {:.2}\nf1: {:.2}\n",
                s.run_dir.display(),
                s.global_step,
                s.epoch,
                s.train_runtime,
                s.train_samples_per_second,
                s.train_steps_per_second,
                s.total_flos,
                s.train_loss,
                eval.exact_match,
                eval.f1
            );
            Ok(Report {
                text,
                json: json!({
                    "exact_match": eval.exact_match,
                    "f1": eval.f1,
                    "train_runtime": s.train_runtime,
                    "train_samples_per_second": s.train_samples_per_second,
                    "train_steps_per_second": s.train_steps_per_second,
                    "train_loss": s.train_loss,
                    "total_flos": s.total_flos,
                    "global_step": s.global_step,
                    "run_dir": s.run_dir,
                }),
            })
        }
        Some(TrainEvent::Cancelled { step, checkpoint }) => match checkpoint {
            Some(c) => bail!(
                "cancelled at step {step}; checkpoint {} (continue with: squadlab train --resume {})",
                c.display(),
                c.display()
            ),
            None => bail!("cancelled at step {step}"),
        },
        Some(TrainEvent::Diverged {
            step,
            loss,
            grad_norm,
            last_checkpoint,
        }) => bail!(
            "diverged at step {step} (loss {loss}, grad-norm {grad_norm}); last good checkpoint: {}",
            last_checkpoint.map_or("none".into(), |p| p.display().to_string())
        ),
        Some(TrainEvent::Failed { error }) => Err(anyhow!(error)),
        _ => bail!("the trainer stopped without a final event"),
    }
}

/// `--out`, else the run folder of the resumed checkpoint, else a new one in the store.
fn run_dir(args: &TrainArgs, config: &RunConfig) -> Result<PathBuf> {
    match (&args.out, &args.resume) {
        (Some(out), None) => {
            store::claim_run_dir(out)?;
            Ok(out.clone())
        }
        (Some(out), Some(_)) => {
            std::fs::create_dir_all(out)?;
            Ok(out.clone())
        }
        (None, Some(ckpt)) => run_of_checkpoint(ckpt),
        (None, None) => store::new_run_dir(&store::store_root(args.store.as_deref()), config),
    }
}

fn run_of_checkpoint(ckpt: &Path) -> Result<PathBuf> {
    ckpt.parent()
        .filter(|p| p.file_name().is_some_and(|n| n == "checkpoints"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            anyhow!(
                "{} is not inside a run's checkpoints/ folder; give --out for the resumed run",
                ckpt.display()
            )
        })
}

/// The first Ctrl-C asks the trainer to stop at the next step and checkpoint;
/// a second one exits at once.
fn cancel_on_ctrl_c(control: crossbeam_channel::Sender<Control>) {
    let pressed = std::sync::atomic::AtomicBool::new(false);
    let _ = ctrlc::set_handler(move || {
        if pressed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ncancelling at the next step boundary (Ctrl-C again to quit now)…");
        let _ = control.send(Control::Cancel);
    });
}
