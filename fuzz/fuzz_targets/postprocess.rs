//! `postprocess` on a dataset and a `FeatureSet` built from the input:
//! arbitrary contexts and token offsets (in range or not), windows, question
//! lengths, logits (NaN and infinities included), `n_best_size` and
//! `max_answer_length`. The predictions are compared with a plain
//! re-implementation of the documented rules, then scored.
//!
//! `postprocess` asserts one logits row per window; the target always
//! meets that (the app sizes the logits from the same `FeatureSet`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use squadlab::data::tokenizer::Encoded;
use squadlab::data::{Answer, Context, Example, FeatureSet, SquadDataset, Window, WindowParams};
use squadlab::eval::{
    exact_match, f1_score, normalize_answer, postprocess, score_predictions, PostprocessParams,
    Prediction, WindowLogits,
};

#[derive(Arbitrary, Debug)]
struct Input {
    contexts: Vec<ContextIn>,
    examples: Vec<ExampleIn>,
    row_len: u8,
    n_best_size: Size,
    max_answer_length: Size,
    logits: Vec<f32>,
}

#[derive(Arbitrary, Debug)]
struct ContextIn {
    text: String,
    offsets: Vec<(u32, u32)>,
    /// Offsets wrapped into the context (as a tokenizer gives) or left raw.
    raw_offsets: bool,
}

#[derive(Arbitrary, Debug)]
struct ExampleIn {
    context: u8,
    question_tokens: u8,
    windows: Vec<(u8, u8)>,
    answers: Vec<String>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Size {
    Small(u8),
    Any(usize),
}

impl Size {
    fn get(self) -> usize {
        match self {
            Size::Small(n) => n as usize % 40,
            Size::Any(n) => n,
        }
    }
}

fn build(input: &Input) -> Option<(SquadDataset, FeatureSet)> {
    let contexts: Vec<&ContextIn> = input.contexts.iter().take(4).collect();
    if contexts.is_empty() {
        return None;
    }
    let mut data = SquadDataset {
        origin: "fuzz".into(),
        titles: vec![String::new()],
        ..Default::default()
    };
    let mut encoded = Vec::new();
    for c in &contexts {
        data.contexts.push(Context {
            title: 0,
            text: c.text.clone(),
        });
        let n = c.text.chars().count() as u64;
        let offsets: Vec<(u32, u32)> = c
            .offsets
            .iter()
            .take(64)
            .map(|&(a, b)| match c.raw_offsets {
                true => (a, b),
                false => ((a as u64 % (n + 2)) as u32, (b as u64 % (n + 2)) as u32),
            })
            .collect();
        encoded.push(Encoded {
            ids: vec![0; offsets.len()],
            offsets,
        });
    }
    let mut questions = Vec::new();
    let mut windows = Vec::new();
    let mut first_window = Vec::new();
    for (i, e) in input.examples.iter().take(8).enumerate() {
        let context = e.context as usize % contexts.len();
        data.examples.push(Example {
            id: format!("q{i}"),
            question: "q".into(),
            context: context as u32,
            answers: e
                .answers
                .iter()
                .take(3)
                .map(|t| Answer {
                    text: t.clone(),
                    answer_start: 0,
                })
                .collect(),
        });
        let q = e.question_tokens as usize % 16;
        questions.push(Encoded {
            ids: vec![0; q],
            offsets: vec![(0, 0); q],
        });
        first_window.push(windows.len() as u32);
        let n = encoded[context].ids.len();
        for &(a, b) in e.windows.iter().take(4) {
            let start = a as usize % (n + 1);
            let end = start + b as usize % (n - start + 1);
            windows.push(Window {
                example: i as u32,
                context_start: start as u32,
                context_end: end as u32,
                start_position: 0,
                end_position: 0,
            });
        }
    }
    first_window.push(windows.len() as u32);
    let row_len = input.row_len as usize % 65;
    let features = FeatureSet {
        params: WindowParams {
            max_length: row_len,
            stride: 0,
        },
        cls_id: 0,
        sep_id: 0,
        pad_id: 0,
        questions,
        contexts: encoded,
        windows,
        first_window,
    };
    Some((data, features))
}

/// Python's `context[s:e]` on characters.
fn py_slice(text: &str, s: u32, e: u32) -> String {
    if s >= e {
        return String::new();
    }
    text.chars()
        .skip(s as usize)
        .take((e - s) as usize)
        .collect()
}

/// Indices of the `k` largest, as numpy's `argsort(row)[-1:-k-1:-1]` ranks them.
fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..row.len()).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(b.cmp(&a)));
    idx.truncate(k);
    idx
}

/// The documented rules, written plainly.
fn reference(
    data: &SquadDataset,
    f: &FeatureSet,
    start: &[f32],
    end: &[f32],
    row_len: usize,
    p: PostprocessParams,
) -> Vec<(Vec<(u32, u32, u32)>, String)> {
    let mut out = Vec::new();
    for (i, ex) in data.examples.iter().enumerate() {
        let mut spans: Vec<(f32, u32, u32)> = Vec::new();
        for w in f.windows_of(i) {
            let srow = &start[w * row_len..(w + 1) * row_len];
            let erow = &end[w * row_len..(w + 1) * row_len];
            let ctx = f.context_positions(w);
            let offs = f.context_offsets(w, data);
            for s in top_k(srow, p.n_best_size) {
                for e in top_k(erow, p.n_best_size) {
                    let ok = ctx.contains(&s)
                        && ctx.contains(&e)
                        && e >= s
                        && e - s + 1 <= p.max_answer_length;
                    if ok {
                        spans.push((
                            srow[s] + erow[e],
                            offs[s - ctx.start].0,
                            offs[e - ctx.start].1,
                        ));
                    }
                }
            }
        }
        spans.sort_by(|a, b| b.0.total_cmp(&a.0));
        spans.truncate(p.n_best_size);
        let context = data.context_of(ex);
        let text = spans
            .first()
            .map(|&(_, s, e)| py_slice(context, s, e))
            .unwrap_or_default();
        out.push((
            spans
                .iter()
                .map(|&(score, s, e)| (score.to_bits(), s, e))
                .collect(),
            text,
        ));
    }
    out
}

fn check_prediction(data: &SquadDataset, i: usize, p: &Prediction, n_best: usize) {
    let ex = &data.examples[i];
    assert_eq!(p.id, ex.id);
    assert!(p.nbest.len() <= n_best);
    assert_eq!(p.text, p.best().map(|c| c.text.clone()).unwrap_or_default());
    let context = data.context_of(ex);
    for c in &p.nbest {
        assert_eq!(
            c.text,
            py_slice(context, c.start_char as u32, c.end_char as u32),
            "candidate {c:?} of {context:?}"
        );
    }
    assert!(p
        .nbest
        .windows(2)
        .all(|w| w[0].score.total_cmp(&w[1].score).is_ge()));
}

/// One NaN bit pattern for every NaN logit. Which of two NaN operands a sum
/// returns is unspecified (it follows operand order, which the compiler may
/// swap), so with mixed NaN payloads the order of NaN-scored spans is not a
/// property of the code; with one payload the sums are the same either way.
/// (`inf + -inf` still makes a NaN of its own, the same in both.)
fn canonical(v: f32) -> f32 {
    if v.is_nan() {
        f32::NAN
    } else {
        v
    }
}

fuzz_target!(|input: Input| {
    let Some((data, features)) = build(&input) else {
        return;
    };
    let row_len = features.params.max_length;
    let n = features.len() * row_len;
    let fill = |offset: usize| -> Vec<f32> {
        (0..n)
            .map(|k| match input.logits.len() {
                0 => 0.0,
                len => canonical(input.logits[(k + offset) % len]),
            })
            .collect()
    };
    let (start, end) = (fill(0), fill(n.max(1) + 7));
    let params = PostprocessParams {
        n_best_size: input.n_best_size.get(),
        max_answer_length: input.max_answer_length.get(),
    };
    let logits = WindowLogits {
        start: &start,
        end: &end,
        row_len,
    };
    let predictions = postprocess(&data, &features, &logits, params);
    assert_eq!(predictions.len(), data.examples.len());
    let expected = reference(&data, &features, &start, &end, row_len, params);
    for (i, (p, (spans, text))) in predictions.iter().zip(&expected).enumerate() {
        check_prediction(&data, i, p, params.n_best_size);
        let got: Vec<(u32, u32, u32)> = p
            .nbest
            .iter()
            .map(|c| (c.score.to_bits(), c.start_char as u32, c.end_char as u32))
            .collect();
        assert_eq!(&got, spans, "n-best of question {i}");
        assert_eq!(&p.text, text, "answer of question {i}");
    }

    if data.examples.is_empty() {
        return;
    }
    let scores = score_predictions(&data, &predictions);
    assert_eq!(scores.total, data.examples.len());
    assert_eq!(scores.per_question.len(), scores.total);
    for (q, (p, ex)) in scores
        .per_question
        .iter()
        .zip(predictions.iter().zip(&data.examples))
    {
        assert!(q.exact_match == 0.0 || q.exact_match == 1.0);
        assert!((0.0..=1.0).contains(&q.f1), "f1 {}", q.f1);
        let gold_has = ex.answers.iter().any(|a| a.text == p.text);
        if gold_has {
            assert_eq!(q.exact_match, 1.0);
        }
        if q.exact_match == 1.0 && !normalize_answer(&p.text).is_empty() {
            assert_eq!(q.f1, 1.0);
        }
    }
    assert!((0.0..=100.0).contains(&scores.exact_match));
    assert!((0.0..=100.0).contains(&scores.f1));
    for c in &data.contexts {
        let norm = normalize_answer(&c.text);
        assert_eq!(normalize_answer(&norm), norm, "normalize is not idempotent");
        assert!(exact_match(&c.text, &norm));
        let f1 = f1_score(&c.text, &c.text);
        assert!(f1 == 1.0 || (f1 == 0.0 && norm.is_empty()), "f1 {f1}");
    }
});
