//! Synthetic finished runs for the app benches: a record and `steps` logged
//! steps of a plausible loss curve, different per run.

use squadlab::store::{Outcome, RunRecord, RunStatus, EVENTS_FILE};
use squadlab::train::{StepLog, TrainEvent};
use std::io::Write;
use std::path::Path;

/// Writes run `index` into `store`, returning its id.
pub fn synthetic_run(store: &Path, index: usize, steps: u64) -> String {
    let id = format!("20260101-{index:06}-b{index:03}");
    let dir = store.join("runs").join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    RunRecord {
        id: id.clone(),
        name: format!("run {index}"),
        status: RunStatus::Finished,
        outcome: Outcome::default(),
        ..RunRecord::default()
    }
    .save(&dir)
    .unwrap();
    // One buffer and one write per run: the 50-run store is ~0.9 GB.
    let mut log = Vec::with_capacity(steps as usize * 200);
    let mut noise = 0x9e3779b97f4a7c15u64 ^ index as u64;
    for step in 1..=steps {
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        let jitter = (noise % 1000) as f64 / 1000.0 - 0.5;
        let t = step as f64 / steps as f64;
        let event = TrainEvent::Step(StepLog {
            step,
            epoch: 3.0 * t,
            loss: 5.0 * (-4.0 * t).exp() + 0.8 + 0.4 * jitter + 0.1 * index as f64,
            grad_norm: 8.0 + 3.0 * jitter,
            learning_rate: 2e-5 * (1.0 - t),
            samples_per_second: 40.0,
            elapsed_seconds: step as f64 * 0.8,
        });
        serde_json::to_writer(&mut log, &event).unwrap();
        log.write_all(b"\n").unwrap();
    }
    std::fs::write(dir.join(EVENTS_FILE), log).unwrap();
    id
}
