//! Turns raw records (from JSON or parquet) into a checked `SquadDataset`.

use super::squad::{Answer, Context, Example, SquadDataset};
use crate::config::DEFAULT_MAX_CONTEXT_CHARS;
use crate::text::{char_boundaries, char_slice, python_strip};
use anyhow::{bail, Result};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Keep only the first N questions, in file order.
    pub limit: Option<usize>,
    /// Drop records that fail the checks instead of failing the load.
    pub skip_bad_records: bool,
    /// Longest context accepted, in characters (`data.max_context_chars`).
    pub max_context_chars: usize,
    /// Accept questions without an answer (`version_2_with_negative`).
    pub version_2_with_negative: bool,
    /// Read only these articles (by index in the file, end exclusive).
    pub articles: Option<std::ops::Range<usize>>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            limit: None,
            skip_bad_records: false,
            max_context_chars: DEFAULT_MAX_CONTEXT_CHARS,
            version_2_with_negative: false,
            articles: None,
        }
    }
}

/// The message for a context over the limit, naming the setting that raises it.
pub fn context_too_long(chars: impl std::fmt::Display, max: usize) -> String {
    format!(
        "a context of {chars} characters exceeds max_context_chars ({max}); \
         raise data.max_context_chars in the run config (or --max-context-chars) to load it"
    )
}

#[derive(Debug, Deserialize)]
pub struct RawAnswer {
    pub text: String,
    pub answer_start: i64,
}

/// A question's answers as a file gives them: SQuAD 2.0 adds
/// `is_impossible` and, for an unanswerable question, `plausible_answers`.
#[derive(Debug, Default)]
pub struct RawAnswers {
    pub answers: Vec<RawAnswer>,
    pub is_impossible: Option<bool>,
    pub plausible_answers: Vec<RawAnswer>,
}

impl From<Vec<RawAnswer>> for RawAnswers {
    fn from(answers: Vec<RawAnswer>) -> Self {
        Self {
            answers,
            ..Self::default()
        }
    }
}

pub struct DatasetBuilder<'a> {
    options: &'a LoadOptions,
    out: SquadDataset,
    /// (title, context) → index, so shared contexts are stored and tokenized once.
    context_index: HashMap<(u32, String), u32>,
    title_index: HashMap<String, u32>,
    ids: HashSet<String>,
    /// Char boundaries of the last context, reused while its questions stream in.
    last_context: Option<(u32, Vec<usize>)>,
}

impl<'a> DatasetBuilder<'a> {
    pub fn new(origin: String, options: &'a LoadOptions) -> Self {
        Self {
            options,
            out: SquadDataset {
                origin,
                ..Default::default()
            },
            context_index: HashMap::new(),
            title_index: HashMap::new(),
            ids: HashSet::new(),
            last_context: None,
        }
    }

    /// The file's `version` field.
    pub fn set_version(&mut self, version: Option<String>) {
        self.out.version = version;
    }

    /// Adds one question; returns false once the limit is reached.
    pub fn push(
        &mut self,
        title: &str,
        context: &str,
        id: String,
        question: String,
        answers: RawAnswers,
    ) -> Result<bool> {
        if self
            .options
            .limit
            .is_some_and(|n| self.out.examples.len() >= n)
        {
            return Ok(false);
        }
        match self.check_and_add(title, context, &id, question, answers) {
            Ok(()) => {}
            Err(reason) if self.options.skip_bad_records => {
                self.out.skipped.push(format!("{id:?}: {reason}"));
            }
            Err(reason) => bail!("{}: bad record {id:?}: {reason}", self.out.origin),
        }
        Ok(true)
    }

    fn check_and_add(
        &mut self,
        title: &str,
        context: &str,
        id: &str,
        question: String,
        raw: RawAnswers,
    ) -> std::result::Result<(), String> {
        let raw_answers = raw.answers;
        if id.is_empty() {
            return Err("empty id".into());
        }
        if self.ids.contains(id) {
            return Err("duplicate id".into());
        }
        if python_strip(&question).is_empty() {
            return Err("empty question".into());
        }
        if python_strip(context).is_empty() {
            return Err("empty context".into());
        }
        match (raw.is_impossible, raw_answers.is_empty()) {
            (Some(true), false) => {
                return Err(format!(
                    "is_impossible is true, but it has {} answers",
                    raw_answers.len()
                ))
            }
            (Some(false), true) => {
                return Err("is_impossible is false, but it has no answers".into())
            }
            (_, true) if !self.options.version_2_with_negative => {
                return Err(
                    "no answers (SQuAD v1.1 questions all have one); for SQuAD 2.0 \
                     data, set version_2_with_negative: true in the run config \
                     (--version-2-with-negative on the command line)"
                        .into(),
                )
            }
            _ => {}
        }
        let context_idx = self.context_id(title, context);
        if self
            .last_context
            .as_ref()
            .is_none_or(|(idx, _)| *idx != context_idx)
        {
            self.last_context = Some((context_idx, char_boundaries(context)));
        }
        let boundaries = match &self.last_context {
            Some((_, b)) => b,
            None => return Err("internal: the context's character boundaries are missing".into()),
        };
        let n_chars = boundaries.len() - 1;
        if n_chars > self.options.max_context_chars {
            return Err(context_too_long(n_chars, self.options.max_context_chars));
        }
        let answers = checked_answers(raw_answers, context, boundaries, "answer")?;
        let plausible_answers = checked_answers(
            raw.plausible_answers,
            context,
            boundaries,
            "plausible answer",
        )?;
        self.ids.insert(id.to_string());
        self.out.examples.push(Example {
            id: id.to_string(),
            question,
            context: context_idx,
            answers,
            plausible_answers,
        });
        Ok(())
    }

    fn context_id(&mut self, title: &str, context: &str) -> u32 {
        let title_idx = match self.title_index.get(title) {
            Some(&i) => i,
            None => {
                let i = self.out.titles.len() as u32;
                self.out.titles.push(title.to_string());
                self.title_index.insert(title.to_string(), i);
                i
            }
        };
        let key = (title_idx, context.to_string());
        if let Some(&i) = self.context_index.get(&key) {
            return i;
        }
        let i = self.out.contexts.len() as u32;
        self.out.contexts.push(Context {
            title: title_idx,
            text: context.to_string(),
        });
        self.context_index.insert(key, i);
        i
    }

    pub fn finish(self) -> Result<SquadDataset> {
        if self.out.examples.is_empty() {
            if self.out.skipped.is_empty() {
                bail!("{}: holds no questions", self.out.origin);
            }
            bail!(
                "{}: every one of its {} questions failed the checks; first: {}",
                self.out.origin,
                self.out.skipped.len(),
                self.out.skipped[0]
            );
        }
        Ok(self.out)
    }
}

/// Answers whose `answer_start` points at their text in `context`; `what`
/// names them in messages ("answer 2", "plausible answer 0").
fn checked_answers(
    raw: Vec<RawAnswer>,
    context: &str,
    boundaries: &[usize],
    what: &str,
) -> std::result::Result<Vec<Answer>, String> {
    let n_chars = boundaries.len() - 1;
    let mut answers = Vec::with_capacity(raw.len());
    for (k, a) in raw.into_iter().enumerate() {
        // An empty answer has no span: its labels would end before they start.
        if python_strip(&a.text).is_empty() {
            return Err(format!("{what} {k}: empty text"));
        }
        let len = a.text.chars().count();
        let start = a.answer_start;
        if start < 0 || start as usize + len > n_chars {
            return Err(format!(
                "{what} {k} ({:?}): answer_start {start} + {len} chars is outside the context of {n_chars} chars",
                a.text
            ));
        }
        let start = start as usize;
        let found = char_slice(context, boundaries, start, start + len);
        if found != a.text {
            return Err(format!(
                "{what} {k}: answer_start {start} points at {found:?}, not at the answer text {:?}",
                a.text
            ));
        }
        answers.push(Answer {
            text: a.text,
            answer_start: start,
        });
    }
    Ok(answers)
}
