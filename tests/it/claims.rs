//! One run, one writer, with the races forced rather than hoped for:
//! `SQUADLAB_FAULT_CLAIM_PAUSE_MS` holds every taker inside the windows where
//! two used to both win (a claim written but not yet in place; a dead
//! holder's lock judged stale but not yet replaced), so racing processes
//! always overlap there.

use crate::common;

use common::{squadlab, tiny_run_config, tiny_task};
use squadlab::config::RunConfig;
use squadlab::store::{new_run, LockInfo, RunRecord, RunStatus, Store, LOCK_FILE};
use std::path::Path;
use std::process::Output;

const PAUSE: (&str, &str) = ("SQUADLAB_FAULT_CLAIM_PAUSE_MS", "400");

fn short(mut config: RunConfig) -> RunConfig {
    config.max_steps = Some(3);
    config.data.max_eval_samples = Some(8);
    config
}

fn started_events(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("\"event\":\"started\""))
        .count()
}

/// `squadlab resume ID` in `n` processes at once, each held in the claim
/// windows, all waited for.
fn racing_resumes(store: &Path, id: &str, n: usize) -> Vec<Output> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            squadlab()
                .args(["resume", id, "--json", "--threads", "1", "--store"])
                .arg(store)
                .env(PAUSE.0, PAUSE.1)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// Exactly one of the racers trained the run, and each other one was refused
/// naming the one that holds it.
fn one_trained(dir: &Path, outputs: &[Output]) {
    let won: Vec<_> = outputs.iter().filter(|o| o.status.success()).collect();
    let errors: Vec<String> = outputs
        .iter()
        .filter(|o| !o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert_eq!(
        won.len(),
        1,
        "one racer trains the run; refused: {errors:?}"
    );
    for e in &errors {
        assert!(
            e.contains("is being written by process") && e.contains(" since 20"),
            "a refused racer names the holder and since when: {e}"
        );
    }
    assert_eq!(started_events(dir), 1, "the run was trained once");
    assert_eq!(RunRecord::load(dir).unwrap().status, RunStatus::Finished);
    assert!(
        !dir.join(LOCK_FILE).exists(),
        "the lock went with the winner"
    );
}

/// Marks a run as a crashed process left it: running, its lock naming a
/// process of this host that is gone.
fn interrupt_by_a_dead_holder(dir: &Path, record: &mut RunRecord) {
    record.status = RunStatus::Running;
    record.save(dir).unwrap();
    let dead = LockInfo {
        pid: u32::MAX - 7,
        host: squadlab::store::hostname(),
        heartbeat: 1.0,
        since: 1.0,
        token: 99,
    };
    std::fs::write(dir.join(LOCK_FILE), serde_json::to_vec(&dead).unwrap()).unwrap();
}

/// `squadlab worker` on the CPU until the queue is empty.
fn worker_to_the_end(store: &Path) -> Output {
    squadlab()
        .args([
            "worker",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--json",
            "--store",
        ])
        .arg(store)
        .output()
        .unwrap()
}

/// A store holding one queued tiny run; the folder keeps the task's files.
fn one_queued_run(tmp: &Path) -> (Store, std::path::PathBuf, RunRecord) {
    let (json, model) = tiny_task(tmp);
    let store = Store::open(Some(&tmp.join("store")));
    let (dir, record) = new_run(&store, &short(tiny_run_config(&json, &model)), &[], "").unwrap();
    (store, dir, record)
}

#[test]
fn racing_resumes_of_a_queued_run_train_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, dir, record) = one_queued_run(tmp.path());
    let outputs = racing_resumes(&store.root, &record.id, 3);
    one_trained(&dir, &outputs);
}

#[test]
fn racing_takeovers_of_a_dead_holders_run_train_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, dir, mut record) = one_queued_run(tmp.path());
    interrupt_by_a_dead_holder(&dir, &mut record);
    let outputs = racing_resumes(&store.root, &record.id, 3);
    one_trained(&dir, &outputs);
}

#[test]
fn a_worker_skips_a_run_it_cannot_take_and_trains_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let store = Store::open(Some(&tmp.path().join("store")));
    let config = short(tiny_run_config(&json, &model));
    // Queued first, so a worker meets it first, but not trainable: a hand
    // edit made it an import.
    let (bad, mut broken) = new_run(&store, &config, &[], "").unwrap();
    broken.kind = squadlab::store::RunKind::Imported {
        predictions: "p.json".into(),
    };
    broken.save(&bad).unwrap();
    let (good, _) = new_run(&store, &config, &[], "").unwrap();
    let out = worker_to_the_end(&store.root);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "one bad run never stops a worker: {stderr}"
    );
    assert_eq!(
        RunRecord::load(&good).unwrap().status,
        RunStatus::Finished,
        "{stderr}"
    );
    let said = stderr.matches("skipping run").count();
    assert_eq!(
        said, 1,
        "the bad run is reported once, with its reason: {stderr}"
    );
    assert!(stderr.contains("holds imported predictions"), "{stderr}");
    assert_eq!(RunRecord::load(&bad).unwrap().status, RunStatus::Queued);
    assert!(
        !bad.join(LOCK_FILE).exists(),
        "the skipped run is not left locked"
    );
}

#[test]
fn a_worker_takes_up_a_run_whose_holder_died() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, dir, mut record) = one_queued_run(tmp.path());
    interrupt_by_a_dead_holder(&dir, &mut record);
    let out = worker_to_the_end(&store.root);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        RunRecord::load(&dir).unwrap().status,
        RunStatus::Finished,
        "{stderr}"
    );
    assert_eq!(started_events(&dir), 1);
}

#[test]
fn a_worker_that_can_take_no_run_sleeps_between_tries() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, dir, _) = one_queued_run(tmp.path());
    // A lock no one can take over: not a file at all.
    std::fs::create_dir(dir.join(LOCK_FILE)).unwrap();
    std::fs::write(dir.join(LOCK_FILE).join("x"), b"").unwrap();
    let mut worker = common::spawn_following_worker(&store.root, &[]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        worker.try_wait().unwrap().is_none(),
        "the worker is still waiting"
    );
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", worker.id())).unwrap();
    worker.kill().unwrap();
    worker.wait().unwrap();
    // utime and stime, the 12th and 13th fields after the command name.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = ticks as f64 / per_second;
    assert!(cpu < 1.0, "the worker spun: {cpu:.2} s of CPU in 3 s");
}
