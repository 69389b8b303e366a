//! Where a model fails: a run's official per-question scores grouped by
//! question type, answer length or passage length (as the SQuAD paper breaks
//! its results down), each bucket with bootstrap intervals, and for several
//! runs each bucket's ΔF1 against the first run with the paired tests of
//! `significance`.
//!
//! The buckets are fixed, so runs scored on different subsets compare:
//! - question type: the first of `how many`, `how much`, `what`, `which`,
//!   `who`, `whom`, `whose`, `when`, `where`, `why`, `how` found as a whole
//!   word in the lower-cased question (at one position the longer phrase;
//!   `whom` and `whose` count as `who`), else `other`;
//! - answer length: whitespace tokens of the first gold answer, bucketed 1,
//!   2, 3, 4-5, 6-10, 11+; `no answer` for a SQuAD 2.0 question without one;
//! - context length: whitespace tokens of the passage, 1-100, 101-150,
//!   151-200, 201-300, 301+ (v1.1 dev's quartiles are 91, 112 and 146).

use super::run_data::eval_dataset;
use super::significance::{
    bootstrap_mean_interval, mcnemar, paired_bootstrap, BootstrapOptions, DeltaInterval, McNemar,
    ALPHA,
};
use crate::data::SquadDataset;
use crate::eval::{EvalResults, RESULTS_FILE};
use crate::store::RunRecord;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dimension {
    QuestionType,
    AnswerLength,
    ContextLength,
}

/// The question-type phrases, as written in a question, and their bucket.
const QUESTION_WORDS: [(&str, &str); 11] = [
    ("how many", "how many"),
    ("how much", "how much"),
    ("what", "what"),
    ("which", "which"),
    ("who", "who"),
    ("whom", "who"),
    ("whose", "who"),
    ("when", "when"),
    ("where", "where"),
    ("why", "why"),
    ("how", "how"),
];

const NO_ANSWER: &str = "no answer";

impl Dimension {
    pub const ALL: [Dimension; 3] = [
        Dimension::QuestionType,
        Dimension::AnswerLength,
        Dimension::ContextLength,
    ];

    /// The name `--by` takes.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::QuestionType => "question-type",
            Dimension::AnswerLength => "answer-length",
            Dimension::ContextLength => "context-length",
        }
    }

    /// Every bucket, in the order tables show them.
    pub fn buckets(self) -> &'static [&'static str] {
        match self {
            Dimension::QuestionType => &[
                "what", "how", "who", "how many", "how much", "which", "when", "where", "why",
                "other",
            ],
            Dimension::AnswerLength => &["1", "2", "3", "4-5", "6-10", "11+", NO_ANSWER],
            Dimension::ContextLength => &["1-100", "101-150", "151-200", "201-300", "301+"],
        }
    }

    /// The bucket of one question: its text, its first gold answer (None
    /// when it has none) and its passage.
    pub fn bucket_of(
        self,
        question: &str,
        first_answer: Option<&str>,
        context: &str,
    ) -> &'static str {
        match self {
            Dimension::QuestionType => question_type(question),
            Dimension::AnswerLength => match first_answer {
                None => NO_ANSWER,
                Some(a) => match a.split_whitespace().count() {
                    0..=1 => "1",
                    2 => "2",
                    3 => "3",
                    4..=5 => "4-5",
                    6..=10 => "6-10",
                    _ => "11+",
                },
            },
            Dimension::ContextLength => match context.split_whitespace().count() {
                0..=100 => "1-100",
                101..=150 => "101-150",
                151..=200 => "151-200",
                201..=300 => "201-300",
                _ => "301+",
            },
        }
    }
}

impl std::str::FromStr for Dimension {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Dimension::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                format!("unknown breakdown {s:?}; expected question-type, answer-length or context-length")
            })
    }
}

/// The question's type (module comment): the earliest question word, the
/// longer phrase where two start together.
pub fn question_type(question: &str) -> &'static str {
    let text = question.to_lowercase();
    let is_word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut best: Option<(usize, usize, &'static str)> = None;
    for (phrase, bucket) in QUESTION_WORDS {
        let found = text.match_indices(phrase).find(|&(at, _)| {
            !is_word(text[..at].chars().next_back())
                && !is_word(text[at + phrase.len()..].chars().next())
        });
        if let Some((at, _)) = found {
            let better = best
                .is_none_or(|(b_at, b_len, _)| at < b_at || (at == b_at && phrase.len() > b_len));
            if better {
                best = Some((at, phrase.len(), bucket));
            }
        }
    }
    best.map_or("other", |(_, _, bucket)| bucket)
}

/// One bucket of one run: its question count and scores (percentages) with
/// 95% percentile-bootstrap intervals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BucketRow {
    pub bucket: String,
    pub count: usize,
    pub exact_match: f64,
    pub f1: f64,
    pub exact_match_interval: [f64; 2],
    pub f1_interval: [f64; 2],
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunBreakdown {
    pub run_id: String,
    pub name: String,
    pub rows: Vec<BucketRow>,
}

/// One bucket of a run against the first run, on the questions both scored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BucketComparison {
    pub bucket: String,
    pub count: usize,
    /// F1(run) − F1(first run), with its paired bootstrap interval.
    pub delta_f1: DeltaInterval,
    pub mcnemar: McNemar,
    /// McNemar's p below 0.05 or an interval without 0.
    pub significant: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunComparison {
    pub baseline: String,
    pub run_id: String,
    pub rows: Vec<BucketComparison>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breakdown {
    pub by: &'static str,
    #[serde(skip)]
    pub dimension: Dimension,
    pub runs: Vec<RunBreakdown>,
    /// Each run after the first against the first.
    pub comparisons: Vec<RunComparison>,
}

/// One scored question: its bucket and official EM and F1 (0 or 1, 0 to 1).
struct Scored {
    bucket: &'static str,
    exact_match: f64,
    f1: f64,
}

/// Breaks down the runs in `dirs` (run folders) by `by`.
pub fn breakdown_runs(
    dirs: &[&Path],
    by: Dimension,
    bootstrap: BootstrapOptions,
) -> Result<Breakdown> {
    if dirs.is_empty() {
        bail!("no runs to break down");
    }
    let mut scored = Vec::new();
    let mut data_cache: HashMap<String, SquadDataset> = HashMap::new();
    for dir in dirs {
        let record = RunRecord::load(dir)?;
        let results = EvalResults::load(&dir.join(RESULTS_FILE)).with_context(|| {
            format!(
                "run {} has no readable {RESULTS_FILE}: is it scored?",
                record.id
            )
        })?;
        let key = record
            .data
            .iter()
            .find(|d| d.split == "validation")
            .map(|d| d.path.clone())
            .unwrap_or_default();
        if !data_cache.contains_key(&key) || key.is_empty() {
            data_cache.insert(key.clone(), eval_dataset(&record)?);
        }
        let questions = score_by_bucket(&record, &results, &data_cache[&key], by)?;
        scored.push((record, questions));
    }
    let runs = scored
        .iter()
        .map(|(record, questions)| RunBreakdown {
            run_id: record.id.clone(),
            name: record.name.clone(),
            rows: bucket_rows(questions, by, bootstrap),
        })
        .collect();
    let comparisons = scored[1..]
        .iter()
        .map(|(record, questions)| RunComparison {
            baseline: scored[0].0.id.clone(),
            run_id: record.id.clone(),
            rows: compare_buckets(&scored[0].1, questions, by, bootstrap),
        })
        .collect();
    Ok(Breakdown {
        by: by.name(),
        dimension: by,
        runs,
        comparisons,
    })
}

/// The run's scored questions by id, each with its bucket.
fn score_by_bucket(
    record: &RunRecord,
    results: &EvalResults,
    data: &SquadDataset,
    by: Dimension,
) -> Result<HashMap<String, Scored>> {
    let examples: HashMap<&str, usize> = data
        .examples
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.as_str(), i))
        .collect();
    let mut out = HashMap::new();
    for q in &results.questions {
        let Some(&i) = examples.get(q.id.as_str()) else {
            continue;
        };
        let e = &data.examples[i];
        let context = &data.contexts[e.context as usize].text;
        let first = e.answers.first().map(|a| a.text.as_str());
        let bucket = by.bucket_of(&e.question, first, context);
        if !q.exact_match.is_finite() || !q.f1.is_finite() {
            bail!(
                "run {}: question {} has a score that is not a number",
                record.id,
                q.id
            );
        }
        out.insert(
            q.id.clone(),
            Scored {
                bucket,
                exact_match: q.exact_match,
                f1: q.f1,
            },
        );
    }
    if out.is_empty() {
        return Err(anyhow!(
            "none of run {}'s {} scored questions are in {}",
            record.id,
            results.questions.len(),
            data.origin
        ));
    }
    Ok(out)
}

/// Question ids in one fixed order, so bootstrap draws do not depend on
/// hash order.
fn sorted_ids(questions: &HashMap<String, Scored>) -> Vec<&String> {
    let mut ids: Vec<&String> = questions.keys().collect();
    ids.sort();
    ids
}

fn bucket_rows(
    questions: &HashMap<String, Scored>,
    by: Dimension,
    bootstrap: BootstrapOptions,
) -> Vec<BucketRow> {
    let ids = sorted_ids(questions);
    by.buckets()
        .iter()
        .filter_map(|&bucket| {
            let (em, f1): (Vec<f64>, Vec<f64>) = ids
                .iter()
                .map(|id| &questions[*id])
                .filter(|q| q.bucket == bucket)
                .map(|q| (100.0 * q.exact_match, 100.0 * q.f1))
                .unzip();
            if em.is_empty() {
                return None;
            }
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            Some(BucketRow {
                bucket: bucket.to_string(),
                count: em.len(),
                exact_match: mean(&em),
                f1: mean(&f1),
                exact_match_interval: bootstrap_mean_interval(&em, bootstrap),
                f1_interval: bootstrap_mean_interval(&f1, bootstrap),
            })
        })
        .collect()
}

fn compare_buckets(
    base: &HashMap<String, Scored>,
    run: &HashMap<String, Scored>,
    by: Dimension,
    bootstrap: BootstrapOptions,
) -> Vec<BucketComparison> {
    let ids: Vec<&String> = sorted_ids(base)
        .into_iter()
        .filter(|id| run.contains_key(*id))
        .collect();
    by.buckets()
        .iter()
        .filter_map(|&bucket| {
            let pairs: Vec<(&Scored, &Scored)> = ids
                .iter()
                .map(|id| (&base[*id], &run[*id]))
                .filter(|(a, _)| a.bucket == bucket)
                .collect();
            if pairs.is_empty() {
                return None;
            }
            let f1_a: Vec<f64> = pairs.iter().map(|(a, _)| a.f1).collect();
            let f1_b: Vec<f64> = pairs.iter().map(|(_, b)| b.f1).collect();
            let flips = |from: bool| {
                pairs
                    .iter()
                    .filter(|(a, b)| (a.exact_match > 0.5) == from && (b.exact_match > 0.5) != from)
                    .count()
            };
            let test = mcnemar(flips(true), flips(false));
            let delta_f1 = paired_bootstrap(&f1_a, &f1_b, bootstrap);
            Some(BucketComparison {
                bucket: bucket.to_string(),
                count: pairs.len(),
                significant: test.p_value < ALPHA || !delta_f1.contains_zero(),
                delta_f1,
                mcnemar: test,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_types_follow_the_rules() {
        for (question, bucket) in [
            ("How many games did the Broncos win?", "how many"),
            ("How much did it cost?", "how much"),
            ("How did they win?", "how"),
            ("In what year did it open?", "what"),
            ("Whose team won?", "who"),
            ("To whom was it given?", "who"),
            ("The game was played where?", "where"),
            ("Which team, and when?", "which"),
            ("When and why did it close?", "when"),
            ("Name the somewhat known showman.", "other"),
            ("What's the Whatnot?", "what"),
            ("Is it so?", "other"),
            ("HOW MANY?", "how many"),
            ("how manyfold is it?", "how"),
        ] {
            assert_eq!(question_type(question), bucket, "{question}");
        }
    }

    #[test]
    fn lengths_fall_in_fixed_buckets() {
        let answer = |a: Option<&str>| Dimension::AnswerLength.bucket_of("q", a, "");
        assert_eq!(answer(Some("Denver")), "1");
        assert_eq!(answer(Some("Denver Broncos")), "2");
        assert_eq!(answer(Some("a b c")), "3");
        assert_eq!(answer(Some("a b c d e")), "4-5");
        assert_eq!(answer(Some("a b c d e f")), "6-10");
        assert_eq!(answer(Some(&"w ".repeat(11))), "11+");
        assert_eq!(answer(None), "no answer");
        let context = |n: usize| Dimension::ContextLength.bucket_of("q", None, &"w ".repeat(n));
        assert_eq!(context(100), "1-100");
        assert_eq!(context(101), "101-150");
        assert_eq!(context(200), "151-200");
        assert_eq!(context(300), "201-300");
        assert_eq!(context(301), "301+");
        assert_eq!(
            "answer-length".parse::<Dimension>(),
            Ok(Dimension::AnswerLength)
        );
        assert!("length"
            .parse::<Dimension>()
            .unwrap_err()
            .contains("question-type"));
    }
}
