//! `squadlab train` and `squadlab resume`: a run in the store, with a
//! progress bar, then evaluation; Ctrl-C cancels at the next step with a
//! checkpoint.

use super::args::{LabelArgs, StoreArgs};
use super::progress::ProgressReporter;
use super::Report;
use crate::config::{Device, RunConfig};
use crate::store::queue::{self, Held};
use crate::store::{self, RunLock, RunRecord, RunRecorder, RunStatus};
use crate::train::checkpoint;
use crate::train::{Control, EventSink, RunRequest, TrainEvent, TrainerHandle};
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
    #[command(flatten)]
    store: StoreArgs,
    /// Continue from a checkpoint folder (`<run>/checkpoints/checkpoint-N`).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Override the config's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the config's device: auto, cpu or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Train with the generic graph (`graph: generic`): CUDA's ops on any
    /// device, to check the CUDA path on the CPU.
    #[arg(long)]
    generic_graph: bool,
    /// Keep CUDA's f32 matrix products in full f32 (`tf32: false`).
    #[arg(long)]
    no_tf32: bool,
    /// Launch even when the memory planner says the step cannot fit the GPU.
    #[arg(long)]
    skip_memory_check: bool,
    /// Put the run in the store's queue instead of training it here: a
    /// `squadlab worker` (or the app) takes it.
    #[arg(long, conflicts_with_all = ["out", "resume"])]
    queue: bool,
    /// The run's name in listings (default: the config's `name`).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    labels: LabelArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ResumeArgs {
    /// The run: its id (or a unique prefix), name, folder, or `latest`.
    run: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Override the device: auto, cpu or cuda:N.
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
    if let Some(name) = &args.name {
        config.name = name.clone();
    }
    override_device(&mut config, args.device.as_deref())?;
    if args.generic_graph {
        config.graph = crate::config::Graph::Generic;
    }
    if args.no_tf32 {
        config.tf32 = false;
    }
    config.validate()?;
    if !args.skip_memory_check {
        if let Some(fit) = crate::memory::check_run(&config, &crate::memory::gpus::query_gpus()) {
            if fit.refuse {
                bail!("{} (or pass --skip-memory-check)", fit.message);
            }
            if fit.warn {
                eprintln!("warning: training {}", fit.message);
            }
        }
    }
    let new_record = |id: &str| RunRecord {
        id: id.to_string(),
        name: config.name.clone(),
        tags: args.labels.tags.clone(),
        notes: args.labels.notes.clone(),
        status: RunStatus::Queued,
        config: Some(config.clone()),
        ..RunRecord::default()
    };
    if args.queue {
        let store = args.store.open();
        let (id, dir) = store.create_run(|id, dir| new_record(id).save(dir))?;
        return Ok(Report {
            text: format!(
                "queued run {id} ({}); start a worker: squadlab worker\n",
                dir.display()
            ),
            json: json!({ "run_id": id, "run_dir": dir, "status": "queued" }),
        });
    }
    // The run's lock before anything else: a run is never trained by two
    // processes. A run in the store also waits for its device's slot, which
    // workers and the app take too; one in a folder of its own (--out) is
    // outside any store's queue.
    let (id, run_dir, lock, store_root) = match (&args.out, &args.resume) {
        (Some(out), None) => {
            store::claim_run_dir(out)?;
            let lock = RunLock::acquire(out)?;
            (folder_name(out), out.clone(), lock, None)
        }
        (Some(out), Some(_)) => {
            std::fs::create_dir_all(out)?;
            let lock = RunLock::acquire(out)?;
            (folder_name(out), out.clone(), lock, None)
        }
        (None, Some(ckpt)) => {
            let dir = run_of_checkpoint(ckpt)?;
            let lock = RunLock::acquire(&dir)?;
            let root = store_of(&dir);
            (folder_name(&dir), dir, lock, root)
        }
        (None, None) => {
            let store = args.store.open();
            let (id, dir, lock) = store.create_locked_run(|id, dir| new_record(id).save(dir))?;
            (id, dir, lock, Some(store.root))
        }
    };
    let mut record = match RunRecord::load(&run_dir) {
        Ok(existing) if args.resume.is_some() => existing,
        _ => new_record(&id),
    };
    record.status = RunStatus::Queued;
    record.config = Some(config.clone());
    let _slot = match &store_root {
        Some(root) => Some(wait_for_device(root, config.device)?),
        None => None,
    };
    launch(&run_dir, record, config, args.resume.clone(), lock)
}

/// Continues an unfinished run from its newest checkpoint. Refused while
/// another live process holds the run (named, with since when).
pub fn resume(args: &ResumeArgs) -> Result<Report> {
    let dir = args.store.open().find(&args.run)?;
    let lock = RunLock::acquire(&dir)?;
    let mut plan = store::plan_resume(&dir)?;
    override_device(&mut plan.config, args.device.as_deref())?;
    for why in &plan.unreadable {
        eprintln!("warning: skipping an unreadable checkpoint: {why}");
    }
    if plan.checkpoint.is_none() {
        eprintln!(
            "run {} has no checkpoint: training it again from step 0",
            plan.record.id
        );
    }
    let _slot = match store_of(&dir) {
        Some(root) => Some(wait_for_device(&root, plan.config.device)?),
        None => None,
    };
    launch(&plan.dir, plan.record, plan.config, plan.checkpoint, lock)
}

/// The store a run folder is in (`<store>/runs/<id>`); none for a folder of
/// its own (`--out`), which no store's queue or device slots cover.
fn store_of(dir: &Path) -> Option<PathBuf> {
    let runs = std::path::absolute(dir).ok()?.parent()?.to_path_buf();
    (runs.file_name()? == "runs").then(|| runs.parent().map(Path::to_path_buf))?
}

/// The store's slot for the device `device` trains on, waited for while
/// another process (a worker, the app) trains there.
fn wait_for_device(store_root: &Path, device: Device) -> Result<Held> {
    let key = queue::device_key(device);
    let mut said = false;
    loop {
        if let Some(slot) = queue::take_device(store_root, &key)? {
            return Ok(slot);
        }
        if !said {
            let who = queue::device_holder(store_root, &key)
                .map_or("another process".to_string(), |h| h.describe());
            eprintln!("waiting for {key}: {who} trains there");
            said = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn override_device(config: &mut RunConfig, device: Option<&str>) -> Result<()> {
    if let Some(device) = device {
        config.device = device
            .parse::<Device>()
            .map_err(|e| anyhow!("--device: {e}"))?;
    }
    Ok(())
}

/// Runs the trainer on its thread, feeding its events to the run store and
/// the progress bar, and reports how the run ended.
/// The caller holds the run's lock (`lock`), which the recorder keeps until
/// the run ends: a run is never written by two processes.
pub(super) fn launch(
    run_dir: &Path,
    record: RunRecord,
    config: RunConfig,
    resume: Option<PathBuf>,
    lock: RunLock,
) -> Result<Report> {
    let id = record.id.clone();
    let mut recorder = RunRecorder::open(run_dir, record, lock)?;
    let handle = TrainerHandle::spawn(RunRequest {
        config,
        run_dir: run_dir.to_path_buf(),
        resume,
    })?;
    cancel_on_ctrl_c(handle.controller());
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
                "run: {id} ({})\n{}exact_match: {:.2}\nf1: {:.2}\n",
                s.run_dir.display(),
                s.describe(),
                eval.exact_match,
                eval.f1
            );
            Ok(Report {
                text,
                json: json!({
                    "run_id": id,
                    "exact_match": eval.exact_match,
                    "f1": eval.f1,
                    "train_runtime": s.train_runtime,
                    "train_samples_per_second": s.train_samples_per_second,
                    "train_steps_per_second": s.train_steps_per_second,
                    "train_loss": s.train_loss,
                    "total_flos": s.total_flos,
                    "global_step": s.global_step,
                    "best": s.best.as_ref().map(|b| json!({
                        "step": b.step,
                        "metric": b.metric.name(),
                        "value": b.value,
                        "checkpoint": b.checkpoint,
                        "loaded_at_end": s.loaded_best,
                    })),
                    "run_dir": s.run_dir,
                }),
            })
        }
        Some(TrainEvent::Cancelled { step, checkpoint }) => match checkpoint {
            Some(c) => bail!(
                "cancelled at step {step}; checkpoint {} (continue with: squadlab resume {})",
                c.display(),
                run_dir.display()
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

fn folder_name(dir: &Path) -> String {
    std::path::absolute(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "run".into())
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
/// The run Ctrl-C cancels: the one launched last in this process (a worker
/// launches several, and a process gets one Ctrl-C handler).
static CURRENT_RUN: std::sync::Mutex<Option<crossbeam_channel::Sender<Control>>> =
    std::sync::Mutex::new(None);
static CTRL_C_PRESSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Asks the run launched last in this process to stop at its next step with
/// a checkpoint; false when none was launched yet.
pub fn cancel_current_run() -> bool {
    CURRENT_RUN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|c| c.send(Control::Cancel).is_ok())
}

/// Whether Ctrl-C was pressed: a worker then stops taking runs.
pub fn ctrl_c_pressed() -> bool {
    CTRL_C_PRESSED.load(std::sync::atomic::Ordering::SeqCst)
}

fn cancel_on_ctrl_c(control: crossbeam_channel::Sender<Control>) {
    *CURRENT_RUN.lock().unwrap_or_else(|e| e.into_inner()) = Some(control);
    handle_ctrl_c();
}

/// Installs the Ctrl-C handler once: a first press cancels the current run
/// (if any) at its next step boundary and tells a worker to stop; a second
/// quits. A worker installs it before its first run too, so that an idle
/// worker stops on SIGINT even where it was started with SIGINT ignored (a
/// background job of a non-interactive shell).
pub fn handle_ctrl_c() {
    static HANDLER: std::sync::Once = std::sync::Once::new();
    HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if CTRL_C_PRESSED.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ncancelling at the next step boundary (Ctrl-C again to quit now)…");
            if let Some(control) = CURRENT_RUN
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            {
                let _ = control.send(Control::Cancel);
            }
        });
    });
}
