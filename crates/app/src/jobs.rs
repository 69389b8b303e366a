//! Runs this app launched: each trains on its own thread, with a forwarder
//! thread that hands every event to the run store first (so nothing depends on
//! the UI drawing frames) and then to the UI, waking it.
//!
//! The queue is the store's (`store::queue`): a submitted run is saved as
//! queued with no lock, so a `squadlab worker` may take it, and the app may
//! take runs queued elsewhere (`adopt`). A run starts once this app holds its
//! device's slot on this host and the run's lock: one run per device per host.

use anyhow::Result;
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use squadlab_core::config::RunConfig;
use squadlab_core::store::queue::{self, Held};
use squadlab_core::store::RunLock;
use squadlab_core::store::{RunRecord, RunRecorder, RunStatus};
use squadlab_core::train::{Control, EventSink, RunRequest, TrainEvent, TrainerHandle};
use std::path::PathBuf;

/// What the UI hears from a job.
pub enum JobState {
    Queued,
    Running,
    Ended,
}

pub struct Job {
    pub id: String,
    pub dir: PathBuf,
    pub device: String,
    pub state: JobState,
    /// The trainer's latest progress text ("tokenizing…", "evaluating…").
    pub status: String,
    pub paused: bool,
    /// How the run ended, when it did not finish: shown on the run.
    pub error: Option<String>,
    pending: Option<Pending>,
    /// When a queued job may next try for its device slot and claim (file
    /// operations, so not every frame).
    next_try: std::time::Instant,
    control: Option<Sender<Control>>,
    events: Option<Receiver<TrainEvent>>,
}

struct Pending {
    request: RunRequest,
    record: RunRecord,
    threads: Option<usize>,
}

/// Events waiting for the UI; the store never waits for it.
const UI_BUFFER: usize = 1024;

#[derive(Default)]
pub struct Jobs {
    pub list: Vec<Job>,
    /// The store whose queue and device slots the runs share.
    pub store_root: PathBuf,
}

/// The device a config trains on, as a queue key.
pub fn device_key(config: &RunConfig) -> String {
    queue::device_key(config.device)
}

impl Jobs {
    /// Queues a run in the store: saved as queued with no lock, so this app
    /// or any worker may take it.
    pub fn submit(
        &mut self,
        dir: PathBuf,
        mut record: RunRecord,
        config: RunConfig,
        resume: Option<PathBuf>,
        threads: Option<usize>,
    ) -> Result<()> {
        record.status = RunStatus::Queued;
        record.config = Some(config.clone());
        record.save_keeping_labels(&dir)?;
        self.list.push(Job {
            id: record.id.clone(),
            device: device_key(&config),
            dir: dir.clone(),
            state: JobState::Queued,
            status: "queued: waiting for the device".into(),
            paused: false,
            error: None,
            pending: Some(Pending {
                request: RunRequest {
                    config,
                    run_dir: dir,
                    resume,
                },
                record,
                threads,
            }),
            next_try: std::time::Instant::now(),
            control: None,
            events: None,
        });
        Ok(())
    }

    /// Takes the store's claimable runs (queued by the CLI, a sweep or
    /// another app) into this app's queue, resuming any that left a
    /// checkpoint. Returns their ids.
    pub fn adopt(
        &mut self,
        store: &squadlab_core::store::Store,
        threads: Option<usize>,
    ) -> Vec<String> {
        let Ok(entries) = store.list() else {
            return Vec::new();
        };
        let mut adopted = Vec::new();
        for entry in entries {
            let known = self
                .list
                .iter()
                .any(|j| j.dir == entry.dir && !matches!(j.state, JobState::Ended));
            if known || !queue::is_claimable(&entry) {
                continue;
            }
            if let Ok(plan) = squadlab_core::store::plan_resume(&entry.dir) {
                let id = plan.record.id.clone();
                if self
                    .submit(plan.dir, plan.record, plan.config, plan.checkpoint, threads)
                    .is_ok()
                {
                    adopted.push(id);
                }
            }
        }
        adopted
    }

    pub fn active(&self) -> usize {
        self.list
            .iter()
            .filter(|j| !matches!(j.state, JobState::Ended))
            .count()
    }

    pub fn get(&self, id: &str) -> Option<&Job> {
        self.list.iter().rev().find(|j| j.id == id)
    }

    /// Drains every job's events and starts queued runs whose device is free.
    /// Returns the ids of runs that changed.
    pub fn poll(&mut self, ctx: &egui::Context) -> Vec<String> {
        let mut changed = Vec::new();
        for job in &mut self.list {
            if job.drain() {
                changed.push(job.id.clone());
            }
        }
        for i in 0..self.list.len() {
            let busy = self
                .list
                .iter()
                .any(|j| matches!(j.state, JobState::Running) && j.device == self.list[i].device);
            if !busy && matches!(self.list[i].state, JobState::Queued) {
                let root = self.store_root.clone();
                if self.list[i].try_start(&root, ctx) {
                    changed.push(self.list[i].id.clone());
                }
            }
        }
        changed
    }

    pub fn control(&mut self, id: &str, control: Control) {
        let Some(job) = self.list.iter_mut().rev().find(|j| j.id == id) else {
            return;
        };
        match (&job.state, control) {
            (JobState::Queued, Control::Cancel) => job.cancel_queued(),
            (JobState::Running, c) => {
                if let Some(tx) = &job.control {
                    let _ = tx.send(c);
                }
            }
            _ => {}
        }
    }

    /// Asks every run to stop at its next step with a checkpoint.
    pub fn cancel_all(&mut self) {
        let ids: Vec<String> = self.list.iter().map(|j| j.id.clone()).collect();
        for id in ids {
            self.control(&id, Control::Cancel);
        }
    }
}

impl Job {
    /// Starts the run if this app gets its device's slot and its claim;
    /// true when the job changed (started, or taken by another process).
    fn try_start(&mut self, store_root: &std::path::Path, ctx: &egui::Context) -> bool {
        let now = std::time::Instant::now();
        if now < self.next_try {
            return false;
        }
        self.next_try = now + std::time::Duration::from_millis(500);
        let slot = match queue::take_device(store_root, &self.device) {
            Ok(Some(slot)) => slot,
            Ok(None) => {
                self.status = format!("queued: {} is busy in another process", self.device);
                return false;
            }
            Err(e) => {
                self.end(Some(format!("cannot take the device slot: {e:#}")));
                return true;
            }
        };
        let claim = match queue::claim(&self.dir) {
            Ok(Some(claim)) => claim,
            Ok(None) => {
                self.pending = None;
                self.status = "taken by another process (a worker)".into();
                self.end(None);
                return true;
            }
            Err(e) => {
                self.end(Some(format!("cannot claim the run: {e:#}")));
                return true;
            }
        };
        self.start(ctx, slot, claim);
        true
    }

    fn start(&mut self, ctx: &egui::Context, slot: Held, claim: RunLock) {
        let Some(Pending {
            request,
            record,
            threads,
        }) = self.pending.take()
        else {
            return;
        };
        let mut recorder = match RunRecorder::open(&self.dir, record, claim) {
            Ok(r) => r,
            Err(e) => {
                self.end(Some(format!("cannot open the run: {e:#}")));
                return;
            }
        };
        let handle = match TrainerHandle::spawn_with_threads(request, threads) {
            Ok(h) => h,
            Err(e) => {
                let error = format!("cannot start the trainer thread: {e}");
                let _ = recorder.on_event(&TrainEvent::Failed {
                    error: error.clone(),
                });
                self.end(Some(error));
                return;
            }
        };
        let (tx, rx) = bounded(UI_BUFFER);
        self.control = Some(handle.controller());
        self.events = Some(rx);
        self.state = JobState::Running;
        self.status = "starting".into();
        let ctx = ctx.clone();
        // The slot and the run's lock go with the run: freed when its events end.
        let forwarder = std::thread::Builder::new()
            .name("squadlab-run-events".into())
            .spawn(move || forward(handle, recorder, tx, ctx, slot));
        if let Err(e) = forwarder {
            self.end(Some(format!("cannot start the event thread: {e}")));
        }
    }

    /// Cancels a run before it started: claimed first, so a worker that
    /// takes it at the same moment wins or loses cleanly.
    fn cancel_queued(&mut self) {
        if let Some(pending) = self.pending.take() {
            if let Ok(Some(_claim)) = queue::claim(&self.dir) {
                let mut record = pending.record;
                record.status = RunStatus::Cancelled;
                let _ = record.save_keeping_labels(&self.dir);
            }
        }
        self.end(Some("cancelled before it started".into()));
    }

    fn end(&mut self, error: Option<String>) {
        self.state = JobState::Ended;
        self.error = error;
        self.control = None;
        self.events = None;
    }

    /// Takes the events that arrived; true when any did.
    fn drain(&mut self) -> bool {
        let Some(rx) = self.events.clone() else {
            return false;
        };
        let mut any = false;
        loop {
            match rx.try_recv() {
                Ok(event) => {
                    any = true;
                    self.note(&event);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if !matches!(self.state, JobState::Ended) {
                        let error = self.error.take();
                        self.end(error);
                    }
                    any = true;
                    break;
                }
            }
        }
        any
    }

    fn note(&mut self, event: &TrainEvent) {
        match event {
            TrainEvent::Status { message } => self.status = message.clone(),
            TrainEvent::Started(_) => self.status = "training".into(),
            TrainEvent::Paused { step } => {
                self.paused = true;
                self.status = format!("paused at step {step}");
            }
            TrainEvent::Resumed { .. } => {
                self.paused = false;
                self.status = "training".into();
            }
            TrainEvent::Finished(_) => self.status = "finished".into(),
            TrainEvent::Failed { error } => self.error = Some(error.clone()),
            TrainEvent::Cancelled { step, checkpoint } => {
                self.error = Some(match checkpoint {
                    Some(c) => format!("cancelled at step {step}; resumable from {}", c.display()),
                    None => format!("cancelled at step {step}, before any checkpoint"),
                })
            }
            TrainEvent::Diverged { step, loss, .. } => {
                self.error = Some(format!("diverged at step {step} (loss {loss})"))
            }
            _ => {}
        }
    }
}

/// The store first, then the UI. Steps are left to the UI's reading of the
/// event log; a UI that lags never slows the run or loses a record.
fn forward(
    handle: TrainerHandle,
    mut recorder: RunRecorder,
    ui: Sender<TrainEvent>,
    ctx: egui::Context,
    slot: Held,
) {
    for event in handle.events.iter() {
        if let Err(e) = recorder.on_event(&event) {
            let _ = ui.try_send(TrainEvent::Status {
                message: format!("the run store could not record an event: {e:#}"),
            });
        }
        let terminal = event.is_terminal();
        match event {
            TrainEvent::Step(_) => {}
            // Progress text is only worth showing while it is fresh.
            TrainEvent::Status { .. } => {
                let _ = ui.try_send(event);
            }
            _ => {
                let _ = ui.send_timeout(event, std::time::Duration::from_secs(1));
            }
        }
        ctx.request_repaint();
        if terminal {
            break;
        }
    }
    handle.join();
    // The run's lock (with the recorder) first, then the slot.
    drop(recorder);
    drop(slot);
    ctx.request_repaint();
}
