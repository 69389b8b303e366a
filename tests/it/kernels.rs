//! The fused kernels' self-check (`model::fused::check`): the CPU twins pass
//! it; the fault switch breaks one kernel, the check switches exactly that
//! one off, `doctor --kernels` says so, and a run goes on with the generic
//! op and trains what the fused op would have.

use crate::common;

use common::{squadlab, tiny_run_config, tiny_task};
use serde_json::Value;
use squadlab::faults::BROKEN_KERNEL;
use squadlab::model::fused::{cpu_check, Kernel, KernelSet};

#[test]
fn every_cpu_twin_passes_its_self_check_against_the_generic_ops() {
    let report = cpu_check();
    // Every kernel is checked, the ones with a backward pass both ways.
    assert_eq!(report.checks.len(), 13, "{:#?}", report.checks);
    for k in Kernel::ALL {
        assert!(
            report.checks.iter().any(|c| c.kernel == k.name()),
            "{} has no check",
            k.name()
        );
    }
    for c in &report.checks {
        assert!(
            c.passed && c.finite && c.failure.is_none(),
            "{} {}: {c:?}",
            c.kernel,
            c.direction
        );
        // `<=` is false for NaN, so a NaN error fails here too.
        assert!(c.error <= c.tolerance, "{c:?}");
    }
    assert_eq!(report.trusted(), KernelSet::all());
    assert!(report.warnings().is_empty());
    eprintln!("the CPU twins' self-check took {:.3} s", report.seconds);
}

fn doctor_kernels(broken: Option<&str>) -> (Value, String) {
    let mut cmd = squadlab();
    cmd.args(["doctor", "--kernels", "--json"]);
    if let Some(name) = broken {
        cmd.env(BROKEN_KERNEL, name);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    (json, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn failed_kernels(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] != true)
        .map(|c| c["kernel"].as_str().unwrap().to_string())
        .collect();
    names.dedup();
    names
}

#[test]
fn the_fault_switch_turns_off_exactly_the_kernel_it_breaks() {
    let (clean, _) = doctor_kernels(None);
    let cpu = &clean["kernels"][0];
    assert_eq!(cpu["implementation"], "cpu twins");
    assert!(failed_kernels(cpu).is_empty(), "{cpu:#}");
    for k in Kernel::ALL {
        let (json, _) = doctor_kernels(Some(k.name()));
        let report = &json["kernels"][0];
        assert_eq!(
            failed_kernels(report),
            vec![k.name().to_string()],
            "{report:#}"
        );
        // The broken value is off by one: far past any tolerance.
        for c in report["checks"].as_array().unwrap() {
            if c["kernel"] == k.name() {
                assert!(c["error"].as_f64().unwrap_or(f64::INFINITY) > 1e-3, "{c}");
            }
        }
    }
}

#[test]
fn doctor_prints_the_kernel_table_with_the_switched_off_kernel() {
    let out = squadlab()
        .args(["doctor", "--kernels"])
        .env(BROKEN_KERNEL, "gelu")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("fused kernels: cpu twins on cpu"), "{text}");
    let gelu_rows: Vec<&str> = text.lines().filter(|l| l.starts_with("gelu ")).collect();
    assert_eq!(gelu_rows.len(), 2, "{text}");
    assert!(
        gelu_rows.iter().all(|l| l.contains("OFF (disagrees)")),
        "{text}"
    );
    let softmax_rows = text
        .lines()
        .filter(|l| l.starts_with("softmax ") && l.ends_with("fused"));
    assert_eq!(softmax_rows.count(), 2, "{text}");
    assert!(
        text.contains("switched off, on the generic ops: gelu"),
        "{text}"
    );
}

/// Trains the tiny task with `broken` broken; returns each step's loss, the
/// run's `fused_kernels` and its warning events.
fn train(
    dir: &std::path::Path,
    config: &std::path::Path,
    broken: Option<&str>,
) -> (Vec<f64>, Vec<String>, Vec<String>) {
    let out_dir = dir.join(broken.unwrap_or("clean"));
    let mut cmd = squadlab();
    cmd.args(["train", "--json", "--out"])
        .arg(&out_dir)
        .arg(config);
    if let Some(name) = broken {
        cmd.env(BROKEN_KERNEL, name);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events: Vec<Value> = std::fs::read_to_string(out_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let losses = events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| e["loss"].as_f64().unwrap())
        .collect();
    let warnings: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "warning")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    for w in &warnings {
        assert!(stderr.contains(&format!("warning: {w}")), "{stderr}");
    }
    let record = squadlab::store::RunRecord::load(&out_dir).unwrap();
    (losses, record.fused_kernels.unwrap(), warnings)
}

#[test]
fn a_run_falls_back_from_a_broken_kernel_and_trains_the_same_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 1.0;
    config.data.max_eval_samples = Some(8);
    let config_file = tmp.path().join("tiny.ron");
    std::fs::write(&config_file, config.to_ron()).unwrap();

    let (clean, fused, warnings) = train(tmp.path(), &config_file, None);
    assert_eq!(fused, KernelSet::all().names());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(clean.len(), 6, "{clean:?}");
    // GELU, and softmax, whose dropout masks must stay the same draws.
    for broken in ["gelu", "softmax"] {
        let (losses, fused, warnings) = train(tmp.path(), &config_file, Some(broken));
        assert!(!fused.iter().any(|k| k == broken), "{fused:?}");
        assert_eq!(fused.len(), Kernel::ALL.len() - 1, "{fused:?}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains(&format!("fused {broken} kernel")),
            "{warnings:?}"
        );
        assert_eq!(losses.len(), clean.len());
        for (step, (a, b)) in losses.iter().zip(&clean).enumerate() {
            // The same ops in another order: rounding apart, never more.
            let close = (a - b).abs() <= 1e-4 * b.abs().max(1.0);
            assert!(close, "{broken}: step {} loss {a} against {b}", step + 1);
        }
    }
}
