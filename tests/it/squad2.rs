//! SQuAD 2.0: loading unanswerable questions (and refusing them in a v1.1
//! run), picking articles, and the official v2.0 scores against
//! tools/reference/squad2_fixtures.py on the shared leaderboard file and on
//! synthetic predictions, with and without no-answer probabilities.

use crate::common;

use squadlab::data::{load_json, LoadOptions};
use std::path::Path;

const FIXTURES: &str = "tests/fixtures/squad2";

fn fixture(name: &str) -> serde_json::Value {
    let path = Path::new(FIXTURES).join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every key of `expected` equals ours to 4 decimals (counts exactly); a
/// NaN or a missing key fails.
fn assert_keys(ours: &serde_json::Value, expected: &serde_json::Value, case: &str) {
    let expected = expected.as_object().unwrap();
    assert!(expected.len() >= 9, "{case}: {expected:?}");
    for (key, want) in expected {
        let got = ours[key].as_f64();
        let want = want.as_f64().unwrap();
        assert!(
            got.is_some_and(|g| (g - want).abs() < 5e-5),
            "{case}: {key} is {got:?}, the reference script says {want}"
        );
    }
    // No key beyond the official ones but our "version".
    for key in ours.as_object().unwrap().keys() {
        assert!(
            expected.contains_key(key) || key == "version",
            "{case}: unexpected key {key}"
        );
    }
}

#[test]
fn the_v2_scorer_matches_the_reference_on_the_leaderboard_file() {
    let Some((dev, board)) = common::squad2_leaderboard() else {
        return;
    };
    let (dev, board) = (dev.display().to_string(), board.display().to_string());
    let expected = fixture("leaderboard.json");
    let plain = common::squadlab_json(&["score", "--data", &dev, "--predictions", &board]);
    assert_keys(&plain, &expected["no_na_probs"], "leaderboard");
    assert_eq!(plain["HasAns_total"], 5928);
    assert_eq!(plain["NoAns_total"], 5945);
    let na = format!("{FIXTURES}/leaderboard_na_probs.json");
    let with_probs = common::squadlab_json(&[
        "score",
        "--data",
        &dev,
        "--predictions",
        &board,
        "--na-prob-file",
        &na,
    ]);
    assert_keys(
        &with_probs,
        &expected["na_probs_thresh_1"],
        "leaderboard + na probs",
    );

    // Imported, it is scored by the v2 rules too, not as v1.1.
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().display().to_string();
    let imported = common::squadlab_json(&[
        "import-predictions",
        &board,
        "--name",
        "BiDAF++",
        "--data",
        &dev,
        "--store",
        &store,
    ]);
    let id = imported["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{imported}"));
    let record = squadlab::store::RunRecord::load(&tmp.path().join("runs").join(id)).unwrap();
    let want = &expected["no_na_probs"];
    assert!((record.outcome.f1.unwrap() - want["f1"].as_f64().unwrap()).abs() < 5e-5);
    let v2 = record.outcome.squad_v2.unwrap();
    assert!((v2.no_ans_f1.unwrap() - want["NoAns_f1"].as_f64().unwrap()).abs() < 5e-5);
    assert_eq!(v2.has_ans_total, Some(5928));
}

#[test]
fn the_v2_scorer_matches_the_reference_on_synthetic_predictions() {
    let Some(dev) = common::squad2_file("dev-v2.0.json") else {
        return;
    };
    let dev = dev.display().to_string();
    let expected = fixture("synthetic.json");
    let limit = expected["questions"].to_string();
    let preds = format!("{FIXTURES}/synthetic_preds.json");
    let na = format!("{FIXTURES}/synthetic_na_probs.json");
    let base = [
        "score",
        "--data",
        &dev,
        "--predictions",
        &preds,
        "--limit",
        &limit,
    ];
    let run = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        common::squadlab_json(&args)
    };
    let cases = &expected["cases"];
    assert_keys(&run(&[]), &cases["no_na_probs"], "synthetic");
    assert_keys(
        &run(&["--na-prob-file", &na]),
        &cases["na_probs_thresh_1"],
        "synthetic + na probs",
    );
    let at_half = run(&["--na-prob-file", &na, "--na-prob-thresh", "0.5"]);
    assert_keys(
        &at_half,
        &cases["na_probs_thresh_0.5"],
        "synthetic + na probs at 0.5",
    );
    // The search found a threshold inside the grid, not the trivial 0.
    assert!(at_half["best_f1_thresh"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_v1_run_refuses_unanswerable_questions_and_says_how_to_accept_them() {
    let Some(dev) = common::squad2_file("dev-v2.0.json") else {
        return;
    };
    let err = load_json(&dev, &LoadOptions::default()).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("no answers (SQuAD v1.1 questions all have one)")
            && text.contains("version_2_with_negative: true"),
        "{text}"
    );
    let v2 = load_json(
        &dev,
        &LoadOptions {
            version_2_with_negative: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(v2.len(), 11_873);
    assert!(v2.is_v2());
    let impossible: Vec<_> = v2.examples.iter().filter(|e| e.is_impossible()).collect();
    assert_eq!(impossible.len(), 5_945);
    let with_plausible = impossible
        .iter()
        .filter(|e| !e.plausible_answers.is_empty())
        .count();
    assert_eq!(with_plausible, 5_930);
    assert_eq!(v2.version.as_deref(), Some("v2.0"));

    // Articles pick a part of the file: the first two, then the last one.
    let part = |from, to| {
        load_json(
            &dev,
            &LoadOptions {
                version_2_with_negative: true,
                articles: Some(from..to),
                ..LoadOptions::default()
            },
        )
    };
    let head = part(0, 2).unwrap();
    let tail = part(34, 35).unwrap();
    assert_eq!(head.titles.len(), 2);
    assert_eq!(tail.titles.len(), 1);
    assert!(!head.titles.contains(&tail.titles[0]));
    assert_eq!(head.examples[0].id, v2.examples[0].id);
    assert_eq!(
        tail.examples.last().unwrap().id,
        v2.examples.last().unwrap().id
    );
    let err = format!("{:#}", part(30, 36).unwrap_err());
    assert!(
        err.contains("articles 30..36 are not within its 35 articles"),
        "{err}"
    );
}

#[test]
fn inconsistent_v2_records_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad-v2.json");
    let options = LoadOptions {
        version_2_with_negative: true,
        ..LoadOptions::default()
    };
    for (qa, says) in [
        (
            r#"{"id": "q1", "question": "Who?", "answers": [], "is_impossible": false}"#,
            r#"bad record "q1": is_impossible is false, but it has no answers"#,
        ),
        (
            r#"{"id": "q2", "question": "Who?", "answers": [{"text": "Ann", "answer_start": 0}], "is_impossible": true}"#,
            r#"bad record "q2": is_impossible is true, but it has 1 answers"#,
        ),
        (
            r#"{"id": "q3", "question": "Who?", "answers": [], "is_impossible": true, "plausible_answers": [{"text": "Bob", "answer_start": 0}]}"#,
            r#"bad record "q3": plausible answer 0: answer_start 0 points at "Ann", not at the answer text "Bob""#,
        ),
    ] {
        std::fs::write(
            &file,
            format!(
                r#"{{"version": "v2.0", "data": [{{"title": "T", "paragraphs": [{{"context": "Ann met Bob.", "qas": [{qa}]}}]}}]}}"#
            ),
        )
        .unwrap();
        let err = format!("{:#}", load_json(&file, &options).unwrap_err());
        assert!(err.contains(says), "{err}");
        assert!(err.contains("bad-v2.json"), "{err}");
    }
}

#[test]
fn scoring_v1_data_refuses_no_answer_probabilities() {
    let Some(dev) = common::squad_file("dev-v1.1.json") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let preds = tmp.path().join("p.json");
    std::fs::write(&preds, "{}").unwrap();
    let out = common::squadlab()
        .args([
            "score",
            "--data",
            &dev.display().to_string(),
            "--predictions",
        ])
        .arg(&preds)
        .args([
            "--na-prob-file",
            "tests/fixtures/squad2/synthetic_na_probs.json",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is SQuAD v1.1 data"), "{err}");
}

/// The tiny task with an unanswerable question beside every other one: it
/// asks for an animal the paragraph does not have.
pub(crate) fn tiny_v2_task(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (json, model) = common::tiny_task(dir);
    let mut squad: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let adjectives = ["big", "small", "old", "young", "happy", "sad"];
    let nouns = ["cat", "dog", "bird", "fish", "horse", "cow"];
    let paragraphs = squad["data"][0]["paragraphs"].as_array_mut().unwrap();
    let mut added = 0;
    for (c, p) in paragraphs
        .iter_mut()
        .enumerate()
        .filter(|(c, _)| c % 2 == 0)
    {
        let context = p["context"].as_str().unwrap().to_string();
        let Some((adj, noun)) = (1..36)
            .map(|k| (adjectives[(c + k) % 6], nouns[(c * 7 + k * 5) % 6]))
            .find(|(a, n)| !context.contains(&format!("{a} {n}")))
        else {
            continue;
        };
        let answer = p["qas"][0]["answers"][0].clone();
        p["qas"].as_array_mut().unwrap().push(serde_json::json!({
            "id": format!("q{c}-none"),
            "question": format!("what color is the {adj} {noun} ?"),
            "answers": [],
            "is_impossible": true,
            "plausible_answers": [answer],
        }));
        added += 1;
    }
    assert!(added >= 20);
    squad["version"] = "v2.0".into();
    let v2 = dir.join("tiny-squad2.json");
    std::fs::write(&v2, serde_json::to_vec(&squad).unwrap()).unwrap();
    (v2, model)
}

/// A v2 run end to end: unanswerable windows labelled at CLS, the run's
/// v2 keys equal to the scorer's on its own files, null_odds.json for every
/// question, and the best threshold replayed from null_scores.json.
#[test]
fn a_v2_run_trains_scores_and_replays_its_best_threshold() {
    use squadlab::data::{FeatureSet, QaTokenizer, WindowParams};
    use squadlab::eval::{score_v2, NullDecision};
    use squadlab::store::RunRecord;
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_v2_task(tmp.path());

    // Unanswerable questions' windows are labelled at the CLS position.
    let data = load_json(
        &json,
        &LoadOptions {
            version_2_with_negative: true,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    let tokenizer = QaTokenizer::from_path(&model.join("vocab.txt")).unwrap();
    let params = WindowParams {
        max_length: 64,
        stride: 16,
    };
    let features = FeatureSet::build(&data, &tokenizer, params).unwrap();
    for (i, ex) in data.examples.iter().enumerate() {
        for w in features.windows_of(i) {
            let labelled = features.windows[w].start_position != 0;
            assert_eq!(labelled, !ex.is_impossible(), "{}", ex.id);
        }
    }

    // A v1.1 run refuses the file and says how to accept it.
    let mut config = common::tiny_run_config(&json, &model);
    config.num_train_epochs = 10.0;
    let file = tmp.path().join("v1.ron");
    std::fs::write(&file, config.to_ron()).unwrap();
    let out = common::squadlab()
        .args(["train", "--out"])
        .arg(tmp.path().join("v1-run"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("version_2_with_negative: true"), "{err}");

    config.version_2_with_negative = true;
    let file = tmp.path().join("v2.ron");
    std::fs::write(&file, config.to_ron()).unwrap();
    let run = tmp.path().join("v2-run");
    common::squadlab_json(&[
        "train",
        "--out",
        &run.display().to_string(),
        &file.display().to_string(),
    ]);
    let record = RunRecord::load(&run).unwrap();
    let v2 = record
        .outcome
        .squad_v2
        .clone()
        .expect("the run records its v2 keys");
    let impossible = data.examples.iter().filter(|e| e.is_impossible()).count();
    assert_eq!(v2.no_ans_total, Some(impossible));
    assert_eq!(v2.has_ans_total, Some(data.len() - impossible));

    // The scorer on the run's own files gives the run's numbers.
    let json_arg = json.display().to_string();
    let preds = run.join("predictions.json").display().to_string();
    let scored = common::squadlab_json(&["score", "--data", &json_arg, "--predictions", &preds]);
    let close = |a: f64, b: Option<f64>| b.is_some_and(|b| (a - b).abs() < 1e-9);
    assert!(close(
        scored["exact"].as_f64().unwrap(),
        record.outcome.exact_match
    ));
    assert!(close(scored["f1"].as_f64().unwrap(), record.outcome.f1));
    assert!(close(scored["HasAns_f1"].as_f64().unwrap(), v2.has_ans_f1));
    assert!(close(
        scored["NoAns_exact"].as_f64().unwrap(),
        v2.no_ans_exact
    ));

    // null_odds.json: one finite difference per question.
    let odds: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(run.join("null_odds.json")).unwrap())
            .unwrap();
    assert_eq!(odds.len(), data.len());
    assert!(odds
        .values()
        .all(|v| v.as_f64().is_some_and(f64::is_finite)));

    // Replaying the decisions: threshold 0 gives predictions.json, and the
    // best threshold gives the best F1.
    let decisions: std::collections::HashMap<String, NullDecision> =
        serde_json::from_str(&std::fs::read_to_string(run.join("null_scores.json")).unwrap())
            .unwrap();
    let predictions: std::collections::HashMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(run.join("predictions.json")).unwrap())
            .unwrap();
    let replay = |t: f64| -> std::collections::HashMap<String, String> {
        decisions
            .iter()
            .map(|(id, d)| (id.clone(), d.answer_at(t).to_string()))
            .collect()
    };
    assert_eq!(replay(0.0), predictions);
    let best = v2.best.expect("best thresholds from the null odds");
    let (at_best, _) = score_v2(&data, &replay(best.best_f1_thresh), None, 1.0).unwrap();
    assert!(
        (at_best.f1 - best.best_f1).abs() < 1e-9,
        "F1 {} at threshold {}, the search said {}",
        at_best.f1,
        best.best_f1_thresh,
        best.best_f1
    );
    assert!(best.best_f1 >= record.outcome.f1.unwrap() - 1e-9);

    // The paired tests work on v2 runs as on v1.1: a second seed, diffed.
    config.seed = 43;
    let file = tmp.path().join("v2-seed43.ron");
    std::fs::write(&file, config.to_ron()).unwrap();
    let other = tmp.path().join("v2-run-43");
    common::squadlab_json(&[
        "train",
        "--out",
        &other.display().to_string(),
        &file.display().to_string(),
    ]);
    let diff = common::squadlab_json(&[
        "diff",
        &run.display().to_string(),
        &other.display().to_string(),
    ]);
    let d = &diff["diff"];
    assert_eq!(d["questions"], data.len(), "{diff}");
    let counted = ["both_right", "both_wrong"]
        .iter()
        .map(|k| d[k].as_u64().unwrap())
        .sum::<u64>()
        + ["right_to_wrong", "wrong_to_right"]
            .iter()
            .map(|k| d[k].as_array().unwrap().len() as u64)
            .sum::<u64>();
    assert_eq!(counted, data.len() as u64, "{diff}");
    let p = d["mcnemar"]["p_value"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p), "{diff}");
}
