//! The official SQuAD v1.1 evaluation (`evaluate-v1.1.py`), rule for rule.

use super::postprocess::Prediction;
use crate::data::SquadDataset;
use crate::text::python_split;
use rayon::prelude::*;
use std::collections::HashMap;

/// Lowercase, drop ASCII punctuation, drop the articles a/an/the as whole
/// words, and collapse whitespace — in the official order.
pub fn normalize_answer(s: &str) -> String {
    if s.is_ascii() {
        normalize_ascii(s.as_bytes())
    } else {
        normalize_general(s)
    }
}

fn normalize_general(s: &str) -> String {
    let lowered = s.to_lowercase();
    let no_punct: String = lowered
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    // `re.sub(r'\b(a|an|the)\b', ' ', …)`: a match is always a whole run of word characters.
    let mut no_articles = String::with_capacity(no_punct.len());
    let mut rest = no_punct.as_str();
    while !rest.is_empty() {
        let is_word = |c: char| c.is_alphanumeric() || c == '_';
        let first_is_word = rest.chars().next().is_some_and(is_word);
        let split = rest
            .find(|c: char| is_word(c) != first_is_word)
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(split);
        if first_is_word && matches!(run, "a" | "an" | "the") {
            no_articles.push(' ');
        } else {
            no_articles.push_str(run);
        }
        rest = tail;
    }
    python_split(&no_articles).collect::<Vec<_>>().join(" ")
}

/// [`normalize_answer`] for ASCII in one pass: word characters are then
/// letters and digits, and Python's whitespace is ' ', \t..\r and \x1c..\x1f.
fn normalize_ascii(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    let mut i = 0;
    let emit = |out: &mut String, pending: &mut bool, piece: &[u8]| {
        if *pending && !out.is_empty() {
            out.push(' ');
        }
        *pending = false;
        out.extend(piece.iter().map(|&b| b as char));
    };
    let mut run: Vec<u8> = Vec::with_capacity(16);
    while i < s.len() {
        let b = s[i].to_ascii_lowercase();
        i += 1;
        if b.is_ascii_punctuation() {
            continue;
        }
        if b.is_ascii_alphanumeric() {
            run.push(b);
            continue;
        }
        flush_run(&mut run, &mut out, &mut pending_space, &emit);
        if matches!(b, b' ' | b'\t'..=b'\r' | 0x1c..=0x1f) {
            pending_space = true;
        } else {
            emit(&mut out, &mut pending_space, &[b]);
        }
    }
    flush_run(&mut run, &mut out, &mut pending_space, &emit);
    out
}

/// A finished run of word characters: an article becomes a space.
fn flush_run(
    run: &mut Vec<u8>,
    out: &mut String,
    pending: &mut bool,
    emit: &impl Fn(&mut String, &mut bool, &[u8]),
) {
    if run.is_empty() {
        return;
    }
    if matches!(run.as_slice(), b"a" | b"an" | b"the") {
        *pending = true;
    } else {
        emit(out, pending, run);
    }
    run.clear();
}

pub fn exact_match(prediction: &str, gold: &str) -> bool {
    normalize_answer(prediction) == normalize_answer(gold)
}

/// Token-multiset F1 of normalized answers; 0 when nothing is shared.
pub fn f1_score(prediction: &str, gold: &str) -> f64 {
    f1_of_tokens(
        &sorted_tokens(&normalize_answer(prediction)),
        &sorted_tokens(&normalize_answer(gold)),
    )
}

pub(super) fn sorted_tokens(normalized: &str) -> Vec<&str> {
    let mut tokens: Vec<&str> = normalized.split(' ').filter(|t| !t.is_empty()).collect();
    tokens.sort_unstable();
    tokens
}

/// F1 of two sorted token lists: the multiset intersection by merging.
pub(super) fn f1_of_tokens(pred: &[&str], gold: &[&str]) -> f64 {
    let (mut i, mut j, mut same) = (0, 0, 0usize);
    while i < pred.len() && j < gold.len() {
        match pred[i].cmp(gold[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => (i, j, same) = (i + 1, j + 1, same + 1),
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / pred.len() as f64;
    let recall = same as f64 / gold.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Best EM and F1 of `prediction` over the gold answers, normalizing each once.
fn score_question(prediction: &str, golds: &[crate::data::Answer]) -> (f64, f64) {
    let pred = normalize_answer(prediction);
    let pred_tokens = sorted_tokens(&pred);
    let (mut em, mut f1) = (0.0f64, 0.0f64);
    for (k, gold) in golds.iter().enumerate() {
        // Annotators often agree verbatim; a repeated answer scores the same.
        if golds[..k].iter().any(|g| g.text == gold.text) {
            continue;
        }
        let gold = normalize_answer(&gold.text);
        if gold == pred {
            em = 1.0;
        }
        f1 = f1.max(f1_of_tokens(&pred_tokens, &sorted_tokens(&gold)));
    }
    (em, f1)
}

#[derive(Clone, Debug, PartialEq)]
pub struct QuestionScore {
    pub id: String,
    /// 1.0 or 0.0: the best over the gold answers.
    pub exact_match: f64,
    pub f1: f64,
    /// False when the predictions held no answer for this question (scored 0).
    pub answered: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Percentages, unrounded.
    pub exact_match: f64,
    pub f1: f64,
    pub total: usize,
    pub unanswered: usize,
    /// Prediction ids that are not questions of the dataset (ignored, as officially).
    pub unknown_ids: Vec<String>,
    pub per_question: Vec<QuestionScore>,
}

/// Scores predictions (`id → answer`) against every question of `data`.
pub fn score(data: &SquadDataset, predictions: &HashMap<String, String>) -> Scores {
    score_with(
        data,
        |i| predictions.get(&data.examples[i].id).map(String::as_str),
        unknown_ids(data, predictions),
    )
}

/// The prediction ids that are not questions of `data`, sorted.
pub(super) fn unknown_ids(
    data: &SquadDataset,
    predictions: &HashMap<String, String>,
) -> Vec<String> {
    let known: std::collections::HashSet<&str> =
        data.examples.iter().map(|e| e.id.as_str()).collect();
    let mut ids: Vec<String> = predictions
        .keys()
        .filter(|id| !known.contains(id.as_str()))
        .cloned()
        .collect();
    ids.sort();
    ids
}

/// Scores post-processed predictions, one per question of `data` in order.
pub fn score_predictions(data: &SquadDataset, predictions: &[Prediction]) -> Scores {
    assert_eq!(
        predictions.len(),
        data.examples.len(),
        "one prediction per question"
    );
    score_with(data, |i| Some(predictions[i].text.as_str()), Vec::new())
}

fn score_with<'a>(
    data: &SquadDataset,
    prediction: impl Fn(usize) -> Option<&'a str> + Sync,
    unknown_ids: Vec<String>,
) -> Scores {
    let per_question: Vec<QuestionScore> = (0..data.examples.len())
        .into_par_iter()
        .map(|i| {
            let ex = &data.examples[i];
            let (exact_match, f1, answered) = match prediction(i) {
                None => (0.0, 0.0, false),
                Some(pred) => {
                    let (em, f1) = score_question(pred, &ex.answers);
                    (em, f1, true)
                }
            };
            QuestionScore {
                id: ex.id.clone(),
                exact_match,
                f1,
                answered,
            }
        })
        .collect();
    let total = per_question.len();
    // Summed in file order, as the official script does.
    let (em, f1) = per_question
        .iter()
        .fold((0.0, 0.0), |(e, f), q| (e + q.exact_match, f + q.f1));
    Scores {
        exact_match: 100.0 * em / total as f64,
        f1: 100.0 * f1 / total as f64,
        total,
        unanswered: per_question.iter().filter(|q| !q.answered).count(),
        unknown_ids,
        per_question,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_matches_the_official_rules() {
        assert_eq!(normalize_answer("The  Denver Broncos!"), "denver broncos");
        // Punctuation goes before articles, so "the-end" is one word.
        assert_eq!(
            normalize_answer("an apple, a pear & the-end"),
            "apple pear theend"
        );
        // Articles only as whole words: "theatre" and "Anna" stay.
        assert_eq!(normalize_answer("Theatre of Anna"), "theatre of anna");
        assert_eq!(normalize_answer("  \u{a0}"), "");
    }

    #[test]
    fn the_ascii_fast_path_agrees_with_the_general_rules() {
        for s in [
            "The  Denver Broncos!",
            "an apple, a pear & the-end",
            "a\x01the b",
            "\x1ca\tTHE\x0bcat\x7f",
            "x_y the_z",
            "theatre A",
            "",
            "   ",
            "1,000 an-d",
        ] {
            assert_eq!(normalize_ascii(s.as_bytes()), normalize_general(s), "{s:?}");
        }
    }

    #[test]
    fn f1_counts_shared_tokens_once_each() {
        assert_eq!(f1_score("the cat sat", "cat"), 2.0 * 0.5 * 1.0 / 1.5);
        assert_eq!(f1_score("cat cat", "cat"), 2.0 * 0.5 * 1.0 / 1.5);
        assert_eq!(f1_score("", ""), 0.0);
        assert_eq!(f1_score("a", "the"), 0.0);
        assert!(exact_match("The Cat.", "cat"));
    }
}
