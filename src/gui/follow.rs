//! Following a run's `metrics.jsonl` as it grows, whoever writes it: this app,
//! `squadlab train` in a terminal, or a server whose store is mounted here.
//! Only the bytes added since the last look are read.

use crate::store::EVENTS_FILE;
use crate::train::{EpochLog, EvalSummary, StartInfo, StepLog, TrainEvent};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// A run's history as columns, ready to plot.
#[derive(Default)]
pub struct Series {
    pub step: Vec<f64>,
    pub loss: Vec<f64>,
    pub grad_norm: Vec<f64>,
    pub learning_rate: Vec<f64>,
    pub epochs: Vec<EpochLog>,
    pub last: Option<StepLog>,
    pub started: Option<StartInfo>,
    pub eval: Option<EvalSummary>,
    pub paused: bool,
    /// Bumped on every change, so derived curves know when to recompute.
    pub version: u64,
    /// Bumped when logged steps are replaced (a resumed run), so derived
    /// curves know they cannot just be extended.
    pub rewrites: u64,
}

impl Series {
    pub fn push(&mut self, event: &TrainEvent) {
        self.version += 1;
        match event {
            TrainEvent::Step(s) => self.push_step(s),
            TrainEvent::EpochEnd(e) => {
                self.epochs.retain(|old| old.step < e.step);
                self.epochs.push(e.clone());
            }
            TrainEvent::Started(info) => {
                self.started = Some((**info).clone());
                self.paused = false;
            }
            TrainEvent::Evaluated(e) => self.eval = Some(e.clone()),
            TrainEvent::Finished(s) => self.eval = s.eval.clone().or(self.eval.take()),
            TrainEvent::Paused { .. } => self.paused = true,
            TrainEvent::Resumed { .. } => self.paused = false,
            _ => {}
        }
    }

    /// A resumed run logs the steps after its checkpoint again: the new entry
    /// replaces the old from that step on, as the run's history continued.
    fn push_step(&mut self, s: &StepLog) {
        let x = s.step as f64;
        let keep = self.step.partition_point(|&old| old < x);
        if keep < self.step.len() {
            self.rewrites += 1;
        }
        for column in [
            &mut self.step,
            &mut self.loss,
            &mut self.grad_norm,
            &mut self.learning_rate,
        ] {
            column.truncate(keep);
        }
        self.step.push(x);
        self.loss.push(s.loss);
        self.grad_norm.push(s.grad_norm);
        self.learning_rate.push(s.learning_rate);
        self.last = Some(s.clone());
    }

    pub fn len(&self) -> usize {
        self.step.len()
    }

    pub fn is_empty(&self) -> bool {
        self.step.is_empty()
    }
}

/// Where reading stopped in one run's event log.
#[derive(Default)]
pub struct Follower {
    offset: u64,
    /// The start of a line still being written.
    partial: Vec<u8>,
    pub series: Series,
    /// Lines that could not be read; shown on the run, never fatal.
    pub problems: Vec<String>,
    line: usize,
}

impl Follower {
    /// Reads whatever was appended since the last call. A log that shrank
    /// (rewritten or replaced) is read again from the start.
    pub fn poll(&mut self, dir: &Path) {
        let path = dir.join(EVENTS_FILE);
        let Ok(mut file) = std::fs::File::open(&path) else {
            return;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Counters move on, so curves derived from the old log are redrawn.
            let (version, rewrites) = (self.series.version, self.series.rewrites);
            *self = Self::default();
            self.series.version = version + 1;
            self.series.rewrites = rewrites + 1;
        }
        if len == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut added = Vec::new();
        if let Err(e) = file.take(len - self.offset).read_to_end(&mut added) {
            self.problems
                .push(format!("cannot read {}: {e}", path.display()));
            return;
        }
        self.offset += added.len() as u64;
        self.partial.extend_from_slice(&added);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in complete.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            self.line += 1;
            match serde_json::from_slice::<TrainEvent>(line) {
                Ok(event) => self.series.push(&event),
                Err(e) => self.problems.push(format!(
                    "{EVENTS_FILE}:{}: unreadable line ignored: {e}",
                    self.line
                )),
            }
        }
    }
}
