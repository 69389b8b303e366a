//! Logits to answers, by the reference's rules: per window, the top `n_best`
//! start and end positions over all positions; only then drop spans outside
//! the context, reversed spans and spans over `max_answer_length` tokens; the
//! best sum of start and end logits wins, the first one seen on a tie.

use crate::data::{FeatureSet, SquadDataset};
use crate::text::{char_boundaries, char_slice};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostprocessParams {
    pub n_best_size: usize,
    pub max_answer_length: usize,
}

impl Default for PostprocessParams {
    fn default() -> Self {
        Self { n_best_size: 20, max_answer_length: 30 }
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

#[derive(Clone, Debug, PartialEq)]
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
    /// The best candidate's text, "" when no span qualified.
    pub text: String,
    /// Best first, at most `n_best_size`.
    pub nbest: Vec<Candidate>,
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
    assert_eq!(logits.start.len(), features.len() * logits.row_len, "one start row per window");
    assert_eq!(logits.end.len(), features.len() * logits.row_len, "one end row per window");
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
    // (score, start_char, end_char) in the reference's enumeration order.
    let mut spans: Vec<(f32, u32, u32)> = Vec::new();
    for w in features.windows_of(example) {
        let (start_row, end_row) = logits.rows(w);
        let starts = top_k(start_row, params.n_best_size);
        let ends = top_k(end_row, params.n_best_size);
        let context = features.context_positions(w);
        for &s in &starts {
            for &e in &ends {
                if !context.contains(&s) || !context.contains(&e) {
                    continue;
                }
                if e < s || e - s + 1 > params.max_answer_length {
                    continue;
                }
                let (start_char, _) = features.offset(w, s, data).expect("inside the context");
                let (_, end_char) = features.offset(w, e, data).expect("inside the context");
                spans.push((start_row[s] + end_row[e], start_char, end_char));
            }
        }
    }
    // Stable: among equal scores the first seen stays first, as Python's max() picks it.
    spans.sort_by(|a, b| b.0.total_cmp(&a.0));
    spans.truncate(params.n_best_size);
    let ex = &data.examples[example];
    let context = data.context_of(ex);
    let bounds = char_boundaries(context);
    let nbest: Vec<Candidate> = spans
        .into_iter()
        .map(|(score, s, e)| Candidate {
            text: char_slice(context, &bounds, s as usize, e as usize).to_string(),
            score,
            start_char: s as usize,
            end_char: e as usize,
        })
        .collect();
    Prediction {
        id: ex.id.clone(),
        text: nbest.first().map(|c| c.text.clone()).unwrap_or_default(),
        nbest,
    }
}

/// Indices of the `k` largest values, largest first. Equal values rank the
/// later index first, as reversing numpy's ascending `argsort` does.
pub(crate) fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut best: Vec<usize> = Vec::with_capacity(k + 1);
    if k == 0 {
        return best;
    }
    for (i, &v) in row.iter().enumerate() {
        if best.len() == k && v.total_cmp(&row[best[k - 1]]).is_lt() {
            continue;
        }
        let at = best.partition_point(|&j| row[j].total_cmp(&v).is_gt());
        best.insert(at, i);
        best.truncate(k);
    }
    best
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
    }
}
