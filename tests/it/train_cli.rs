//! `squadlab train` and `squadlab eval` as a user runs them.

use crate::common;

use common::{squadlab, tiny_run_config, tiny_task};
use std::process::{Command, Stdio};

#[test]
fn train_prints_the_summary_as_one_json_line_and_never_reuses_a_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 2.0;
    let config_file = tmp.path().join("tiny.ron");
    std::fs::write(&config_file, config.to_ron()).unwrap();
    let out_dir = tmp.path().join("run");
    let summary = common::squadlab_json(&[
        "train",
        &config_file.display().to_string(),
        "--out",
        &out_dir.display().to_string(),
    ]);
    for key in [
        "exact_match",
        "f1",
        "train_runtime",
        "train_samples_per_second",
        "train_loss",
        "run_dir",
    ] {
        assert!(summary.get(key).is_some(), "{key} missing from {summary}");
    }
    assert_eq!(summary["global_step"], 12);
    assert_eq!(summary["run_dir"], out_dir.display().to_string());
    let events = std::fs::read_to_string(out_dir.join("metrics.jsonl")).unwrap();
    let steps = events
        .lines()
        .filter(|l| l.contains(r#""event":"step""#))
        .count();
    assert_eq!(steps, 12, "every step is in the event log");
    assert!(events
        .lines()
        .last()
        .unwrap()
        .contains(r#""event":"finished""#));
    let saved_record = std::fs::read_to_string(out_dir.join("run.ron")).unwrap();

    // The same folder again is refused, and the first run is untouched.
    let again = squadlab()
        .arg("train")
        .arg(&config_file)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already holds a run"), "{err}");
    assert_eq!(
        std::fs::read_to_string(out_dir.join("metrics.jsonl")).unwrap(),
        events
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("run.ron")).unwrap(),
        saved_record
    );

    // eval on the run folder finds its final model and writes the three files.
    let pred = tmp.path().join("pred.json");
    let scores = common::eval_tiny_task(&out_dir, &json, &pred);
    assert_eq!(scores["total"], 10);
    for file in ["pred.json", "pred.nbest.json", "pred.scores.json"] {
        assert!(tmp.path().join(file).is_file(), "{file}");
    }
}

#[test]
fn ctrl_c_cancels_at_a_step_boundary_with_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 2000.0; // far longer than the test waits
    let config_file = tmp.path().join("long.ron");
    std::fs::write(&config_file, config.to_ron()).unwrap();
    let out_dir = tmp.path().join("run");
    let child = squadlab()
        .arg("train")
        .arg(&config_file)
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = out_dir.join("metrics.jsonl");
    let started = std::time::Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains(r#""event":"step""#)) {
        assert!(started.elapsed().as_secs() < 60, "no step within a minute");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "a cancelled run exits with failure");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cancelled at step"), "{err}");
    let (_, ckpt) = squadlab::train::checkpoint::list_checkpoints(&out_dir)
        .pop()
        .expect("a checkpoint");
    assert!(
        err.contains(&ckpt.display().to_string()),
        "the message names the checkpoint: {err}"
    );
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains(r#""event":"cancelled""#));
    let state = squadlab::train::checkpoint::load_state(&ckpt).unwrap();
    assert!(state.global_step >= 1);
}

/// The kernels' widest path and the next one down train the same bits: every
/// step's loss and grad norm and every saved weight. On an AVX-512 CPU that
/// is AVX-512 against AVX2, on an AVX2 one AVX2 against the baseline (gemm,
/// the same in both, is checked across its paths by tools/test-avx2.sh).
#[test]
fn the_kernels_train_the_same_bits_on_every_cpu_path() {
    use squadlab::model::kernels::cpu_level::{self, CpuLevel};
    let widest = cpu_level::detected();
    let lower = match widest {
        CpuLevel::Avx512 => CpuLevel::Avx2,
        _ => CpuLevel::Baseline,
    };
    if widest == CpuLevel::Baseline {
        eprintln!("this CPU has neither AVX2 nor AVX-512: one kernel path, nothing to compare");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 1.0;
    config.data.max_eval_samples = Some(8);
    let config_file = tmp.path().join("tiny.ron");
    std::fs::write(&config_file, config.to_ron()).unwrap();
    let train_at = |level: CpuLevel| {
        let name = format!("{level:?}").to_lowercase();
        let out_dir = tmp.path().join(&name);
        let out = squadlab()
            .args(["train", "--json", "--out"])
            .arg(&out_dir)
            .arg(&config_file)
            .env(cpu_level::ENV, &name)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let steps: Vec<String> = std::fs::read_to_string(out_dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| l.contains(r#""event":"step""#))
            .map(|l| {
                let e: serde_json::Value = serde_json::from_str(l).unwrap();
                format!(
                    "step {} loss {} grad_norm {}",
                    e["step"], e["loss"], e["grad_norm"]
                )
            })
            .collect();
        let weights = std::fs::read(out_dir.join("model/model.safetensors")).unwrap();
        (steps, weights)
    };
    let (wide_steps, wide_weights) = train_at(widest);
    let (low_steps, low_weights) = train_at(lower);
    assert_eq!(wide_steps.len(), 6, "{wide_steps:?}");
    assert_eq!(wide_steps, low_steps, "{widest} against {lower}");
    assert!(
        wide_weights == low_weights,
        "the weights {widest} and {lower} saved differ"
    );
}
