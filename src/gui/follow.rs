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
    /// Reads what was appended since the last call, at most `budget` bytes
    /// of it so a long log loads over a few frames instead of freezing one;
    /// returns the bytes read and whether more is waiting. A log that shrank
    /// (rewritten or replaced) is read again from the start.
    pub fn poll(&mut self, dir: &Path, budget: u64) -> (u64, bool) {
        let path = dir.join(EVENTS_FILE);
        let Ok(mut file) = std::fs::File::open(&path) else {
            return (0, false);
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
            return (0, false);
        }
        let mut added = Vec::new();
        if let Err(e) = file
            .take((len - self.offset).min(budget))
            .read_to_end(&mut added)
        {
            let problem = format!("cannot read {}: {e}", path.display());
            if !self.problems.contains(&problem) {
                self.problems.push(problem);
            }
            return (0, false);
        }
        self.offset += added.len() as u64;
        self.partial.extend_from_slice(&added);
        let read = (added.len() as u64, self.offset < len);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return read;
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
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::StepLog;
    use std::io::Write;

    fn step(step: u64, loss: f64) -> String {
        let e = TrainEvent::Step(StepLog {
            step,
            epoch: 0.0,
            loss,
            grad_norm: 1.0,
            learning_rate: 1e-5,
            samples_per_second: 1.0,
            elapsed_seconds: 1.0,
        });
        serde_json::to_string(&e).unwrap() + "\n"
    }

    #[test]
    fn follows_a_growing_log_in_small_reads_as_one_read_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EVENTS_FILE);
        let text: String = (1..=500).map(|s| step(s, s as f64)).collect();
        // Written with the last line cut in half, as a live writer leaves it.
        let cut = text.len() - 40;
        std::fs::write(&path, &text[..cut]).unwrap();
        let mut f = Follower::default();
        let mut polls = 0;
        while f.poll(dir.path(), 1000).1 {
            polls += 1;
        }
        assert!(polls > 10, "{polls}");
        assert_eq!(f.series.len(), 499, "the cut line waits");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&text.as_bytes()[cut..])
            .unwrap();
        f.poll(dir.path(), u64::MAX);
        assert_eq!(f.series.len(), 500);
        assert_eq!(
            f.series.loss,
            (1..=500).map(|s| s as f64).collect::<Vec<_>>()
        );
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        // A resumed run logs steps again from its checkpoint: they replace the old ones.
        let rewrites = f.series.rewrites;
        let again: String = (401..=450).map(|s| step(s, -(s as f64))).collect();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(again.as_bytes())
            .unwrap();
        f.poll(dir.path(), u64::MAX);
        assert_eq!(f.series.len(), 450);
        assert_eq!(f.series.loss[449], -450.0);
        assert!(f.series.rewrites > rewrites);
        // A log replaced by a shorter one is read again from the start.
        let version = f.series.version;
        std::fs::write(&path, step(1, 7.0)).unwrap();
        f.poll(dir.path(), u64::MAX);
        assert_eq!(f.series.loss, vec![7.0]);
        assert!(
            f.series.version > version,
            "curves derived from the old log are redrawn"
        );
    }
}
