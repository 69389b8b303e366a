//! The significance tests against scipy and statsmodels: McNemar's p-values
//! and seed-group t-intervals to 1e-9, the paired bootstrap interval on ΔF1
//! within ±0.1 F1 of `scipy.stats.bootstrap`, and `squadlab diff` on two
//! imported leaderboard prediction files. The expected values are in
//! tests/fixtures/significance.json, made by
//! tools/reference/significance_fixture.py.

use crate::common;

use serde_json::Value;
use squadlab::report::significance::{mcnemar, paired_tests, BootstrapOptions, McNemarMethod};
use squadlab::report::Stat;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/significance.json"
    );
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

/// Within 1e-9, and within 1e-9 relative where the value is tiny but not 0.
fn assert_close(ours: f64, theirs: f64, what: &str) {
    assert!(
        (ours - theirs).abs() <= 1e-9,
        "{what}: ours {ours:e}, scipy {theirs:e}"
    );
    if theirs > 1e-300 {
        assert!(
            ((ours - theirs) / theirs).abs() <= 1e-9,
            "{what}: ours {ours:e}, scipy {theirs:e} (relative)"
        );
    }
}

fn method_name(m: McNemarMethod) -> &'static str {
    match m {
        McNemarMethod::ExactBinomial => "exact_binomial",
        McNemarMethod::ChiSquaredCorrected => "chi_squared_corrected",
    }
}

fn check_mcnemar(case: &Value) {
    let (b, c) = (case["b"].as_u64().unwrap(), case["c"].as_u64().unwrap());
    let ours = mcnemar(b as usize, c as usize);
    let what = format!("McNemar b = {b}, c = {c}");
    assert_eq!(method_name(ours.method), case["method"], "{what}");
    assert_close(ours.statistic, f(&case["statistic"]), &what);
    assert_close(ours.p_value, f(&case["p_value"]), &what);
}

#[test]
fn mcnemar_matches_statsmodels_exact_and_chi_squared() {
    let fx = fixture();
    let cases = fx["mcnemar"].as_array().unwrap();
    let methods: Vec<&str> = cases
        .iter()
        .map(|c| c["method"].as_str().unwrap())
        .collect();
    assert!(methods.contains(&"exact_binomial") && methods.contains(&"chi_squared_corrected"));
    for case in cases {
        check_mcnemar(case);
    }
}

#[test]
fn seed_group_intervals_match_scipy_t_interval() {
    for case in fixture()["t_interval"].as_array().unwrap() {
        let stat = Stat::of(&floats(&case["values"])).unwrap();
        assert_eq!(stat.n as u64, case["n"].as_u64().unwrap());
        assert_close(stat.std.unwrap(), f(&case["std"]), "sd");
        let [lo, hi] = stat.ci95.unwrap();
        assert_close(lo, f(&case["low"]), "t-interval low");
        assert_close(hi, f(&case["high"]), "t-interval high");
    }
}

#[test]
fn the_paired_bootstrap_interval_is_within_a_tenth_of_scipys() {
    for case in fixture()["bootstrap"].as_array().unwrap() {
        let get = |k: &str| floats(&case[k]);
        let tests = paired_tests(
            &get("exact_match_a"),
            &get("exact_match_b"),
            &get("f1_a"),
            &get("f1_b"),
            BootstrapOptions::default(),
        );
        check_mcnemar(&case["mcnemar"]);
        let m = &case["mcnemar"];
        assert_eq!(
            tests.mcnemar.right_to_wrong as u64,
            m["b"].as_u64().unwrap()
        );
        assert_eq!(
            tests.mcnemar.wrong_to_right as u64,
            m["c"].as_u64().unwrap()
        );
        let want = &case["bootstrap"];
        let i = &tests.delta_f1;
        assert_close(i.delta, f(&want["delta"]), "ΔF1");
        assert_eq!(i.resamples as u64, want["resamples"].as_u64().unwrap());
        for (ours, theirs) in [(i.low, &want["low"]), (i.high, &want["high"])] {
            assert!(
                (ours - f(theirs)).abs() <= 0.1,
                "interval [{}, {}] against scipy's [{}, {}]",
                i.low,
                i.high,
                want["low"],
                want["high"]
            );
        }
        // An interval of this width would be too narrow or too wide if the
        // resampling were not paired: it is far from either ΔF1 extreme.
        assert!(i.low < i.delta && i.delta < i.high);
    }
}

#[test]
fn diff_of_two_imported_leaderboard_files_prints_the_tests_scipy_gives() {
    let Some(dev) = common::squad_file("dev-v1.1.json") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store").display().to_string();
    for pair in fixture()["leaderboard_pairs"].as_array().unwrap() {
        let mut ids = Vec::new();
        for side in ["a", "b"] {
            let name = pair[side].as_str().unwrap();
            let Some(file) = common::squad_file(&format!("reference_predictions/{name}")) else {
                return;
            };
            let out = common::squadlab_json(&[
                "import-predictions",
                &file.display().to_string(),
                "--name",
                name,
                "--data",
                &dev.display().to_string(),
                "--store",
                &store,
            ]);
            ids.push(out["run_id"].as_str().unwrap().to_string());
        }
        let json = common::squadlab_json(&["diff", &ids[0], &ids[1], "--store", &store]);
        let d = &json["diff"];
        let m = &pair["mcnemar"];
        assert_eq!(d["questions"], pair["questions"]);
        assert_eq!(d["mcnemar"]["right_to_wrong"], m["b"]);
        assert_eq!(d["mcnemar"]["wrong_to_right"], m["c"]);
        assert_eq!(d["mcnemar"]["method"], m["method"]);
        assert_close(f(&d["mcnemar"]["statistic"]), f(&m["statistic"]), "χ²");
        assert_close(f(&d["mcnemar"]["p_value"]), f(&m["p_value"]), "McNemar p");
        let (ours, want) = (&d["delta_f1"], &pair["bootstrap"]);
        assert_close(f(&ours["delta"]), f(&want["delta"]), "ΔF1");
        for end in ["low", "high"] {
            assert!(
                (f(&ours[end]) - f(&want[end])).abs() <= 0.1,
                "{end}: ours {}, scipy {}",
                ours[end],
                want[end]
            );
        }
        // Significant unless McNemar's p ≥ 0.05 and the interval holds 0.
        let ns = f(&m["p_value"]) >= 0.05 && f(&want["low"]) <= 0.0 && f(&want["high"]) >= 0.0;
        assert_eq!(d["significant"], !ns, "{}", d["verdict"]);

        let out = common::squadlab()
            .args(["diff", &ids[0], &ids[1], "--store", &store])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("McNemar's test on EM flips"), "{text}");
        assert!(
            text.contains(&format!("ΔF1 (B − A) = {:+.2}, 95% CI", f(&want["delta"]))),
            "{text}"
        );
        assert!(text.contains(d["verdict"].as_str().unwrap()), "{text}");
    }
}
