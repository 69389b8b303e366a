//! Logits to answers, by the reference's rules: per window, the top `n_best`
//! start and end positions over all positions; only then drop spans outside
//! the context, reversed spans and spans over `max_answer_length` tokens; the
//! best sum of start and end logits wins, the first one seen on a tie.

use crate::data::{FeatureSet, SquadDataset};
use crate::text::{char_boundaries, char_slice};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PostprocessParams {
    pub n_best_size: usize,
    pub max_answer_length: usize,
    /// SQuAD 2.0 (`version_2_with_negative`): answer "" when the null score
    /// beats the best non-null span by more than this. None: SQuAD v1.1,
    /// always a span.
    pub null_score_diff_threshold: Option<f64>,
}

impl Default for PostprocessParams {
    fn default() -> Self {
        Self {
            n_best_size: 20,
            max_answer_length: 30,
            null_score_diff_threshold: None,
        }
    }
}

/// Start and end logits of every window, each row `row_len` long (window order).
pub struct WindowLogits<'a> {
    pub start: &'a [f32],
    pub end: &'a [f32],
    pub row_len: usize,
}

impl WindowLogits<'_> {
    fn rows(&self, w: usize) -> (&[f32], &[f32]) {
        let r = w * self.row_len..(w + 1) * self.row_len;
        (&self.start[r.clone()], &self.end[r])
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Candidate {
    pub text: String,
    pub score: f32,
    /// Character span in the context, end exclusive.
    pub start_char: usize,
    pub end_char: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    pub id: String,
    /// The best candidate's text, "" when no span qualified; with SQuAD 2.0,
    /// "" when the null score wins.
    pub text: String,
    /// Best first, at most `n_best_size`; with SQuAD 2.0 the null candidate
    /// (text "", characters 0..0) is among them, as in utils_qa.py.
    pub nbest: Vec<Candidate>,
    /// SQuAD 2.0 only: the null decision.
    pub null: Option<NullDecision>,
}

/// How a SQuAD 2.0 question's answer was decided between "" and a span.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NullDecision {
    /// CLS start + end logits, the lowest over the question's windows.
    pub null_score: f32,
    /// The best candidate with text (utils_qa.py's "empty" when none has).
    pub best_non_null: String,
    pub best_non_null_score: f32,
    /// null score − best start logit − best end logit, in f32 as utils_qa.py
    /// computes it: what `null_odds.json` holds, and what the threshold is
    /// compared with.
    pub score_diff: f32,
}

impl NullDecision {
    /// The answer at threshold `t`: "" when the null score wins by more than `t`.
    pub fn answer_at(&self, threshold: f64) -> &str {
        if self.score_diff as f64 > threshold {
            ""
        } else {
            &self.best_non_null
        }
    }
}

impl Prediction {
    pub fn best(&self) -> Option<&Candidate> {
        self.nbest.first()
    }
}

pub fn postprocess(
    data: &SquadDataset,
    features: &FeatureSet,
    logits: &WindowLogits,
    params: PostprocessParams,
) -> Vec<Prediction> {
    assert_eq!(
        logits.start.len(),
        features.len() * logits.row_len,
        "one start row per window"
    );
    assert_eq!(
        logits.end.len(),
        features.len() * logits.row_len,
        "one end row per window"
    );
    (0..data.examples.len())
        .into_par_iter()
        .map(|i| predict_example(data, features, logits, params, i))
        .collect()
}

fn predict_example(
    data: &SquadDataset,
    features: &FeatureSet,
    logits: &WindowLogits,
    params: PostprocessParams,
    example: usize,
) -> Prediction {
    // Spans in the reference's enumeration order.
    let mut spans: Vec<Span> = Vec::new();
    let mut null: Option<Span> = None;
    let (mut starts, mut ends, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    for w in features.windows_of(example) {
        let (start_row, end_row) = logits.rows(w);
        // The window's null score: its CLS position's, the lowest kept
        // (the first of equals), as utils_qa.py's min_null_prediction.
        let window_null = start_row[0] + end_row[0];
        if null.is_none_or(|n| n.score > window_null) {
            null = Some(Span {
                score: window_null,
                start_logit: start_row[0],
                end_logit: end_row[0],
                start_char: 0,
                end_char: 0,
                is_null: true,
            });
        }
        top_k_into(start_row, params.n_best_size, &mut scratch, &mut starts);
        top_k_into(end_row, params.n_best_size, &mut scratch, &mut ends);
        let context = features.context_positions(w);
        let offsets = features.context_offsets(w, data);
        for &s in &starts {
            if !context.contains(&s) {
                continue;
            }
            let (start_logit, start_char) = (start_row[s], offsets[s - context.start].0);
            for &e in &ends {
                // Inside the context, not reversed, at most max_answer_length tokens.
                if e < s || e >= context.end || e - s + 1 > params.max_answer_length {
                    continue;
                }
                spans.push(Span {
                    score: start_logit + end_row[e],
                    start_logit,
                    end_logit: end_row[e],
                    start_char,
                    end_char: offsets[e - context.start].1,
                    is_null: false,
                });
            }
        }
    }
    let version_2 = params.null_score_diff_threshold.is_some();
    let null = null.filter(|_| version_2);
    spans.extend(null);
    // Stable: among equal scores the first seen stays first, as Python's sorted() keeps them.
    spans.sort_by(|a, b| b.score.total_cmp(&a.score));
    spans.truncate(params.n_best_size);
    // The null candidate comes back if the cut dropped it.
    if let Some(null) = null.filter(|_| !spans.iter().any(|s| s.is_null)) {
        spans.push(null);
    }
    let ex = &data.examples[example];
    let context = data.context_of(ex);
    // Character offsets are byte offsets in ASCII text, the common case.
    let bounds = if context.is_ascii() {
        Vec::new()
    } else {
        char_boundaries(context)
    };
    // Both paths slice as Python does, clamping an end past the context (a
    // tokenizer.json may report such offsets): found by fuzzing, where the
    // ASCII path gave "" for `context[1:10**9]`.
    let cut = |s: u32, e: u32| match bounds.is_empty() {
        true => {
            let (s, e) = (
                (s as usize).min(context.len()),
                (e as usize).min(context.len()),
            );
            context.get(s..e).unwrap_or("")
        }
        false => char_slice(context, &bounds, s as usize, e as usize),
    };
    let texts: Vec<String> = spans
        .iter()
        .map(|s| cut(s.start_char, s.end_char).to_string())
        .collect();
    let decision = null.map(|null| {
        // The first candidate with text, else utils_qa.py's "empty" with
        // zero logits.
        let best = spans.iter().zip(&texts).find(|(_, text)| !text.is_empty());
        let (text, start_logit, end_logit, score) = match best {
            Some((s, text)) => (text.clone(), s.start_logit, s.end_logit, s.score),
            None => ("empty".to_string(), 0.0, 0.0, 0.0),
        };
        NullDecision {
            null_score: null.score,
            best_non_null: text,
            best_non_null_score: score,
            score_diff: null.score - start_logit - end_logit,
        }
    });
    let nbest: Vec<Candidate> = spans
        .iter()
        .zip(texts)
        .map(|(s, text)| Candidate {
            text,
            score: s.score,
            start_char: s.start_char as usize,
            end_char: s.end_char as usize,
        })
        .collect();
    let text = match (&decision, params.null_score_diff_threshold) {
        (Some(d), Some(threshold)) => d.answer_at(threshold).to_string(),
        _ => nbest.first().map(|c| c.text.clone()).unwrap_or_default(),
    };
    Prediction {
        id: ex.id.clone(),
        text,
        nbest,
        null: decision,
    }
}

/// A candidate answer while the n-best list is built.
#[derive(Clone, Copy)]
struct Span {
    score: f32,
    start_logit: f32,
    end_logit: f32,
    start_char: u32,
    end_char: u32,
    /// The CLS position's (null) candidate.
    is_null: bool,
}

#[cfg(test)]
fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut best = Vec::new();
    top_k_into(row, k, &mut Vec::new(), &mut best);
    best
}

/// Indices of the `k` largest values, largest first, into `best`. Equal
/// values rank the later index first, as reversing numpy's ascending `argsort`
/// does. `scratch` is reused between calls.
fn top_k_into(row: &[f32], k: usize, scratch: &mut Vec<u64>, best: &mut Vec<usize>) {
    best.clear();
    let k = k.min(row.len());
    if k == 0 {
        return;
    }
    // Value then index in one integer: its descending order is the reference's ranking.
    let ranked = |(i, &v): (usize, &f32)| (u64::from(total_order_key(v)) << 32) | i as u64;
    scratch.clear();
    scratch.extend(row.iter().take(4 * k).enumerate().map(ranked));
    if row.len() > scratch.len() {
        // The k-th largest of a prefix bounds the row's from below: keep only
        // the positions that reach it, then select among those.
        let n = scratch.len();
        scratch.select_nth_unstable(n - k);
        let floor = scratch[n - k];
        scratch.clear();
        for (i, &v) in row.iter().enumerate() {
            let r = ranked((i, &v));
            if r >= floor {
                scratch.push(r);
            }
        }
    }
    let n = scratch.len();
    scratch.select_nth_unstable(n - k);
    let top = &mut scratch[n - k..];
    top.sort_unstable_by(|a, b| b.cmp(a));
    best.extend(top.iter().map(|&r| (r & 0xffff_ffff) as usize));
}

/// The order of `f32::total_cmp`, as an unsigned integer.
fn total_order_key(v: f32) -> u32 {
    let bits = v.to_bits() as i32;
    ((bits ^ ((((bits >> 31) as u32) >> 1) as i32)) as u32) ^ 0x8000_0000
}

#[cfg(test)]
mod tests {
    use super::top_k;

    #[test]
    fn top_k_orders_and_breaks_ties_like_reversed_argsort() {
        let row = [0.5, 2.0, -1.0, 2.0, 1.0];
        assert_eq!(top_k(&row, 3), vec![3, 1, 4]);
        assert_eq!(top_k(&row, 10), vec![3, 1, 4, 0, 2]);
        assert_eq!(top_k(&row, 1), vec![3]);
        // Rows longer than the prefix that bounds the selection.
        let long: Vec<f32> = (0..100).map(|i| ((i * 37) % 101) as f32).collect();
        let mut by_hand: Vec<usize> = (0..100).collect();
        by_hand.sort_by(|&a, &b| long[b].total_cmp(&long[a]).then(b.cmp(&a)));
        assert_eq!(top_k(&long, 3), by_hand[..3]);
        let ties = [1.0f32; 50];
        assert_eq!(top_k(&ties, 3), vec![49, 48, 47]);
    }
}
