//! `squadlab breakdown` against tools/reference/breakdown_fixture.py on two
//! imported leaderboard files (v1.1 dev): every bucket's question count, EM
//! and F1, the ΔF1 and McNemar's test to the reference's precision, and the
//! bootstrap intervals within Monte Carlo error of scipy's. On SQuAD 2.0 the
//! answer-length buckets add up to the official HasAns/NoAns scores.

use crate::common;

pub(crate) fn fixture() -> serde_json::Value {
    let text = std::fs::read_to_string("tests/fixtures/breakdown.json").unwrap();
    serde_json::from_str(&text).unwrap()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(ours: f64, theirs: f64, what: &str) {
    assert!(
        (ours - theirs).abs() < 1e-9 * theirs.abs().max(1.0),
        "{what}: ours {ours}, the reference {theirs}"
    );
}

/// A 95% bootstrap interval against scipy's from other random draws: each
/// end within 6% of the interval's width (Monte Carlo error of 10,000
/// resamples is about 1%), or one step of a mean of `count` 0/1 scores
/// (the ends of a small bucket's EM interval move in such steps).
fn close_interval(ours: [f64; 2], theirs: &serde_json::Value, count: u64, what: &str) {
    let theirs = [f(&theirs[0]), f(&theirs[1])];
    let width = theirs[1] - theirs[0];
    let step = 100.0 / count as f64;
    for (o, t) in ours.iter().zip(theirs) {
        assert!(
            (o - t).abs() <= (0.06 * width).max(1.01 * step),
            "{what}: ours {ours:?}, scipy's {theirs:?}"
        );
    }
}

pub(crate) fn import(file: &std::path::Path, dev: &std::path::Path, store: &str) -> String {
    let name = file.file_stem().unwrap().to_string_lossy().into_owned();
    let out = common::squadlab_json(&[
        "import-predictions",
        &file.display().to_string(),
        "--name",
        &name,
        "--data",
        &dev.display().to_string(),
        "--store",
        store,
    ]);
    out["run_id"].as_str().unwrap().to_string()
}

#[test]
fn breakdowns_of_two_leaderboard_files_match_the_reference_bucket_for_bucket() {
    let want = fixture();
    let (Some(dev), Some(base), Some(run)) = (
        common::squad_file("dev-v1.1.json"),
        common::squad_file(&format!(
            "reference_predictions/{}",
            want["base"].as_str().unwrap()
        )),
        common::squad_file(&format!(
            "reference_predictions/{}",
            want["run"].as_str().unwrap()
        )),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().display().to_string();
    let (base_id, run_id) = (import(&base, &dev, &store), import(&run, &dev, &store));
    for (by, rows) in want["by"].as_object().unwrap() {
        let out = common::squadlab_json(&[
            "breakdown",
            &base_id,
            &run_id,
            "--by",
            by,
            "--store",
            &store,
        ]);
        let b = &out["breakdown"];
        assert_eq!(b["by"], by.as_str());
        let ours_run = b["runs"][1]["rows"].as_array().unwrap();
        let ours_base = b["runs"][0]["rows"].as_array().unwrap();
        let ours_cmp = b["comparisons"][0]["rows"].as_array().unwrap();
        let rows = rows.as_array().unwrap();
        assert_eq!(ours_run.len(), rows.len(), "{by}: buckets {ours_run:?}");
        let total: u64 = ours_run.iter().map(|r| r["count"].as_u64().unwrap()).sum();
        assert_eq!(total, 10_570, "{by}: every dev question is in one bucket");
        for want in rows {
            let bucket = want["bucket"].as_str().unwrap();
            let find = |rows: &[serde_json::Value]| {
                rows.iter()
                    .find(|r| r["bucket"] == bucket)
                    .cloned()
                    .unwrap_or_else(|| panic!("{by}: no bucket {bucket}"))
            };
            let (r, a, c) = (find(ours_run), find(ours_base), find(ours_cmp));
            let what = format!("{by} {bucket}");
            assert_eq!(r["count"], want["count"], "{what}");
            let count = want["count"].as_u64().unwrap();
            assert_eq!(c["count"], want["count"], "{what}");
            for key in ["exact_match", "f1"] {
                close(f(&r[key]), f(&want["run"][key]), &format!("{what} {key}"));
                close(
                    f(&a[key]),
                    f(&want["base"][key]),
                    &format!("{what} base {key}"),
                );
                let interval = [
                    f(&r[format!("{key}_interval")][0]),
                    f(&r[format!("{key}_interval")][1]),
                ];
                let theirs = &want["run"][format!("{key}_interval")];
                close_interval(interval, theirs, count, &what);
            }
            let m = &want["mcnemar"];
            assert_eq!(c["mcnemar"]["right_to_wrong"], m["b"], "{what}");
            assert_eq!(c["mcnemar"]["wrong_to_right"], m["c"], "{what}");
            assert_eq!(c["mcnemar"]["method"], m["method"], "{what}");
            close(
                f(&c["mcnemar"]["p_value"]),
                f(&m["p_value"]),
                &format!("{what} McNemar p"),
            );
            let d = &c["delta_f1"];
            close(
                f(&d["delta"]),
                f(&want["delta_f1"]["delta"]),
                &format!("{what} ΔF1"),
            );
            close_interval(
                [f(&d["low"]), f(&d["high"])],
                &serde_json::json!([want["delta_f1"]["low"], want["delta_f1"]["high"]]),
                count,
                &format!("{what} ΔF1"),
            );
        }
    }
    // The text table names each bucket and marks the significant ones.
    let out = common::squadlab()
        .args([
            "breakdown",
            &base_id,
            &run_id,
            "--by",
            "question-type",
            "--store",
            &store,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("how many") && text.contains("other"),
        "{text}"
    );
    assert!(text.contains("McNemar p"), "{text}");
}

#[test]
fn a_v2_runs_answer_length_buckets_add_up_to_its_has_ans_and_no_ans_scores() {
    let Some((dev, board)) = common::squad2_leaderboard() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().display().to_string();
    let id = import(&board, &dev, &store);
    let out =
        common::squadlab_json(&["breakdown", &id, "--by", "answer-length", "--store", &store]);
    let rows = out["breakdown"]["runs"][0]["rows"]
        .as_array()
        .unwrap()
        .clone();
    let record = squadlab::store::RunRecord::load(&tmp.path().join("runs").join(&id)).unwrap();
    let v2 = record.outcome.squad_v2.unwrap();
    let no_answer = rows.iter().find(|r| r["bucket"] == "no answer").unwrap();
    assert_eq!(
        no_answer["count"].as_u64(),
        v2.no_ans_total.map(|n| n as u64)
    );
    close(f(&no_answer["f1"]), v2.no_ans_f1.unwrap(), "no answer F1");
    let answered: Vec<&serde_json::Value> =
        rows.iter().filter(|r| r["bucket"] != "no answer").collect();
    let n: u64 = answered.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(Some(n), v2.has_ans_total.map(|n| n as u64));
    for (key, official) in [("exact_match", v2.has_ans_exact), ("f1", v2.has_ans_f1)] {
        let pooled: f64 = answered
            .iter()
            .map(|r| f(&r[key]) * r["count"].as_f64().unwrap())
            .sum::<f64>()
            / n as f64;
        assert!(
            (pooled - official.unwrap()).abs() < 1e-9,
            "HasAns {key}: buckets pool to {pooled}, the v2.0 metric says {official:?}"
        );
    }
}

#[test]
fn breakdown_refuses_bad_input_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().display().to_string();
    let out = common::squadlab()
        .args(["breakdown", "latest", "--by", "length", "--store", &store])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("question-type, answer-length or context-length"),
        "{err}"
    );
    let out = common::squadlab()
        .args([
            "breakdown",
            "nothing-here",
            "--by",
            "question-type",
            "--store",
            &store,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing-here"));
}
