//! A run on its own thread: the front end gets the event stream and a control
//! channel, and never blocks on the training.

use super::control::Control;
use super::prepare::prepare;
use super::system::{EventSender, Sampler};
use super::trainer::Trainer;
use crate::config::RunConfig;
use crate::schema::events::TrainEvent;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use std::path::PathBuf;
use std::thread::JoinHandle;

/// What to run: a config, the folder it writes, and optionally a checkpoint to continue.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub config: RunConfig,
    pub run_dir: PathBuf,
    pub resume: Option<PathBuf>,
}

pub struct TrainerHandle {
    pub events: Receiver<TrainEvent>,
    control: Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

/// Events buffered before the trainer waits for its listener: a listener that
/// lags by this much slows training rather than growing memory without bound.
const EVENT_BUFFER: usize = 4096;

impl TrainerHandle {
    pub fn spawn(request: RunRequest) -> std::io::Result<Self> {
        Self::spawn_with_threads(request, None)
    }

    /// As [`spawn`](Self::spawn), with the run's compute on its own pool of
    /// `threads` workers (None: the global pool), so a desktop keeps cores free.
    pub fn spawn_with_threads(
        request: RunRequest,
        threads: Option<usize>,
    ) -> std::io::Result<Self> {
        let pool = match threads {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n.max(1))
                    .thread_name(|i| format!("squadlab-compute-{i}"))
                    .build()
                    .map_err(std::io::Error::other)?,
            ),
            None => None,
        };
        let (event_tx, event_rx) = bounded(EVENT_BUFFER);
        let (control_tx, control_rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name("squadlab-trainer".into())
            .spawn(move || match pool {
                // `install` runs the whole closure on one worker of the pool:
                // the device is created, filled and driven from that thread
                // alone (CUDA's per-thread stream); the pool's other workers
                // only run the host-side parallel loops (windowing, scoring,
                // the CPU optimizer), which never touch a device tensor.
                Some(pool) => pool.install(|| run_to_end(request, &event_tx, &control_rx)),
                None => run_to_end(request, &event_tx, &control_rx),
            })?;
        Ok(Self {
            events: event_rx,
            control: control_tx,
            thread: Some(thread),
        })
    }

    /// A sender for pause, resume and cancel requests (cloneable, e.g. for a Ctrl-C handler).
    pub fn controller(&self) -> Sender<Control> {
        self.control.clone()
    }

    pub fn send(&self, control: Control) {
        let _ = self.control.send(control);
    }

    /// Waits for the trainer thread to exit.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the request, turning every error (and panic) into a `Failed` event.
fn run_to_end(request: RunRequest, events: &Sender<TrainEvent>, control: &Receiver<Control>) {
    let events = &EventSender::new(events.clone());
    // What the run costs, sampled until its last event (GPUs on CUDA runs).
    let gpus = request.config.device != crate::config::Device::Cpu && crate::model::CUDA_BUILT;
    let _sampler = Sampler::start(events.clone(), gpus);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut status = |message: String| {
            let _ = events.send(TrainEvent::Status { message });
        };
        let prepared = prepare(&request.config, request.resume.as_deref(), &mut status)?;
        Trainer::new(prepared, &request.run_dir, events, control).run()
    }));
    let error = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(e)) => format!("{e:#}"),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            format!("internal error in the trainer: {what}")
        }
    };
    let _ = events.send(TrainEvent::Failed { error });
}
