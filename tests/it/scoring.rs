//! The official SQuAD v1.1 scores of the shared prediction files, to 4 decimals.

use crate::common;

use squadlab::eval::{load_predictions, score};

fn check(file: &str, em: &str, f1: &str) {
    let Some(dev) = common::load_squad("dev-v1.1.json", None) else {
        return;
    };
    let Some(path) = common::squad_file(&format!("reference_predictions/{file}")) else {
        return;
    };
    let scores = score(&dev, &load_predictions(&path).unwrap());
    assert_eq!(scores.total, 10_570);
    assert_eq!(format!("{:.4}", scores.exact_match), em, "{file} EM");
    assert_eq!(format!("{:.4}", scores.f1), f1, "{file} F1");
    assert_eq!(scores.per_question.len(), 10_570);
    let em_sum: f64 = scores.per_question.iter().map(|q| q.exact_match).sum();
    assert!((100.0 * em_sum / 10_570.0 - scores.exact_match).abs() < 1e-9);
}

#[test]
fn google_bert_ensemble() {
    check(
        "leaderboard_bert_ensemble_google.json",
        "86.2062",
        "92.1956",
    );
}

#[test]
fn match_lstm() {
    check(
        "leaderboard_match_lstm_boundary_ensemble_smu.json",
        "67.6348",
        "76.7556",
    );
}

#[test]
fn tiny_bert() {
    check(
        "bert_tiny_L2_H128_run_squad_heytgala.json",
        "37.7767",
        "50.6268",
    );
}

#[test]
fn logistic_regression_with_missing_ids_scores_them_zero() {
    check(
        "leaderboard_logistic_regression_baseline_stanford.json",
        "40.1419",
        "50.9815",
    );
    let Some(dev) = common::load_squad("dev-v1.1.json", None) else {
        return;
    };
    let path = common::squad_file(
        "reference_predictions/leaderboard_logistic_regression_baseline_stanford.json",
    )
    .unwrap();
    let scores = score(&dev, &load_predictions(&path).unwrap());
    assert_eq!(scores.unanswered, 13);
    assert_eq!(scores.unknown_ids.len(), 10_585 - (10_570 - 13));
}
