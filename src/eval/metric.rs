//! The official SQuAD v1.1 evaluation (`evaluate-v1.1.py`), rule for rule.

use crate::data::SquadDataset;
use crate::text::python_split;
use std::collections::HashMap;

/// Lowercase, drop ASCII punctuation, drop the articles a/an/the as whole
/// words, and collapse whitespace — in the official order.
pub fn normalize_answer(s: &str) -> String {
    let lowered = s.to_lowercase();
    let no_punct: String = lowered.chars().filter(|c| !c.is_ascii_punctuation()).collect();
    // `re.sub(r'\b(a|an|the)\b', ' ', …)`: a match is always a whole run of word characters.
    let mut no_articles = String::with_capacity(no_punct.len());
    let mut rest = no_punct.as_str();
    while !rest.is_empty() {
        let is_word = |c: char| c.is_alphanumeric() || c == '_';
        let first_is_word = rest.chars().next().is_some_and(is_word);
        let split = rest.find(|c: char| is_word(c) != first_is_word).unwrap_or(rest.len());
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

pub fn exact_match(prediction: &str, gold: &str) -> bool {
    normalize_answer(prediction) == normalize_answer(gold)
}

/// Token-multiset F1 of normalized answers; 0 when nothing is shared.
pub fn f1_score(prediction: &str, gold: &str) -> f64 {
    let (pred, gold) = (normalize_answer(prediction), normalize_answer(gold));
    let pred_tokens: Vec<&str> = pred.split(' ').filter(|t| !t.is_empty()).collect();
    let gold_tokens: Vec<&str> = gold.split(' ').filter(|t| !t.is_empty()).collect();
    let mut gold_counts: HashMap<&str, usize> = HashMap::new();
    for t in &gold_tokens {
        *gold_counts.entry(t).or_default() += 1;
    }
    let mut same = 0usize;
    for t in &pred_tokens {
        if let Some(n) = gold_counts.get_mut(t) {
            if *n > 0 {
                *n -= 1;
                same += 1;
            }
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / pred_tokens.len() as f64;
    let recall = same as f64 / gold_tokens.len() as f64;
    2.0 * precision * recall / (precision + recall)
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
    let per_question: Vec<QuestionScore> = data
        .examples
        .iter()
        .map(|ex| match predictions.get(&ex.id) {
            None => QuestionScore { id: ex.id.clone(), exact_match: 0.0, f1: 0.0, answered: false },
            Some(pred) => QuestionScore {
                id: ex.id.clone(),
                exact_match: best(ex, |g| f64::from(u8::from(exact_match(pred, g)))),
                f1: best(ex, |g| f1_score(pred, g)),
                answered: true,
            },
        })
        .collect();
    let total = per_question.len();
    // Summed in file order, as the official script does.
    let (em, f1) = per_question.iter().fold((0.0, 0.0), |(e, f), q| (e + q.exact_match, f + q.f1));
    let known: std::collections::HashSet<&str> = data.examples.iter().map(|e| e.id.as_str()).collect();
    let mut unknown_ids: Vec<String> =
        predictions.keys().filter(|id| !known.contains(id.as_str())).cloned().collect();
    unknown_ids.sort();
    Scores {
        exact_match: 100.0 * em / total as f64,
        f1: 100.0 * f1 / total as f64,
        total,
        unanswered: per_question.iter().filter(|q| !q.answered).count(),
        unknown_ids,
        per_question,
    }
}

fn best(ex: &crate::data::Example, metric: impl Fn(&str) -> f64) -> f64 {
    ex.answers.iter().map(|a| metric(&a.text)).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_matches_the_official_rules() {
        assert_eq!(normalize_answer("The  Denver Broncos!"), "denver broncos");
        // Punctuation goes before articles, so "the-end" is one word.
        assert_eq!(normalize_answer("an apple, a pear & the-end"), "apple pear theend");
        // Articles only as whole words: "theatre" and "Anna" stay.
        assert_eq!(normalize_answer("Theatre of Anna"), "theatre of anna");
        assert_eq!(normalize_answer("  \u{a0}"), "");
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
