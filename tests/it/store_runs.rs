//! The run store as a user meets it: killed runs show as interrupted and
//! resume exactly; damaged folders are listed with their reasons; `rm` asks.

use crate::common;

use common::{squadlab, squadlab_json, tiny_run_config, tiny_task};
use squadlab::config::SaveStrategy;
use squadlab::store::{step_history, RunRecord, RunStatus, RECORD_FILE};
use squadlab::train::checkpoint::list_checkpoints;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn store_arg(store: &Path) -> String {
    store.display().to_string()
}

/// The `runs --json` entry for `id`.
fn listed(store: &Path, id: &str) -> serde_json::Value {
    let all = squadlab_json(&["runs", "--store", &store_arg(store)]);
    all.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {all}"))
        .clone()
}

#[test]
fn a_killed_run_shows_interrupted_and_resume_finishes_it_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 30.0; // 180 steps
    config.save_strategy = SaveStrategy::Steps;
    config.save_steps = 10;
    config.save_total_limit = None;
    let config_file = tmp.path().join("tiny.ron");
    std::fs::write(&config_file, config.to_ron()).unwrap();

    // The uninterrupted run, for reference.
    let reference_store = tmp.path().join("reference");
    let whole = squadlab_json(&[
        "train",
        &config_file.display().to_string(),
        "--store",
        &store_arg(&reference_store),
    ]);
    let whole_dir = Path::new(whole["run_dir"].as_str().unwrap()).to_path_buf();

    let store = tmp.path().join("store");
    // 30 ms more a step: the 180 steps outlast the poll below by seconds on
    // any machine, so the kill lands mid-run however fast the CPU is.
    let mut child = squadlab()
        .arg("train")
        .arg(&config_file)
        .args(["--store", &store_arg(&store), "--tag", "kill-test"])
        .env(squadlab::faults::SLOW_STEP_MS, "30")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let run_dir = loop {
        let found = std::fs::read_dir(store.join("runs"))
            .ok()
            .and_then(|mut d| {
                d.find_map(|e| {
                    let p = e.ok()?.path();
                    p.is_dir().then_some(p)
                })
            });
        if let Some(dir) = found.filter(|d| list_checkpoints(d).len() >= 2) {
            break dir;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoints"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL: no handler runs, nothing is cleaned up
    child.wait().unwrap();
    let id = run_dir.file_name().unwrap().to_string_lossy().into_owned();

    let entry = listed(&store, &id);
    assert_eq!(entry["status"], "interrupted", "{entry}");
    let why = entry["problems"][0].as_str().unwrap();
    assert!(why.contains("is gone"), "{why}");
    let killed_at = entry["step"].as_u64().unwrap();
    assert!(killed_at < 180, "killed mid-run, at step {killed_at}");
    let record = RunRecord::load(&run_dir).unwrap();
    assert_eq!(record.status, RunStatus::Running);
    assert_eq!(record.tags, vec!["kill-test".to_string()]);
    // What draws its dropout masks: the lean step's counter-based generator.
    assert_eq!(record.dropout_generator.as_deref(), Some("philox4x32-10"));
    // What the binary was built from: this checkout's commit (the core's
    // build.rs reads the workspace's .git) and the locked candle.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    assert!(
        record.versions.git_sha.starts_with(head.trim()) && head.trim().len() == 40,
        "{:?} against HEAD {head}",
        record.versions
    );
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let candle = lock
        .split("name = \"candle-core\"\nversion = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert_eq!(record.versions.candle, candle);
    assert_eq!(record.data.len(), 2);
    assert_eq!(record.data[0].md5.len(), 32, "{:?}", record.data);

    let resumed = squadlab_json(&["resume", &id, "--store", &store_arg(&store)]);
    assert_eq!(resumed["global_step"], 180);
    let entry = listed(&store, &id);
    assert_eq!(entry["status"], "finished", "{entry}");
    assert_eq!(entry["problems"], serde_json::json!([]));
    let record = RunRecord::load(&run_dir).unwrap();
    let from = record.resumed_from[0];
    assert!(
        from >= 10 && from.is_multiple_of(10) && from <= killed_at,
        "{from}"
    );

    // Every step, the replayed ones included, matches the uninterrupted run.
    let (a, b) = (step_history(&whole_dir), step_history(&run_dir));
    assert_eq!(a.len(), 180);
    assert_eq!(b.len(), 180);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.step, x.loss, x.grad_norm, x.learning_rate),
            (y.step, y.loss, y.grad_norm, y.learning_rate)
        );
    }
    assert_eq!(
        record.outcome.exact_match,
        Some(whole["exact_match"].as_f64().unwrap())
    );
    assert_eq!(record.outcome.f1, Some(whole["f1"].as_f64().unwrap()));

    // The metric history exports one row per step, replayed steps once.
    let csv_file = tmp.path().join("metrics.csv");
    let exported = squadlab_json(&[
        "export-metrics",
        &id,
        "--format",
        "csv",
        "--out",
        &csv_file.display().to_string(),
        "--store",
        &store_arg(&store),
    ]);
    assert_eq!(exported["rows"], 180);
    let csv = std::fs::read_to_string(&csv_file).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "step,epoch,loss,grad_norm,learning_rate,samples_per_second,elapsed_seconds"
    );
    assert_eq!(lines.len(), 181);
    let row_7: Vec<f64> = lines[7].split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!((row_7[0], row_7[2]), (7.0, a[6].loss));
    let jsonl = squadlab_json(&[
        "export-metrics",
        &id,
        "--format",
        "jsonl",
        "--store",
        &store_arg(&store),
    ]);
    let content = jsonl["content"].as_str().unwrap();
    assert_eq!(content.lines().count(), 180);
    let last: squadlab::train::StepLog =
        serde_json::from_str(content.lines().last().unwrap()).unwrap();
    assert_eq!((last.step, last.loss), (180, a[179].loss));

    // A finished run is not resumed again.
    let again = squadlab()
        .args(["resume", &id, "--store", &store_arg(&store)])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already finished"));

    // prune keeps what it is asked to, and nothing else goes.
    let before = list_checkpoints(&run_dir);
    assert_eq!(before.len(), 18, "one checkpoint every 10 steps");
    let ranked = |dir: &Path| {
        let state = squadlab::train::checkpoint::load_state(dir).unwrap();
        let recent: Vec<f64> = state
            .step_history
            .iter()
            .rev()
            .take(50)
            .map(|s| s.loss)
            .collect();
        recent.iter().sum::<f64>() / recent.len() as f64
    };
    let mut by_loss: Vec<(f64, u64)> = before.iter().map(|(s, d)| (ranked(d), *s)).collect();
    by_loss.sort_by(|a, b| a.0.total_cmp(&b.0));
    let pruned = squadlab_json(&[
        "prune",
        &id,
        "--keep-best",
        "3",
        "--store",
        &store_arg(&store),
    ]);
    assert_eq!(pruned["deleted"].as_array().unwrap().len(), 15);
    assert_eq!(
        (pruned["ranked_by"].as_str(), &pruned["note"]),
        (
            Some("training loss over the last 50 steps"),
            &serde_json::Value::Null
        ),
        "a run without evaluations during training is ranked by its loss"
    );
    let mut kept: Vec<u64> = list_checkpoints(&run_dir).iter().map(|(s, _)| *s).collect();
    let mut best: Vec<u64> = by_loss.iter().take(3).map(|(_, s)| *s).collect();
    kept.sort();
    best.sort();
    assert_eq!(kept, best);
    squadlab_json(&[
        "prune",
        &id,
        "--keep-last",
        "1",
        "--store",
        &store_arg(&store),
    ]);
    assert_eq!(list_checkpoints(&run_dir).len(), 1);
    assert!(run_dir.join("model").is_dir() && run_dir.join("results.ron").is_file());
}

#[test]
fn damaged_runs_are_listed_with_their_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let runs = store.join("runs");
    let make = |id: &str, record: Option<&RunRecord>| {
        let dir = runs.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some(r) = record {
            r.save(&dir).unwrap();
        }
        dir
    };
    let good = RunRecord {
        id: "20260101-000000-aaaa".into(),
        name: "cancelled one".into(),
        status: RunStatus::Cancelled,
        config: Some(squadlab::config::RunConfig::default()),
        ..RunRecord::default()
    };
    // 1. A run cut off mid-write of its event log.
    let cut = make("20260101-000000-aaaa", Some(&good));
    let step = |n: u64| {
        serde_json::to_string(&squadlab::train::TrainEvent::Step(
            squadlab::train::StepLog {
                step: n,
                epoch: 0.1 * n as f64,
                loss: 5.0 - n as f64 * 0.1,
                grad_norm: 1.0,
                learning_rate: 2e-5,
                samples_per_second: 3.0,
                elapsed_seconds: n as f64,
            },
        ))
        .unwrap()
    };
    let full = step(2);
    std::fs::write(
        cut.join("metrics.jsonl"),
        format!("{}\n{}\n{}", step(1), full, &full[..full.len() / 2]),
    )
    .unwrap();
    // 2. A corrupted record.
    let corrupt = make("20260101-000001-bbbb", None);
    std::fs::write(
        corrupt.join(RECORD_FILE),
        "RunRecord(id: \"x\", status: Finished, notes: ",
    )
    .unwrap();
    // 3. A folder whose record never got written.
    make("20260101-000002-cccc", None);
    // 4. A record from a newer squadlab.
    let newer = RunRecord {
        format_version: 99,
        ..good.clone()
    };
    make("20260101-000003-dddd", Some(&newer));
    // 5. A finished run whose outputs were deleted by hand.
    let finished = RunRecord {
        status: RunStatus::Finished,
        ..good.clone()
    };
    make("20260101-000004-eeee", Some(&finished));

    let all = squadlab_json(&["runs", "--store", &store_arg(&store)]);
    let get = |id: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing from {all}"))
            .clone()
    };
    let problems = |v: &serde_json::Value| v["problems"].to_string();

    let cut = get("20260101-000000-aaaa");
    assert_eq!(cut["status"], "cancelled");
    assert_eq!(cut["step"], 2, "the complete lines still count");
    assert!(
        problems(&cut).contains("metrics.jsonl:3: last line cut short"),
        "{cut}"
    );

    let corrupt = get("20260101-000001-bbbb");
    assert_eq!(corrupt["status"], "damaged");
    assert!(problems(&corrupt).contains("run.ron:1:"), "{corrupt}");

    let empty = get("20260101-000002-cccc");
    assert_eq!(empty["status"], "damaged");
    assert!(problems(&empty).contains("no run.ron"), "{empty}");

    let newer = get("20260101-000003-dddd");
    assert_eq!(newer["status"], "damaged");
    assert!(problems(&newer).contains("newer squadlab"), "{newer}");

    let finished = get("20260101-000004-eeee");
    assert_eq!(finished["status"], "finished");
    for missing in [
        "results.ron is missing",
        "predictions.json is missing",
        "model is missing",
    ] {
        assert!(problems(&finished).contains(missing), "{finished}");
    }

    // The text listing and `show` name the reasons too.
    let text = squadlab()
        .args(["runs", "--store", &store_arg(&store)])
        .output()
        .unwrap();
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("damaged") && text.contains("no run.ron"),
        "{text}"
    );
    let show = squadlab()
        .args(["show", "20260101-000001", "--store", &store_arg(&store)])
        .output()
        .unwrap();
    assert!(show.status.success());
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("problem: "),
        "show names it"
    );
    // A run that is not there is an error that says where it looked.
    let absent = squadlab()
        .args(["show", "nope", "--store", &store_arg(&store)])
        .output()
        .unwrap();
    assert!(!absent.status.success());
    assert!(String::from_utf8_lossy(&absent.stderr).contains("no run \"nope\""));
    // Filters: by status, by text, by tag.
    let only = |filter: &[&str]| {
        let mut args = vec!["runs", "--store"];
        let store = store_arg(&store);
        args.push(&store);
        args.extend(filter);
        let rows = squadlab_json(&args);
        let mut ids: Vec<String> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        only(&["--status", "damaged"]),
        [
            "20260101-000001-bbbb",
            "20260101-000002-cccc",
            "20260101-000003-dddd"
        ]
    );
    assert_eq!(
        only(&["--search", "CANCELLED ONE", "--status", "cancelled"]),
        ["20260101-000000-aaaa"]
    );
    assert!(only(&["--tag", "nope"]).is_empty());
    squadlab_json(&[
        "edit",
        "20260101-000000",
        "--tag",
        "kept",
        "--name",
        "cut short",
        "--store",
        &store_arg(&store),
    ]);
    assert_eq!(only(&["--tag", "kept"]), ["20260101-000000-aaaa"]);
    assert_eq!(
        RunRecord::load(&runs.join("20260101-000000-aaaa"))
            .unwrap()
            .name,
        "cut short"
    );

    // An empty store is not an error.
    let none = squadlab_json(&["runs", "--store", &store_arg(&tmp.path().join("empty"))]);
    assert_eq!(none, serde_json::json!([]));
}

#[test]
fn rm_asks_first_and_deletes_only_on_yes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = store.join("runs").join("20260101-000000-aaaa");
    std::fs::create_dir_all(&dir).unwrap();
    RunRecord {
        id: "20260101-000000-aaaa".into(),
        name: "keep me".into(),
        status: RunStatus::Failed,
        ..RunRecord::default()
    }
    .save(&dir)
    .unwrap();
    let rm = |answer: &str, extra: &[&str]| {
        let mut child = squadlab()
            .args(["rm", "keep me", "--store", &store_arg(&store)])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let no = rm("n\n", &[]);
    assert!(!no.status.success());
    assert!(String::from_utf8_lossy(&no.stderr).contains("delete run 20260101-000000-aaaa"));
    assert!(dir.join(RECORD_FILE).is_file(), "kept on no");
    assert!(!rm("", &[]).status.success(), "kept on no answer");
    assert!(dir.is_dir());
    assert!(rm("y\n", &[]).status.success());
    assert!(!dir.exists());
    assert_eq!(
        squadlab_json(&["runs", "--store", &store_arg(&store)]),
        serde_json::json!([])
    );
}
