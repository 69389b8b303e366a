//! A run's whole event log read back: every event of `metrics.jsonl`, and
//! the lines a crash cut short or that could not be read, each reported.

use crate::schema::events::EVENTS_FILE;
use crate::schema::{EvalKind, EvalSummary, StepLog, SystemSample, TrainEvent};
use std::collections::BTreeMap;
use std::path::Path;

/// A run's event log as far as it can be read.
#[derive(Clone, Debug, Default)]
pub struct MetricsLog {
    pub events: Vec<TrainEvent>,
    pub problems: Vec<String>,
}

impl MetricsLog {
    /// One entry per step, in order. A resumed run logs the steps after its
    /// checkpoint again; the later entry is the one its history continued from.
    pub fn steps(&self) -> Vec<StepLog> {
        let mut by_step = BTreeMap::new();
        for e in &self.events {
            if let TrainEvent::Step(s) = e {
                by_step.insert(s.step, s.clone());
            }
        }
        by_step.into_values().collect()
    }

    /// Evaluations in order of step, in-training ones before the final one;
    /// a step evaluated again after a resume keeps its later entry.
    pub fn evaluations(&self) -> Vec<EvalSummary> {
        let mut by_step = BTreeMap::new();
        for e in &self.events {
            if let TrainEvent::Evaluated(e) = e {
                let last = e.kind == EvalKind::Final;
                by_step.insert((last, e.step), e.clone());
            }
        }
        by_step.into_values().collect()
    }

    /// The system samples in the order they were logged (each process of a
    /// resumed run counts its own elapsed time).
    pub fn system_samples(&self) -> Vec<SystemSample> {
        self.events
            .iter()
            .filter_map(|e| match e {
                TrainEvent::System(s) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Reads `metrics.jsonl`, skipping (and reporting) lines a crash cut short.
pub fn read_metrics(dir: &Path) -> MetricsLog {
    let path = dir.join(EVENTS_FILE);
    let mut log = MetricsLog::default();
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return log,
        Err(e) => {
            log.problems
                .push(format!("cannot read {}: {e}", path.display()));
            return log;
        }
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<TrainEvent>(line) {
            // A newer squadlab's event: nothing here reads it.
            Ok(TrainEvent::Unknown) => {}
            Ok(e) => log.events.push(e),
            Err(_) if i + 1 == lines.len() && !complete => log.problems.push(format!(
                "{EVENTS_FILE}:{}: last line cut short (a crash mid-write); ignored",
                i + 1
            )),
            Err(e) => log.problems.push(format!(
                "{EVENTS_FILE}:{}: unreadable line ignored: {e}",
                i + 1
            )),
        }
    }
    log
}

/// The step history of a run folder.
pub fn step_history(dir: &Path) -> Vec<StepLog> {
    read_metrics(dir).steps()
}
