//! The SQuAD dataset (v1.1, or v2.0 with unanswerable questions) in memory:
//! contexts stored once, questions pointing at them. The types only;
//! data/load.rs and data/hub_parquet.rs read them.

/// The SQuAD versions runs and published rows are keyed by.
pub const SQUAD_V1: &str = "1.1";
pub const SQUAD_V2: &str = "2.0";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Validation,
}

#[derive(Clone, Debug, Default)]
pub struct SquadDataset {
    /// Where it was read from, for messages.
    pub origin: String,
    pub titles: Vec<String>,
    pub contexts: Vec<Context>,
    pub examples: Vec<Example>,
    /// Records dropped by `skip_bad_records`, with the reason for each.
    pub skipped: Vec<String>,
    /// The file's `version` field ("1.1", "v2.0"), when it has one.
    pub version: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Context {
    pub title: u32,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Example {
    pub id: String,
    pub question: String,
    pub context: u32,
    /// Empty for a SQuAD 2.0 question without an answer.
    pub answers: Vec<Answer>,
    /// SQuAD 2.0: what an unanswerable question's annotator found plausible.
    pub plausible_answers: Vec<Answer>,
}

impl Example {
    pub fn is_impossible(&self) -> bool {
        self.answers.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    /// In characters (Python string indices) into the context.
    pub answer_start: usize,
}

impl SquadDataset {
    pub fn context_of(&self, example: &Example) -> &str {
        &self.contexts[example.context as usize].text
    }

    pub fn title_of(&self, example: &Example) -> &str {
        &self.titles[self.contexts[example.context as usize].title as usize]
    }

    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Whether it is SQuAD 2.0 data: its `version` says 2, or a question has
    /// no answer (the test the official v2.0 scorer's data implies).
    pub fn is_v2(&self) -> bool {
        self.version
            .as_deref()
            .is_some_and(|v| v.trim_start_matches('v').starts_with('2'))
            || self.examples.iter().any(Example::is_impossible)
    }

    /// The first `n` questions in file order, with the contexts they use.
    pub fn first(&self, n: usize) -> SquadDataset {
        let examples = &self.examples[..n.min(self.examples.len())];
        let used = examples
            .iter()
            .map(|e| e.context)
            .max()
            .map_or(0, |c| c as usize + 1);
        SquadDataset {
            origin: self.origin.clone(),
            titles: self.titles.clone(),
            contexts: self.contexts[..used].to_vec(),
            examples: examples.to_vec(),
            skipped: Vec::new(),
            version: self.version.clone(),
        }
    }
}
