//! Faults from outside: SIGKILL at random moments, a full disk during a
//! checkpoint, a NaN loss, and damaged run folders. Nothing on disk is lost,
//! every run stays listed, and resume always finishes it exactly.
//!
//! The kill trials are short in CI (3); for the full study:
//! `SQUADLAB_KILL_TRIALS=25 cargo test --release --test faults kill -- --nocapture`.

use crate::common;

use common::{squadlab, squadlab_json, tiny_run_config, tiny_task};
use squadlab::config::{RunConfig, SaveStrategy};
use squadlab::store::{step_history, RunRecord, RunStatus};
use squadlab::train::checkpoint::{list_checkpoints, load_state};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The one run of a store, if its folder exists.
fn only_run(store: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(store.join("runs"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(dirs.len() <= 1, "{dirs:?}");
    dirs.pop()
}

fn listed(store: &Path) -> Vec<serde_json::Value> {
    squadlab_json(&["runs", "--store", s(store)])
        .as_array()
        .unwrap()
        .clone()
}

fn write_config(dir: &Path, name: &str, config: &RunConfig) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, config.to_ron()).unwrap();
    path
}

/// Steps in the event log of a store's only run.
fn logged_steps(store: &Path) -> u64 {
    only_run(store)
        .and_then(|run| std::fs::read_to_string(run.join("metrics.jsonl")).ok())
        .map_or(0, |log| log.matches(r#""event":"step""#).count() as u64)
}

/// What the store held when the kill landed.
fn phase(store: &Path) -> &'static str {
    let Some(run) = only_run(store) else {
        return "before the run existed";
    };
    let staging = std::fs::read_dir(run.join("checkpoints"))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        })
        .unwrap_or(false);
    if staging {
        "during a checkpoint write"
    } else if run.join("summary.json").exists() {
        "after it finished"
    } else if run.join("model").exists() {
        "during the final save or evaluation"
    } else if list_checkpoints(&run).is_empty() {
        "before the first checkpoint"
    } else {
        "between checkpoints"
    }
}

#[test]
fn kill_at_random_moments_then_resume_always_finishes_exactly() {
    let trials: usize = std::env::var("SQUADLAB_KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 8.0; // 48 steps
    config.save_strategy = SaveStrategy::Steps;
    config.save_steps = 1; // a checkpoint every step: kills often land in one
    config.save_total_limit = Some(2);
    let config_file = write_config(tmp.path(), "kill.ron", &config);

    let reference_store = tmp.path().join("reference");
    let started = Instant::now();
    let whole = squadlab_json(&["train", s(&config_file), "--store", s(&reference_store)]);
    let whole_seconds = started.elapsed().as_secs_f64();
    let reference = step_history(Path::new(whole["run_dir"].as_str().unwrap()));
    assert_eq!(reference.len(), 48);

    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut tally = std::collections::BTreeMap::<&str, usize>::new();
    for trial in 0..trials {
        // A random step to reach (0: still starting up), then a random part
        // of a step: kills land in start-up, steps and checkpoint writes.
        let target = next() % 48;
        let jitter = Duration::from_micros(next() % 40_000);
        let store = tmp.path().join(format!("store-{trial}"));
        let mut child = squadlab()
            .args(["train", s(&config_file), "--store", s(&store)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let launched = Instant::now();
        if target == 0 {
            std::thread::sleep(Duration::from_micros(next() % 500_000));
        } else {
            while logged_steps(&store) < target {
                assert!(launched.elapsed() < Duration::from_secs(120), "stuck");
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(jitter);
        }
        child.kill().unwrap(); // SIGKILL: nothing is cleaned up
        child.wait().unwrap();
        let delay = launched.elapsed().as_secs_f64();
        let when = phase(&store);
        *tally.entry(when).or_default() += 1;

        let runs = listed(&store);
        let Some(run) = only_run(&store) else {
            assert!(runs.is_empty(), "no folder, no run: {runs:?}");
            eprintln!("trial {trial}: killed after {delay:.2} s, {when}: nothing to resume");
            continue;
        };
        assert_eq!(runs.len(), 1, "the run is listed: {runs:?}");
        let status = runs[0]["status"].as_str().unwrap().to_string();
        let id = runs[0]["id"].as_str().unwrap().to_string();
        let newest = list_checkpoints(&run).pop();
        if let Some((_, ckpt)) = &newest {
            load_state(ckpt).expect("the newest checkpoint is whole");
        }
        if status != "finished" {
            assert_eq!(status, "interrupted", "trial {trial}: {runs:?}");
            let resumed = squadlab_json(&["resume", &id, "--store", s(&store)]);
            assert_eq!(resumed["global_step"], 48);
        }
        let history = step_history(&run);
        assert_eq!(history.len(), 48, "trial {trial}");
        for (a, b) in reference.iter().zip(&history) {
            assert_eq!((a.step, a.loss, a.grad_norm), (b.step, b.loss, b.grad_norm));
        }
        let record = RunRecord::load(&run).unwrap();
        assert_eq!(record.status, RunStatus::Finished);
        assert_eq!(record.outcome.f1, whole["f1"].as_f64());
        eprintln!(
            "trial {trial}: killed after {delay:.2} s, {when}; was {status}, resumed from {}",
            newest.map_or("step 0".into(), |(s, _)| format!("checkpoint-{s}"))
        );
    }
    eprintln!("{trials} kill trials (reference run {whole_seconds:.2} s): {tally:?}; all listed and resumed exactly");
}

#[test]
fn a_nan_loss_stops_the_run_as_diverged_with_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 2.0; // 12 steps
    config.save_strategy = SaveStrategy::Steps;
    config.save_steps = 2;
    config.save_total_limit = None;
    let config_file = write_config(tmp.path(), "nan.ron", &config);
    let store = tmp.path().join("store");
    let out = squadlab()
        .args(["train", s(&config_file), "--store", s(&store)])
        .env(squadlab::faults::NAN_LOSS_AT_STEP, "7")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let run = only_run(&store).unwrap();
    let good = run.join("checkpoints").join("checkpoint-6");
    assert!(
        err.contains("diverged at step 7") && err.contains(s(&good)),
        "{err}"
    );
    let runs = listed(&store);
    assert_eq!(runs[0]["status"], "diverged", "{runs:?}");
    assert_eq!(
        list_checkpoints(&run).last().map(|(s, _)| *s),
        Some(6),
        "no checkpoint of the NaN step"
    );
    let state = load_state(&good).unwrap();
    assert_eq!(state.global_step, 6);
    assert!(state.step_history.iter().all(|s| s.loss.is_finite()));
    assert_eq!(step_history(&run).len(), 6);

    // The last good checkpoint resumes, and the run then finishes.
    let id = runs[0]["id"].as_str().unwrap();
    let resumed = squadlab_json(&["resume", id, "--store", s(&store)]);
    assert_eq!(resumed["global_step"], 12);
}

/// Mounts a tmpfs of `size` at `dir`; false where this process may not mount.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            s(dir),
        ])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|st| st.success())
}

struct Unmount(PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        std::process::Command::new("umount")
            .arg(&self.0)
            .status()
            .ok();
    }
}

#[test]
fn a_full_disk_during_a_checkpoint_fails_clearly_and_keeps_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 2.0; // 12 steps
    config.save_strategy = SaveStrategy::Steps;
    config.save_steps = 4;
    config.save_total_limit = Some(1);
    let config_file = write_config(tmp.path(), "full.ron", &config);

    // How much one checkpoint takes, from the same run on a roomy disk,
    // keeping every checkpoint (saving settings leave the run's course as is).
    let sizing = tmp.path().join("sizing");
    let mut keep_all = config.clone();
    keep_all.save_total_limit = None;
    let keep_all_file = write_config(tmp.path(), "keep-all.ron", &keep_all);
    squadlab_json(&["train", s(&keep_all_file), "--out", s(&sizing)]);
    let one = squadlab::store::disk_use(&sizing.join("checkpoints").join("checkpoint-4"));
    assert!(one > 100_000, "{one}");

    // A disk with room for the run and one checkpoint, not for a second.
    let disk = tmp.path().join("disk");
    let size = one + one / 2 + 256 * 1024;
    if !mount_tmpfs(&disk, &size.to_string()) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("cannot mount a tmpfs, and CI=true requires this test");
        }
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    }
    let _unmount = Unmount(disk.clone());
    let run = disk.join("run");
    let out = squadlab()
        .args(["train", s(&config_file), "--out", s(&run)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let failed = run.join("checkpoints").join("checkpoint-8");
    assert!(
        err.contains(&format!("cannot save checkpoint {}", failed.display()))
            && err.contains("No space left on device"),
        "{err}"
    );
    // The previous checkpoint is whole, the failed one left nothing behind.
    let kept = list_checkpoints(&run);
    assert_eq!(kept.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![4]);
    assert_eq!(load_state(&kept[0].1).unwrap().global_step, 4);
    let names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["checkpoint-4".to_string()], "no staging left");
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let (a, b) = (
            std::fs::read(kept[0].1.join(file)).unwrap(),
            std::fs::read(sizing.join("checkpoints/checkpoint-4").join(file)).unwrap(),
        );
        assert!(a == b, "{file} of checkpoint-4 is intact");
    }

    // With room again, the run resumes from it and finishes.
    let grown = std::process::Command::new("mount")
        .args(["-o", "remount,size=64m", s(&disk)])
        .status()
        .unwrap();
    assert!(grown.success());
    let record = RunRecord::load(&run).unwrap();
    assert_ne!(record.status, RunStatus::Finished);
    let resumed = squadlab_json(&["resume", s(&run)]);
    assert_eq!(resumed["global_step"], 12);
}

/// Every kind of damage a crash, a disk or a user can do to run folders; the
/// CLI lists them all and the app starts and draws every tab.
fn damaged_store(root: &Path) -> Vec<&'static str> {
    let runs = root.join("runs");
    let folder = |id: &str| {
        let dir = runs.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    };
    let good = RunRecord {
        id: "20260101-000000-good".into(),
        name: "good".into(),
        status: RunStatus::Cancelled,
        config: Some(RunConfig::default()),
        ..RunRecord::default()
    };
    good.save(&folder("20260101-000000-good")).unwrap();
    std::fs::write(
        folder("20260101-000001-bin0").join("run.ron"),
        [0xff, 0x00, 0xfe, 0x80],
    )
    .unwrap();
    std::fs::write(folder("20260101-000002-empt").join("run.ron"), b"").unwrap();
    let d = folder("20260101-000003-metr");
    good.save(&d).unwrap();
    std::fs::write(d.join("metrics.jsonl"), [0xffu8; 4096]).unwrap();
    let d = folder("20260101-000004-ckpt");
    good.save(&d).unwrap();
    std::fs::write(d.join("checkpoints"), b"not a folder").unwrap();
    let d = folder("20260101-000005-cdir");
    good.save(&d).unwrap();
    std::fs::create_dir_all(d.join("checkpoints/checkpoint-3")).unwrap();
    std::fs::write(d.join("checkpoints/checkpoint-3/trainer_state.json"), b"{").unwrap();
    let d = folder("20260101-000006-rdir");
    std::fs::create_dir_all(d.join("run.ron")).unwrap();
    let d = folder("20260101-000007-resl");
    RunRecord {
        status: RunStatus::Finished,
        ..good.clone()
    }
    .save(&d)
    .unwrap();
    std::fs::write(d.join("results.ron"), b"EvalResults(").unwrap();
    std::fs::write(d.join("predictions.json"), b"[1, 2").unwrap();
    std::fs::write(runs.join("20260101-000008-file"), b"a file, not a folder").unwrap();
    std::os::unix::fs::symlink(runs.join("nowhere"), runs.join("20260101-000009-link")).unwrap();
    vec![
        "20260101-000000-good",
        "20260101-000001-bin0",
        "20260101-000002-empt",
        "20260101-000003-metr",
        "20260101-000004-ckpt",
        "20260101-000005-cdir",
        "20260101-000006-rdir",
        "20260101-000007-resl",
    ]
}

#[test]
fn damaged_run_folders_are_listed_and_never_stop_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let ids = damaged_store(&store);
    let runs = listed(&store);
    let listed_ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(listed_ids, ids);
    for r in &runs[1..] {
        assert!(
            !r["problems"].as_array().unwrap().is_empty()
                || [
                    "20260101-000003-metr",
                    "20260101-000004-ckpt",
                    "20260101-000005-cdir"
                ]
                .contains(&r["id"].as_str().unwrap()),
            "{r}"
        );
    }
    let damaged: Vec<&str> = runs
        .iter()
        .filter(|r| r["status"] == "damaged")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        damaged,
        vec![
            "20260101-000001-bin0",
            "20260101-000002-empt",
            "20260101-000006-rdir"
        ]
    );
    for id in &ids {
        let out = squadlab()
            .args(["show", id, "--store", s(&store)])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{id}: {err}");
    }
    let out = squadlab()
        .args(["compare", "--store", s(&store)])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));

    // Resume passes over the damaged newest checkpoint to the whole one before it.
    let run = store.join("runs/20260101-000005-cdir");
    let older = run.join("checkpoints/checkpoint-2");
    std::fs::create_dir_all(&older).unwrap();
    let state = squadlab::train::checkpoint::TrainerState::new(
        squadlab::train::dropout_rng(42),
        Default::default(),
    );
    std::fs::write(
        older.join("trainer_state.json"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    let plan = squadlab::store::plan_resume(&run).unwrap();
    assert_eq!(plan.checkpoint, Some(older));
    assert_eq!(plan.unreadable.len(), 1);
    assert!(
        plan.unreadable[0].contains("checkpoint-3/trainer_state.json")
            && plan.unreadable[0].contains("bad trainer state"),
        "{:?}",
        plan.unreadable
    );
}

#[cfg(feature = "gui")]
#[test]
fn damaged_run_folders_never_stop_the_app_from_starting() {
    use egui_kittest::Harness;
    use squadlab::gui::{AppOptions, SquadlabApp, Tab, UiState};
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let ids = damaged_store(&store);
    let options = AppOptions {
        store: Some(store.clone()),
        ..AppOptions::default()
    };
    let app = SquadlabApp::with_state(UiState::default(), options);
    let mut h = Harness::builder()
        .with_size([1400.0, 900.0])
        .build_eframe(move |_| app);
    h.run_steps(2);
    for id in &ids {
        h.state_mut().select(id.to_string(), true);
    }
    for tab in Tab::ALL {
        h.state_mut().show(tab);
        h.run_steps(3);
    }
    for id in &ids {
        assert!(h.state().runs().get(id).is_some(), "{id} is in the app");
    }
}
