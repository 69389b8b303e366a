//! Runs this app launched: each trains on its own thread, with a forwarder
//! thread that hands every event to the run store first (so nothing depends on
//! the UI drawing frames) and then to the UI, waking it. Runs wait in a queue
//! while their device is busy: one run per device at a time.

use crate::config::{Device, RunConfig};
use crate::store::{RunRecord, RunRecorder};
use crate::train::{Control, EventSink, RunRequest, TrainEvent, TrainerHandle};
use anyhow::Result;
use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
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
    control: Option<Sender<Control>>,
    events: Option<Receiver<TrainEvent>>,
}

struct Pending {
    request: RunRequest,
    recorder: RunRecorder,
    threads: Option<usize>,
}

/// Events waiting for the UI; the store never waits for it.
const UI_BUFFER: usize = 1024;

#[derive(Default)]
pub struct Jobs {
    pub list: Vec<Job>,
}

/// The device a config trains on, as a queue key.
pub fn device_key(config: &RunConfig) -> String {
    match config.device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        Device::Auto if cfg!(feature = "cuda") => "cuda:0".into(),
        Device::Auto => "cpu".into(),
    }
}

impl Jobs {
    /// Queues a run: its folder is locked and marked queued at once, so other
    /// processes see it waiting rather than interrupted.
    pub fn submit(
        &mut self,
        dir: PathBuf,
        record: RunRecord,
        config: RunConfig,
        resume: Option<PathBuf>,
        threads: Option<usize>,
    ) -> Result<()> {
        let id = record.id.clone();
        let recorder = RunRecorder::open(&dir, record)?;
        self.list.push(Job {
            id,
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
                recorder,
                threads,
            }),
            control: None,
            events: None,
        });
        Ok(())
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
                self.list[i].start(ctx);
                changed.push(self.list[i].id.clone());
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
    fn start(&mut self, ctx: &egui::Context) {
        let Some(Pending {
            request,
            mut recorder,
            threads,
        }) = self.pending.take()
        else {
            return;
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
        let forwarder = std::thread::Builder::new()
            .name("squadlab-run-events".into())
            .spawn(move || forward(handle, recorder, tx, ctx));
        if let Err(e) = forwarder {
            self.end(Some(format!("cannot start the event thread: {e}")));
        }
    }

    fn cancel_queued(&mut self) {
        if let Some(mut pending) = self.pending.take() {
            let _ = pending.recorder.on_event(&TrainEvent::Cancelled {
                step: 0,
                checkpoint: None,
            });
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
    ctx.request_repaint();
}
