//! Post-processing rules on a hand-made vocabulary, so each rule is visible.

use squadlab::data::{load_json, FeatureSet, LoadOptions, QaTokenizer, SquadDataset, WindowParams};
use squadlab::eval::{postprocess, PostprocessParams, WindowLogits};

const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nwho\nfounded\nthe\ncafe\nzoe\nmuller\nin\n1987\n,\n.\nit\nserves\ncoffee\n";

fn setup() -> (tempfile::TempDir, SquadDataset, FeatureSet) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vocab.txt"), VOCAB).unwrap();
    let json = r#"{"data": [{"title": "Café", "paragraphs": [{"context": "Zoë Müller founded the café in 1987. It serves coffee.",
        "qas": [{"id": "q", "question": "Who founded the café?", "answers": [{"text": "Zoë Müller", "answer_start": 0}]}]}]}]}"#;
    std::fs::write(dir.path().join("d.json"), json).unwrap();
    let tok = QaTokenizer::from_path(&dir.path().join("vocab.txt")).unwrap();
    let data = load_json(&dir.path().join("d.json"), &LoadOptions::default()).unwrap();
    let features = FeatureSet::build(
        &data,
        &tok,
        WindowParams {
            max_length: 32,
            stride: 8,
        },
    )
    .unwrap();
    (dir, data, features)
}

/// Logits of -10 everywhere but the given (position, value) pairs.
fn row(len: usize, peaks: &[(usize, f32)]) -> Vec<f32> {
    let mut r = vec![-10.0; len];
    for &(p, v) in peaks {
        r[p] = v;
    }
    r
}

#[test]
fn the_best_span_is_cut_from_the_context_by_characters() {
    let (_d, data, f) = setup();
    // [CLS] who founded the cafe ? [SEP] zoe muller founded …: "?" is [UNK], context starts at 7.
    assert_eq!(f.context_positions(0).start, 7);
    let start = row(32, &[(7, 5.0), (9, 1.0)]);
    let end = row(32, &[(8, 5.0), (10, 2.0)]);
    let logits = WindowLogits {
        start: &start,
        end: &end,
        row_len: 32,
    };
    let p = &postprocess(&data, &f, &logits, PostprocessParams::default())[0];
    assert_eq!(p.text, "Zoë Müller");
    let best = p.best().unwrap();
    assert_eq!((best.start_char, best.end_char, best.score), (0, 10, 10.0));
    // The n-best list is sorted and bounded.
    assert!(p.nbest.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(p.nbest.len() <= 20);
}

#[test]
fn spans_outside_the_context_too_long_or_reversed_are_dropped() {
    let (_d, data, f) = setup();
    // Best raw pair points into the question; next a reversed span; then a valid one.
    let start = row(32, &[(1, 9.0), (12, 8.0), (9, 1.0)]);
    let end = row(32, &[(2, 9.0), (10, 8.0), (11, 1.0)]);
    let logits = WindowLogits {
        start: &start,
        end: &end,
        row_len: 32,
    };
    let p = &postprocess(&data, &f, &logits, PostprocessParams::default())[0];
    assert_eq!(p.text, "founded the");

    let params = PostprocessParams {
        n_best_size: 20,
        max_answer_length: 1,
        ..PostprocessParams::default()
    };
    let start = row(32, &[(7, 5.0)]);
    let end = row(32, &[(8, 5.0)]);
    let logits = WindowLogits {
        start: &start,
        end: &end,
        row_len: 32,
    };
    let p = &postprocess(&data, &f, &logits, params)[0];
    assert!(
        p.nbest.iter().all(|c| c.text.split(' ').count() == 1),
        "{:?}",
        p.nbest
    );
}

#[test]
fn top_n_is_taken_before_filtering_so_a_question_heavy_top_n_yields_nothing() {
    let (_d, data, f) = setup();
    // With n_best 2, both top starts and ends lie in the question: no candidate, answer "".
    let start = row(32, &[(1, 9.0), (2, 8.0), (7, 7.0)]);
    let end = row(32, &[(3, 9.0), (4, 8.0), (8, 7.0)]);
    let logits = WindowLogits {
        start: &start,
        end: &end,
        row_len: 32,
    };
    let params = PostprocessParams {
        n_best_size: 2,
        max_answer_length: 30,
        ..PostprocessParams::default()
    };
    let p = &postprocess(&data, &f, &logits, params)[0];
    assert_eq!(p.text, "");
    assert!(p.nbest.is_empty());
}
