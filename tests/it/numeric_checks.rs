//! No NaN passes a check: the shared comparisons (`squadlab::numeric`),
//! `bench check`'s verdicts, the memory planner's ratio and the GPU script's
//! table, each fed NaN and infinity, fail with the tensor or figure named.

use squadlab::cli::bench_check::{logits_verdict, trajectory_verdict};
use squadlab::memory::MemoryPlan;
use squadlab::numeric::{finite, in_band, max_abs_diff, max_finite, max_rel_diff, ratio, within};

const BAD: [f64; 3] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];

/// The error of `result`, which must be one naming `names`.
fn refused<T: std::fmt::Debug, E: std::fmt::Display>(
    result: Result<T, E>,
    names: &[&str],
    case: &str,
) {
    match result {
        Ok(v) => panic!("{case}: passed a check as {v:?} instead of failing"),
        Err(e) => {
            let message = e.to_string();
            for name in names {
                assert!(
                    message.contains(name),
                    "{case}: {message:?} names no {name:?}"
                );
            }
        }
    }
}

#[test]
fn the_shared_comparisons_fail_on_non_finite_values_naming_them() {
    let want = [1.0f64, 2.0, 3.0];
    for bad in BAD {
        let got = [1.0, bad, 3.0];
        refused(
            max_abs_diff("start logits", &got, &want),
            &["start logits[1]", "got"],
            "abs",
        );
        refused(
            max_abs_diff("start logits", &want, &got),
            &["start logits[1]", "expected"],
            "abs",
        );
        refused(
            max_rel_diff("losses", &got, &want, 1.0),
            &["losses[1]"],
            "rel",
        );
        refused(max_finite("errors", [0.5, bad]), &["errors[1]"], "max");
        refused(finite("grad norm", bad), &["grad norm"], "finite");
        refused(within("max |Δ|", bad, 1e-3), &["max |Δ|"], "within");
        refused(
            within("max |Δ|", 0.0, bad),
            &["max |Δ|'s tolerance"],
            "tolerance",
        );
        refused(
            in_band("live / planned", bad, &(0.9..=1.1)),
            &["live / planned"],
            "band",
        );
    }
    // f32 tensors too, as the logits come.
    refused(
        max_abs_diff("end logits", &[0.0f32, f32::NAN], &[0.0f32, 0.0]),
        &["end logits[1]"],
        "f32",
    );
    // A relative difference against 0 is not finite, so not a pass.
    refused(
        max_rel_diff("losses", &[1.0], &[0.0], 0.0),
        &["losses[0]"],
        "rel 0",
    );
    refused(
        ratio("measured / planned", 1.0, 0.0),
        &["measured / planned"],
        "ratio",
    );
    refused(
        ratio("measured / planned", 0.0, 0.0),
        &["measured / planned"],
        "0/0",
    );
    // zip would compare the shorter; nothing compared is no pass either.
    refused(
        max_abs_diff("logits", &[1.0], &[1.0, 2.0]),
        &["logits", "1 values against 2"],
        "len",
    );
    refused(
        max_abs_diff::<f64>("logits", &[], &[]),
        &["logits", "nothing"],
        "empty",
    );

    // Finite figures compare as before.
    assert_eq!(max_abs_diff("x", &[1.0, 2.5], &[1.0, 2.0]).unwrap(), 0.5);
    assert!((max_rel_diff("x", &[1.1, 4.0], &[1.0, 4.0], 0.0).unwrap() - 0.1).abs() < 1e-12);
    assert!(within("x", 1e-4, 1e-3).unwrap());
    assert!(!within("x", 1e-2, 1e-3).unwrap());
    assert!(in_band("x", 1.0, &(0.9..=1.1)).unwrap());
    assert!(!in_band("x", 1.2, &(0.9..=1.1)).unwrap());
}

#[test]
fn bench_checks_logits_verdict_fails_on_nan_and_inf_naming_the_logit() {
    let cpu = [0.5f32, -1.0, 2.0, 0.25];
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut device = cpu;
        device[2] = bad;
        refused(
            logits_verdict("Cuda(0)", &cpu, &device),
            &["logits on Cuda(0)", "[2]"],
            &format!("device logit {bad}"),
        );
        refused(
            logits_verdict("Cuda(0)", &device, &cpu),
            &["logits on Cuda(0)", "[2]"],
            &format!("CPU logit {bad}"),
        );
    }
    refused(
        logits_verdict("Cuda(0)", &cpu, &cpu[..3]),
        &["logits on Cuda(0)"],
        "a logit missing",
    );
    let close = logits_verdict("Cuda(0)", &cpu, &cpu.map(|x| x + 1e-4)).unwrap();
    assert!(close.pass, "{close:?}");
    let far = logits_verdict("Cuda(0)", &cpu, &cpu.map(|x| x + 1e-2)).unwrap();
    assert!(!far.pass, "{far:?}");
}

#[test]
fn bench_checks_trajectory_verdict_fails_on_nan_and_inf_naming_the_step() {
    use candle_core::DType;
    let full = [2.0f64, 1.5, 1.2];
    for bad in BAD {
        let mut other = full;
        other[1] = bad;
        // A NaN in the half-precision run, and one in the f32 run.
        refused(
            trajectory_verdict(&full, &other, DType::BF16),
            &["BF16 losses", "[1]"],
            &format!("bf16 loss {bad}"),
        );
        refused(
            trajectory_verdict(&other, &full, DType::BF16),
            &["BF16 losses", "[1]"],
            &format!("f32 loss {bad}"),
        );
    }
    let same = trajectory_verdict(&full, &full.map(|l| l * 1.001), DType::BF16).unwrap();
    assert!(same.pass, "{same:?}");
    let off = trajectory_verdict(&full, &full.map(|l| l * 1.1), DType::F16).unwrap();
    assert!(!off.pass, "{off:?}");
}

#[test]
fn the_memory_planners_ratio_is_an_error_when_the_plan_is_empty() {
    // An empty plan makes the ratio infinite (or 0 / 0 = NaN): no band check
    // may see it.
    let empty = MemoryPlan::default();
    refused(
        empty.measured_over_planned(1 << 20),
        &["measured / planned"],
        "x / 0",
    );
    refused(
        empty.measured_over_planned(0),
        &["measured / planned"],
        "0 / 0",
    );
    let plan = MemoryPlan {
        gradients: 1000,
        ..MemoryPlan::default()
    };
    assert_eq!(plan.measured_over_planned(1500).unwrap(), 1.5);
}

/// bench/gpu_table.py's own checks (`--self-test`): its verdicts from
/// section JSON holding NaN, infinity or null figures. Runs where python3 is
/// present (CI has it; no torch needed).
#[test]
fn the_gpu_tables_verdicts_fail_on_non_finite_figures() {
    if !crate::common::python3() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/gpu_table.py");
    let out = std::process::Command::new("python3")
        .args([script, "--self-test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gpu_table.py --self-test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
