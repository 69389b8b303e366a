//! The official SQuAD 2.0 evaluation (`evaluate-v2.0.py`), rule for rule:
//! an unanswerable question's gold is `['']`; F1 is 1 when both sides have
//! no tokens and 0 when only one has none; a question whose no-answer
//! probability is above `na_prob_thresh` counts as answered "" ; and with
//! no-answer probabilities, the threshold that would have scored best.

use super::metric::{
    f1_of_tokens, normalize_answer, sorted_tokens, unknown_ids, QuestionScore, Scores,
};
use crate::data::SquadDataset;
pub use crate::schema::{BestThresholds, V2Breakdown};
use anyhow::{bail, Result};
use std::collections::HashMap;

/// The official script's `--na-prob-thresh` default.
pub const DEFAULT_NA_PROB_THRESH: f64 = 1.0;

/// Each question's no-answer probability (or any score where larger means
/// "no answer"), in the file's order: the best-threshold search breaks ties
/// in that order, as the official script's stable sort does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NaProbs(pub Vec<(String, f64)>);

/// The official gold answers of a question: the texts that normalize to
/// something, or `['']` for none (an unanswerable question).
fn gold_answers(answers: &[crate::data::Answer]) -> Vec<String> {
    let golds: Vec<String> = answers
        .iter()
        .map(|a| normalize_answer(&a.text))
        .filter(|g| !g.is_empty())
        .collect();
    if golds.is_empty() {
        vec![String::new()]
    } else {
        golds
    }
}

/// One question's official v2 EM and F1 (each 0 to 1) against its gold
/// answer texts (none: unanswerable).
pub fn question_score_v2(prediction: &str, golds: &[&str]) -> (f64, f64) {
    let golds: Vec<crate::data::Answer> = golds
        .iter()
        .map(|g| crate::data::Answer {
            text: g.to_string(),
            answer_start: 0,
        })
        .collect();
    score_question_v2(prediction, &gold_answers(&golds))
}

/// Best EM and F1 of `prediction` over normalized golds, by v2's F1 rule.
fn score_question_v2(prediction: &str, golds: &[String]) -> (f64, f64) {
    let pred = normalize_answer(prediction);
    let pred_tokens = sorted_tokens(&pred);
    let (mut em, mut f1) = (0.0f64, 0.0f64);
    for gold in golds {
        if *gold == pred {
            em = 1.0;
        }
        let gold_tokens = sorted_tokens(gold);
        let f = if gold_tokens.is_empty() || pred_tokens.is_empty() {
            // `int(gold_toks == pred_toks)`: 1 only when both are empty.
            (gold_tokens.is_empty() && pred_tokens.is_empty()) as u8 as f64
        } else {
            f1_of_tokens(&pred_tokens, &gold_tokens)
        };
        f1 = f1.max(f);
    }
    (em, f1)
}

/// Scores `predictions` against SQuAD 2.0 `data`. Without `na_probs` every
/// question's probability is 0, as the official script has it. Every
/// question needs a prediction (the official script cannot break a partial
/// file down by HasAns/NoAns), and, given `na_probs`, a probability.
pub fn score_v2(
    data: &SquadDataset,
    predictions: &HashMap<String, String>,
    na_probs: Option<&NaProbs>,
    na_prob_thresh: f64,
) -> Result<(Scores, V2Breakdown)> {
    let missing: Vec<&str> = data
        .examples
        .iter()
        .filter(|e| !predictions.contains_key(&e.id))
        .map(|e| e.id.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} of {} questions have no prediction (first: {:?}); SQuAD 2.0 scores need one per question",
            missing.len(),
            data.len(),
            missing[0]
        );
    }
    let probs: HashMap<&str, f64> = na_probs
        .map(|p| p.0.iter().map(|(id, v)| (id.as_str(), *v)).collect())
        .unwrap_or_default();
    if let Some(p) = na_probs {
        if let Some(e) = data
            .examples
            .iter()
            .find(|e| !probs.contains_key(e.id.as_str()))
        {
            bail!(
                "the no-answer probabilities hold none for question {:?} ({} given for {} questions)",
                e.id,
                p.0.len(),
                data.len()
            );
        }
        if let Some((id, _)) = p.0.iter().find(|(_, v)| v.is_nan()) {
            bail!("the no-answer probability of {id:?} is NaN");
        }
    }
    let prob_of = |id: &str| probs.get(id).copied().unwrap_or(0.0);

    let mut raw = Vec::with_capacity(data.len());
    let mut per_question = Vec::with_capacity(data.len());
    for ex in &data.examples {
        let pred = &predictions[&ex.id];
        let (em, f1) = score_question_v2(pred, &gold_answers(&ex.answers));
        raw.push((em, f1));
        // Above the threshold the question counts as answered "".
        let (exact_match, f1) = if prob_of(&ex.id) > na_prob_thresh {
            let right = ex.is_impossible() as u8 as f64;
            (right, right)
        } else {
            (em, f1)
        };
        per_question.push(QuestionScore {
            id: ex.id.clone(),
            exact_match,
            f1,
            answered: true,
        });
    }
    let mean = |pick: &dyn Fn(&QuestionScore) -> f64, keep: &dyn Fn(usize) -> bool| {
        let (mut sum, mut n) = (0.0, 0usize);
        for (_, q) in per_question.iter().enumerate().filter(|(i, _)| keep(*i)) {
            sum += pick(q);
            n += 1;
        }
        (n > 0).then(|| (100.0 * sum / n as f64, n))
    };
    let impossible = |i: usize| data.examples[i].is_impossible();
    let all = mean(&|q| q.exact_match, &|_| true);
    let all_f1 = mean(&|q| q.f1, &|_| true);
    let has = (
        mean(&|q| q.exact_match, &|i| !impossible(i)),
        mean(&|q| q.f1, &|i| !impossible(i)),
    );
    let no = (
        mean(&|q| q.exact_match, &|i| impossible(i)),
        mean(&|q| q.f1, &|i| impossible(i)),
    );
    let best = na_probs.map(|p| {
        let (best_exact, best_exact_thresh) = best_threshold(data, predictions, &raw, p, 0);
        let (best_f1, best_f1_thresh) = best_threshold(data, predictions, &raw, p, 1);
        BestThresholds {
            best_exact,
            best_exact_thresh,
            best_f1,
            best_f1_thresh,
        }
    });
    let total = data.len();
    let scores = Scores {
        exact_match: all.map_or(0.0, |a| a.0),
        f1: all_f1.map_or(0.0, |a| a.0),
        total,
        unanswered: 0,
        unknown_ids: unknown_ids(data, predictions),
        per_question,
    };
    let breakdown = V2Breakdown {
        has_ans_exact: has.0.map(|a| a.0),
        has_ans_f1: has.1.map(|a| a.0),
        has_ans_total: has.0.map(|a| a.1),
        no_ans_exact: no.0.map(|a| a.0),
        no_ans_f1: no.1.map(|a| a.0),
        no_ans_total: no.0.map(|a| a.1),
        best,
    };
    Ok((scores, breakdown))
}

/// `find_best_thresh`: walk the questions from the lowest no-answer
/// probability up, answering each in turn instead of abstaining, and keep
/// the best total (ties: the first reached). `which` 0 is EM, 1 is F1.
fn best_threshold(
    data: &SquadDataset,
    predictions: &HashMap<String, String>,
    raw: &[(f64, f64)],
    na_probs: &NaProbs,
    which: usize,
) -> (f64, f64) {
    let index: HashMap<&str, usize> = data
        .examples
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.as_str(), i))
        .collect();
    let no_answers = data.examples.iter().filter(|e| e.is_impossible()).count();
    let mut current = no_answers as f64;
    let (mut best, mut best_thresh) = (current, 0.0);
    // Python's sorted() is stable: equal probabilities keep the file's order.
    let mut order: Vec<&(String, f64)> = na_probs.0.iter().collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    for (id, prob) in order {
        let Some(&i) = index.get(id.as_str()) else {
            continue;
        };
        let ex = &data.examples[i];
        let diff = if !ex.is_impossible() {
            if which == 0 {
                raw[i].0
            } else {
                raw[i].1
            }
        } else if predictions[&ex.id].is_empty() {
            0.0
        } else {
            -1.0
        };
        current += diff;
        if current > best {
            best = current;
            best_thresh = *prob;
        }
    }
    (100.0 * best / data.len() as f64, best_thresh)
}

/// Reads `{id: probability}` in file order; a value that is not a number,
/// or an id given twice, is an error naming the file.
pub fn load_na_probs(path: &std::path::Path) -> Result<NaProbs> {
    use anyhow::Context;
    let origin = path.display();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read no-answer probabilities {origin}"))?;
    let entries =
        super::predictions::json_entries(&text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (id, v) in entries {
        let Some(p) = v.as_f64() else {
            bail!("{origin}: the value for id {id:?} must be a number, found {v}");
        };
        if !seen.insert(id.clone()) {
            bail!("{origin}: id {id:?} appears more than once");
        }
        out.push((id, p));
    }
    Ok(NaProbs(out))
}
