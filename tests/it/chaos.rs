//! Many writers on one store, with a killer: 40 queued tiny runs, 4 worker
//! processes sharing one device slot, 2 loops resuming random runs, one
//! process editing random runs' labels, and a worker SIGKILLed every couple
//! of seconds (and replaced). At the end every run is finished, no two
//! processes ever trained a run at once, every run's losses are those of the
//! same run trained straight through, every label edit is there, and the
//! store lists clean with no temporary left.

use crate::common;

use common::{squadlab, step_losses, tiny_run_config, tiny_task, train_straight};
use squadlab::config::{RunConfig, SaveStrategy};
use squadlab::store::{new_run, RunRecord, RunStatus, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RUNS: usize = 40;
const WORKERS: usize = 4;
const KILL_EVERY: Duration = Duration::from_millis(1500);
/// Far more than the chaos takes here (about a minute on 2 cores).
const GIVE_UP_AFTER: Duration = Duration::from_secs(240);

#[derive(Default)]
struct Counts {
    kills: AtomicUsize,
    resumes_trained: AtomicUsize,
    resumes_refused: AtomicUsize,
    resumes_of_finished: AtomicUsize,
    edits: AtomicUsize,
}

fn chaos_config(json: &Path, model: &Path) -> RunConfig {
    let mut c = tiny_run_config(json, model);
    c.max_steps = Some(6);
    c.save_strategy = SaveStrategy::Steps;
    c.save_steps = 2;
    c.data.max_eval_samples = Some(8);
    c
}

/// A worker whose fresh runs take a little longer a step, so that kills land
/// mid-run and resumes meet runs in training.
fn worker(store: &Path) -> Child {
    common::spawn_following_worker(store, &[("SQUADLAB_FAULT_SLOW_STEP_MS", "120")])
}

fn pick<T: Clone>(items: &[T], seed: &mut u64) -> T {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    items[(*seed >> 33) as usize % items.len()].clone()
}

#[test]
fn many_writers_and_a_killer_lose_nothing_and_train_each_run_once() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let config = chaos_config(&json, &model);
    let reference = step_losses(&train_straight(tmp.path(), &config));
    assert_eq!(reference.len(), 6);
    let store = Store::open(Some(&tmp.path().join("store")));
    let ids: Vec<String> = (0..RUNS)
        .map(|i| {
            let mut c = config.clone();
            c.name = format!("chaos {i}");
            new_run(&store, &c, &[], "").unwrap().1.id
        })
        .collect();
    let root = store.root.clone();
    let done = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let surprises = Arc::new(Mutex::new(Vec::<String>::new()));
    let edited = Arc::new(Mutex::new(BTreeMap::<String, Vec<String>>::new()));
    let workers = Arc::new(Mutex::new(
        (0..WORKERS).map(|_| worker(&root)).collect::<Vec<_>>(),
    ));

    let mut loops = Vec::new();
    for r in 0..2u64 {
        let (ids, root, done, counts, surprises) = (
            ids.clone(),
            root.clone(),
            done.clone(),
            counts.clone(),
            surprises.clone(),
        );
        loops.push(std::thread::spawn(move || {
            let mut seed = 17 + r;
            while !done.load(Ordering::SeqCst) {
                let id = pick(&ids, &mut seed);
                let out = squadlab()
                    .args(["resume", &id, "--threads", "1", "--json", "--store"])
                    .arg(&root)
                    .output()
                    .unwrap();
                let err = String::from_utf8_lossy(&out.stderr);
                let counter = if out.status.success() {
                    &counts.resumes_trained
                } else if err.contains("is being written by process") {
                    &counts.resumes_refused
                } else if err.contains("already finished") {
                    &counts.resumes_of_finished
                } else {
                    surprises
                        .lock()
                        .unwrap()
                        .push(format!("resume {id}: {err}"));
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    {
        let (ids, root, done, counts, surprises, edited) = (
            ids.clone(),
            root.clone(),
            done.clone(),
            counts.clone(),
            surprises.clone(),
            edited.clone(),
        );
        loops.push(std::thread::spawn(move || {
            let mut seed = 99;
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                let id = pick(&ids, &mut seed);
                let tag = format!("e{n}");
                n += 1;
                let out = squadlab()
                    .args(["edit", &id, "--tag", &tag, "--store"])
                    .arg(&root)
                    .output()
                    .unwrap();
                if out.status.success() {
                    edited.lock().unwrap().entry(id).or_default().push(tag);
                    counts.edits.fetch_add(1, Ordering::SeqCst);
                } else {
                    let err = String::from_utf8_lossy(&out.stderr).into_owned();
                    surprises.lock().unwrap().push(format!("edit {id}: {err}"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }));
    }
    {
        let (root, done, counts, workers) =
            (root.clone(), done.clone(), counts.clone(), workers.clone());
        loops.push(std::thread::spawn(move || {
            let mut seed = 5;
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(KILL_EVERY);
                let mut ws = workers.lock().unwrap();
                let i = pick(&(0..ws.len()).collect::<Vec<_>>(), &mut seed);
                let _ = ws[i].kill(); // SIGKILL
                let _ = ws[i].wait();
                counts.kills.fetch_add(1, Ordering::SeqCst);
                ws[i] = worker(&root);
            }
        }));
    }

    let dirs: Vec<PathBuf> = ids.iter().map(|id| store.runs_dir().join(id)).collect();
    let all_finished = || {
        dirs.iter()
            .all(|d| RunRecord::load(d).is_ok_and(|r| r.status == RunStatus::Finished))
    };
    while !all_finished() && started.elapsed() < GIVE_UP_AFTER {
        std::thread::sleep(Duration::from_millis(300));
    }
    done.store(true, Ordering::SeqCst);
    for l in loops {
        l.join().unwrap();
    }
    // Idle workers stop cleanly on Ctrl-C (SIGINT).
    for w in workers.lock().unwrap().iter_mut() {
        // SAFETY: kill(2) on a child of ours that has not been reaped.
        unsafe { libc::kill(w.id() as i32, libc::SIGINT) };
        let _ = w.wait();
    }
    // What a killed writer left goes when the store is next opened for
    // writing: a worker with nothing to do.
    let out = squadlab()
        .args(["worker", "--device", "cpu", "--store"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let surprises = surprises.lock().unwrap();
    assert!(surprises.is_empty(), "unexpected failures: {surprises:#?}");
    let mut takeovers = 0;
    for (id, dir) in ids.iter().zip(&dirs) {
        let record = RunRecord::load(dir).unwrap();
        assert_eq!(
            record.status,
            RunStatus::Finished,
            "run {id} after {:?}",
            started.elapsed()
        );
        takeovers += attempts_are_contiguous(dir) - 1;
        assert_eq!(
            step_losses(dir),
            reference,
            "run {id}: the losses of a straight run"
        );
        for tag in edited.lock().unwrap().get(id).into_iter().flatten() {
            assert!(
                record.tags.contains(tag),
                "run {id} lost the edit {tag}: {:?}",
                record.tags
            );
        }
    }
    let leftovers = temporaries(&root);
    assert!(leftovers.is_empty(), "left behind: {leftovers:#?}");
    let listed = common::squadlab_json(&["runs", "--store", &root.display().to_string()]);
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), RUNS);
    for row in rows {
        assert_eq!(row["status"], "finished", "{row}");
        assert_eq!(row["problems"], serde_json::json!([]), "{row}");
    }
    let c = &counts;
    eprintln!(
        "chaos: {RUNS} runs, {} kills, {takeovers} takeovers, {} resumes refused, {} resumes that trained, \
         {} resumes of finished runs, {} label edits, in {:.0} s",
        c.kills.load(Ordering::SeqCst),
        c.resumes_refused.load(Ordering::SeqCst),
        c.resumes_trained.load(Ordering::SeqCst),
        c.resumes_of_finished.load(Ordering::SeqCst),
        c.edits.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );
    assert!(c.kills.load(Ordering::SeqCst) > 0 && c.edits.load(Ordering::SeqCst) > 0);
}

/// Checks that each attempt's steps follow its start without a gap or a
/// second writer's lines in between, and that the last attempt finished;
/// returns the number of attempts.
fn attempts_are_contiguous(dir: &Path) -> usize {
    let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    let mut attempts = 0;
    let mut next = None;
    let mut last = String::new();
    for (i, line) in log.lines().enumerate() {
        let e: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("{}:{}: {err}: {line}", dir.display(), i + 1));
        let kind = e["event"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "started" => {
                attempts += 1;
                next = Some(e["resumed_from_step"].as_u64().unwrap() + 1);
            }
            "step" => {
                let step = e["step"].as_u64().unwrap();
                assert_eq!(
                    Some(step),
                    next,
                    "{}:{}: two writers' steps interleave",
                    dir.display(),
                    i + 1
                );
                next = Some(step + 1);
            }
            _ => {}
        }
        last = kind;
    }
    assert_eq!(
        last,
        "finished",
        "{}: the last attempt finished",
        dir.display()
    );
    attempts
}

/// Temporary files and leftover claims anywhere in the store.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let leftover = name.starts_with(".squadlab-tmp-")
            || name.ends_with(".tmp")
            || name == "run.lock"
            || name.ends_with(".slot");
        if leftover {
            found.push(path.clone());
        }
        if path.is_dir() {
            found.extend(temporaries(&path));
        }
    }
    found
}
