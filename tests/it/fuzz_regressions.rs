//! Inputs that crashed or misled a fuzz target (see fuzz/README.md), each
//! with the behaviour now expected. The minimised fuzz inputs themselves are
//! kept under fuzz/regressions/ for replaying through the targets.

use squadlab::data::tokenizer::Encoded;
use squadlab::data::{
    parse_json, Answer, Context, Example, FeatureSet, LoadOptions, PairTemplate, QaTokenizer,
    SquadDataset, Window, WindowParams,
};
use squadlab::eval::{postprocess, score_predictions, PostprocessParams, WindowLogits};

/// A tokenizer over a hand-made vocabulary, from a temporary vocab.txt.
fn tokenizer(vocab: &[&str]) -> (tempfile::TempDir, QaTokenizer) {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec!["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    lines.extend_from_slice(vocab);
    std::fs::write(dir.path().join("vocab.txt"), lines.join("\n") + "\n").unwrap();
    let tok = QaTokenizer::from_path(&dir.path().join("vocab.txt")).unwrap();
    (dir, tok)
}

/// fuzz target `squad_parser`, minimised (fuzz/regressions/squad_parser/step-underflow.json).
const STEP_UNDERFLOW: &[u8] = br#"{"data": [{"title":"t", "paragraphs": [{"context": "at{01f","qas": [{"id": "w", "question": "S", "answers": [{"text": "", "answer_start": 2}]}]}]}]}
"#;

/// A context that fits in one window yet has no more tokens than the stride
/// computed `keep - stride` before knowing whether a second window was
/// needed: "attempt to subtract with overflow" wherever overflow checks are
/// on (debug builds, `cargo test` without --release), with SQuAD's own
/// 384/128 whenever a context has at most 128 tokens. Release builds wrapped
/// silently and never used the value. Now one window covers the context.
#[test]
fn a_context_shorter_than_the_stride_gets_one_window() {
    let (_dir, tok) = tokenizer(&["at", "{", "01", "##f", "s", "dog", "is", "here"]);
    // Its empty answer (which would have labelled start 4, end 3) is refused...
    let err = parse_json(
        STEP_UNDERFLOW,
        "step-underflow.json",
        &LoadOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("bad record \"w\": answer 0: empty text"),
        "{err}"
    );
    // ...so the same context is windowed with a real answer.
    let fixed = String::from_utf8(STEP_UNDERFLOW.to_vec()).unwrap().replace(
        r#""text": "", "answer_start": 2"#,
        r#""text": "at", "answer_start": 0"#,
    );
    let data = parse_json(
        fixed.as_bytes(),
        "step-underflow.json",
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(data.len(), 1);
    for params in [
        WindowParams {
            max_length: 32,
            stride: 16,
        },
        WindowParams::default(),
    ] {
        let f = FeatureSet::build(&data, &tok, params).unwrap();
        // at { 01 ##f: four context tokens, all in the one window.
        assert_eq!(f.contexts[0].ids.len(), 4);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f.windows[0].context_start, f.windows[0].context_end),
            (0, 4)
        );
        assert_eq!(f.first_window, vec![0, 1]);
        // [CLS] s [SEP] at { 01 ##f [SEP]
        assert_eq!(f.seq_len(0), 8);
    }

    // The same shape with a real answer: one window and the answer's label.
    let json = br#"{"data": [{"paragraphs": [{"context": "dog is here", "qas": [
        {"id": "q", "question": "at", "answers": [{"text": "here", "answer_start": 7}]}]}]}]}"#;
    let data = parse_json(json, "short.json", &LoadOptions::default()).unwrap();
    let f = FeatureSet::build(&data, &tok, WindowParams::default()).unwrap();
    assert_eq!(f.len(), 1);
    let w = f.windows[0];
    // [CLS] at [SEP] dog is here [SEP]: "here" is position 5.
    assert_eq!((w.context_start, w.context_end), (0, 3));
    assert_eq!((w.start_position, w.end_position), (5, 5));
}

/// A context still windowed with the stride after the fix: 10 tokens,
/// windows of 5 context tokens overlapping by 2.
#[test]
fn long_contexts_still_step_by_the_stride() {
    let (_dir, tok) = tokenizer(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "q"]);
    let json = br#"{"data": [{"paragraphs": [{"context": "a b c d e f g h i j", "qas": [
        {"id": "q", "question": "q", "answers": [{"text": "g h", "answer_start": 12}]}]}]}]}"#;
    let data = parse_json(json, "long.json", &LoadOptions::default()).unwrap();
    let params = WindowParams {
        max_length: 9,
        stride: 2,
    };
    let f = FeatureSet::build(&data, &tok, params).unwrap();
    let spans: Vec<(u32, u32)> = f
        .windows
        .iter()
        .map(|w| (w.context_start, w.context_end))
        .collect();
    assert_eq!(spans, [(0, 5), (3, 8), (6, 10)]);
    // "g h" is context tokens 6 and 7: inside windows 2 and 3 only, at
    // positions 3 + (6 - start) after [CLS] q [SEP].
    let labels: Vec<(u32, u32)> = f
        .windows
        .iter()
        .map(|w| (w.start_position, w.end_position))
        .collect();
    assert_eq!(labels, [(0, 0), (6, 7), (3, 4)]);
}

/// One example over `context`, one context token with character offsets
/// `offset`, no question tokens: the token sits at position 2.
fn one_token(context: &str, offset: (u32, u32)) -> (SquadDataset, FeatureSet) {
    let data = SquadDataset {
        origin: "fuzz".into(),
        titles: vec![String::new()],
        contexts: vec![Context {
            title: 0,
            text: context.into(),
        }],
        examples: vec![Example {
            id: "q0".into(),
            question: "q".into(),
            context: 0,
            answers: vec![Answer {
                text: context.chars().skip(1).collect(),
                answer_start: 1,
            }],
            plausible_answers: vec![],
        }],
        skipped: vec![],
        version: None,
    };
    let features = FeatureSet {
        params: WindowParams {
            max_length: 4,
            stride: 0,
        },
        template: PairTemplate::bert(2, 3),
        pad_id: 0,
        questions: vec![Encoded::default()],
        contexts: vec![Encoded {
            ids: vec![5],
            offsets: vec![offset],
        }],
        windows: vec![Window {
            example: 0,
            context_start: 0,
            context_end: 1,
            start_position: 0,
            end_position: 0,
        }],
        first_window: vec![0, 1],
    };
    (data, features)
}

/// fuzz target `postprocess`, decoded (fuzz/regressions/postprocess/ascii-clamp.bin):
/// the context ")#" and one token whose offsets run past its end, (1, 738197504).
/// The span is `context[1:738197504]` = "#" in Python, and the non-ASCII path
/// clamped it so, but the ASCII path gave "": an answer that depended on
/// whether the passage held a non-ASCII character.
#[test]
fn an_answer_end_past_the_context_clamps_as_python_slicing_does() {
    // The gold answer is that same text: exact match. "#" normalizes to no
    // tokens, which the official F1 scores 0.
    for (context, expected, f1) in [(")#", "#", 0.0), (")é", "é", 100.0)] {
        let (data, features) = one_token(context, (1, 738_197_504));
        let (start, end) = (vec![0.0f32; 4], vec![0.0f32; 4]);
        let logits = WindowLogits {
            start: &start,
            end: &end,
            row_len: 4,
        };
        let p = postprocess(&data, &features, &logits, PostprocessParams::default());
        assert_eq!(p[0].text, expected, "context {context:?}");
        let best = p[0].best().unwrap();
        assert_eq!((best.start_char, best.end_char), (1, 738_197_504));
        assert_eq!(best.score, 0.0);
        assert_eq!(p[0].nbest.len(), 1);
        let scores = score_predictions(&data, &p);
        assert_eq!((scores.exact_match, scores.f1), (100.0, f1));
    }
}

/// Offsets wholly past the end (or reversed) give an empty answer, on both paths.
#[test]
fn spans_past_or_reversed_in_the_context_are_empty() {
    for context in [")#", ")é"] {
        for offset in [(5, 9), (2, 1), (u32::MAX, u32::MAX)] {
            let (data, features) = one_token(context, offset);
            let (start, end) = (vec![0.0f32; 4], vec![0.0f32; 4]);
            let logits = WindowLogits {
                start: &start,
                end: &end,
                row_len: 4,
            };
            let p = postprocess(&data, &features, &logits, PostprocessParams::default());
            assert_eq!(p[0].text, "", "{context:?} {offset:?}");
            assert_eq!(p[0].nbest.len(), 1);
        }
    }
}
