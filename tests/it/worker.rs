//! The store's queue: claims under contention, workers in several processes
//! sharing one store, and a worker stopped by Ctrl-C handing its run back.

use crate::common;

use common::{spawn_worker, step_losses, tiny_run_config, tiny_task, train_straight};
use squadlab::store::queue::{claim, is_claimable};
use squadlab::store::{new_run, RunEntry, RunRecord, RunStatus, Shown, Store};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn queue_runs(store: &Store, config: &squadlab::config::RunConfig, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let mut c = config.clone();
            c.name = format!("tiny {i}");
            new_run(store, &c, &[], "").unwrap().0
        })
        .collect()
}

fn events(dir: &Path, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == kind)
        .collect()
}

#[test]
fn every_queued_run_is_claimed_by_exactly_one_of_many_racing_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let store = Store::open(Some(&tmp.path().join("store")));
    let dirs = queue_runs(&store, &tiny_run_config(&json, &model), 24);
    for d in &dirs {
        let entry = RunEntry::load(d);
        assert_eq!(
            entry.shown,
            Shown::Is(RunStatus::Queued),
            "queued, not interrupted"
        );
        assert!(is_claimable(&entry));
    }
    let won = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (dirs, won) = (dirs.clone(), won.clone());
            std::thread::spawn(move || {
                // Each thread walks the runs from its own starting point.
                for i in 0..dirs.len() {
                    let dir = &dirs[(i + t * 3) % dirs.len()];
                    if let Some(held) = claim(dir).unwrap() {
                        won.lock().unwrap().push((dir.clone(), held));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let won = won.lock().unwrap();
    let mut claimed: Vec<&PathBuf> = won.iter().map(|(d, _)| d).collect();
    claimed.sort();
    claimed.dedup();
    assert_eq!(won.len(), dirs.len(), "one claim per run, none twice");
    assert_eq!(claimed.len(), dirs.len(), "no run lost");
    assert!(dirs.iter().all(|d| !is_claimable(&RunEntry::load(d))));
}

#[test]
fn workers_in_several_processes_train_every_queued_run_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let root = tmp.path().join("store");
    let store = Store::open(Some(&root));
    let config = squadlab::config::RunConfig {
        max_steps: Some(3),
        save_strategy: squadlab::config::SaveStrategy::No,
        ..tiny_run_config(&json, &model)
    };
    let dirs = queue_runs(&store, &config, 6);
    let workers: Vec<_> = (0..3).map(|_| spawn_worker(&root, &[])).collect();
    let mut trained = 0;
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        trained += report["runs"].as_array().unwrap().len();
    }
    assert_eq!(trained, dirs.len(), "every run trained by one worker");
    for d in &dirs {
        let record = RunRecord::load(d).unwrap();
        assert_eq!(record.status, RunStatus::Finished, "{}", d.display());
        assert_eq!(
            events(d, "started").len(),
            1,
            "{} started once",
            d.display()
        );
        assert!(!d.join("run.lock").exists(), "lock released");
    }
}

#[test]
fn ctrl_c_puts_the_run_back_in_the_queue_and_the_next_worker_resumes_it_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let root = tmp.path().join("store");
    let store = Store::open(Some(&root));
    let config = squadlab::config::RunConfig {
        max_steps: Some(12),
        save_strategy: squadlab::config::SaveStrategy::No,
        ..tiny_run_config(&json, &model)
    };
    let dir = queue_runs(&store, &config, 1).remove(0);

    // Slowed so Ctrl-C lands mid-run.
    let mut worker = spawn_worker(&root, &[(squadlab::faults::SLOW_STEP_MS, "300")]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while events(&dir, "step").len() < 3 {
        assert!(Instant::now() < deadline, "the run never reached step 3");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling a child process we spawned.
    unsafe { libc::kill(worker.id() as i32, libc::SIGINT) };
    assert!(worker.wait().unwrap().success());
    let mut stdout = String::new();
    std::io::Read::read_to_string(worker.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        report["requeued"],
        dir.file_name().unwrap().to_str().unwrap()
    );
    let entry = RunEntry::load(&dir);
    assert_eq!(
        entry.shown,
        Shown::Is(RunStatus::Queued),
        "back in the queue"
    );
    assert!(is_claimable(&entry));
    let stopped_at = events(&dir, "cancelled")[0]["step"].as_u64().unwrap();
    assert!(stopped_at < 12);

    let second = spawn_worker(&root, &[]).wait_with_output().unwrap();
    assert!(second.status.success());
    assert_eq!(RunRecord::load(&dir).unwrap().status, RunStatus::Finished);
    let resumed = step_losses(&dir);
    assert_eq!(resumed.last().unwrap().0, 12);
    // The same run uninterrupted: its losses equal the resumed run's, step by step.
    assert_eq!(resumed, step_losses(&train_straight(tmp.path(), &config)));
}
