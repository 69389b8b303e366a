//! The TensorBoard round trip: squadlab exports a committed run's
//! `metrics.jsonl` as an event file; it must be the file TensorBoard's own
//! reader read (tools/reference/tensorboard_fixture.py) and parse back to the
//! scalars TensorBoard found in it.

use crate::common;

use squadlab::report::tensorboard::{read_event_file, Scalar};
use std::path::Path;

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tensorboard"
    ))
}

fn tensorboard_read() -> Vec<Scalar> {
    let text = std::fs::read_to_string(fixture().join("scalars.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["scalars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Scalar {
            tag: s["tag"].as_str().unwrap().to_string(),
            step: s["step"].as_i64().unwrap(),
            wall_time: s["wall_time"].as_f64().unwrap(),
            value: s["value"].as_f64().unwrap() as f32,
        })
        .collect()
}

#[test]
fn an_exported_run_reads_back_as_tensorboard_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("tb");
    let export = || {
        common::squadlab_json(&[
            "export-metrics",
            &fixture().join("run").display().to_string(),
            "--format",
            "tensorboard",
            "--out",
            &out.display().to_string(),
        ])
    };
    let report = export();
    let written = Path::new(report["out"].as_str().unwrap()).to_path_buf();
    assert_eq!(report["scalars"], 122);
    let name = written.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    let bytes = std::fs::read(&written).unwrap();
    assert!(
        bytes == std::fs::read(fixture().join("run.tfevents")).unwrap(),
        "the event file differs from the one TensorBoard read"
    );

    // The same scalars TensorBoard found, tag by tag, in step order.
    let mut ours = read_event_file(&bytes).unwrap();
    ours.sort_by(|a, b| a.tag.cmp(&b.tag).then(a.step.cmp(&b.step)));
    let theirs = tensorboard_read();
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!((&a.tag, a.step, a.value), (&b.tag, b.step, b.value));
        // serde_json's default float parsing may miss the last bit of a
        // 17-digit number; the byte comparison above is the exact check.
        assert!((a.wall_time - b.wall_time).abs() < 1e-6, "{a:?} vs {b:?}");
    }
    // Spot checks against the run's own log: 20 steps, evaluations every 2
    // steps on 200 questions, and the final one on 500.
    let f1: Vec<&Scalar> = theirs.iter().filter(|s| s.tag == "eval/f1").collect();
    assert_eq!(f1.len(), 10);
    assert_eq!(f1[0].step, 2);
    assert!((f1[9].value - 10.7015).abs() < 1e-3, "{}", f1[9].value);
    let loss = theirs.iter().filter(|s| s.tag == "train/loss").count();
    assert_eq!(loss, 20);
    assert!(theirs.iter().any(|s| s.tag == "final/f1" && s.step == 20));

    // Exporting again replaces the file instead of adding a second copy.
    export();
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);

    // Without --out the format has nowhere to go: a clear error.
    let refused = common::squadlab()
        .args([
            "export-metrics",
            &fixture().join("run").display().to_string(),
        ])
        .args(["--format", "tensorboard"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("give --out DIR"));
}

/// A real CPU run samples its process (here every 50 ms): the samples are in
/// its `metrics.jsonl` as `system` events before its last event, the listing
/// shows no problem, and they export under `system/`.
#[test]
fn a_runs_system_samples_are_logged_and_export_under_system() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = common::tiny_task(tmp.path());
    let ron = tmp.path().join("run.ron");
    std::fs::write(&ron, common::tiny_run_config(&json, &model).to_ron()).unwrap();
    let run = tmp.path().join("run");
    let out = common::squadlab()
        .args(["train", "--json", "--out"])
        .arg(&run)
        .arg(&ron)
        .env("SQUADLAB_SYSTEM_SAMPLE_MS", "50")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = squadlab::store::read_metrics(&run);
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    let samples = log.system_samples();
    assert!(!samples.is_empty(), "no system samples in metrics.jsonl");
    assert!(samples
        .iter()
        .all(|s| s.rss_bytes.is_some_and(|b| b > 1 << 20)));
    assert!(
        samples
            .iter()
            .all(|s| s.gpus.is_empty() && s.gpu_error.is_none()),
        "a CPU run asks no GPU"
    );
    assert!(
        log.events.last().unwrap().is_terminal(),
        "samples stop before the last event"
    );

    let tb = tmp.path().join("tb");
    common::squadlab_json(&[
        "export-metrics",
        &run.display().to_string(),
        "--format",
        "tensorboard",
        "--out",
        &tb.display().to_string(),
    ]);
    let file = std::fs::read_dir(&tb)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let scalars = read_event_file(&std::fs::read(file).unwrap()).unwrap();
    let rss: Vec<&Scalar> = scalars
        .iter()
        .filter(|s| s.tag == "system/rss_gib")
        .collect();
    assert_eq!(rss.len(), samples.len());
    assert!(rss.iter().all(|s| s.value > 0.0));
    assert!(scalars.iter().any(|s| s.tag == "train/loss"));
}
