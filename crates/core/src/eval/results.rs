//! `results.ron`: a scored run's EM and F1, overall and per question, the
//! file comparisons and question-level diffs read.

use super::Scores;
use crate::fsutil::{read_ron, write_ron};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const RESULTS_FILE: &str = "results.ron";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalResults {
    /// Percentages, unrounded.
    pub exact_match: f64,
    pub f1: f64,
    pub total: usize,
    pub unanswered: usize,
    pub questions: Vec<QuestionResult>,
}

/// One question: exact match 1 or 0, F1 from 0 to 1 (best over gold answers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuestionResult {
    pub id: String,
    pub exact_match: f64,
    pub f1: f64,
}

impl EvalResults {
    pub fn from_scores(scores: &Scores) -> Self {
        Self {
            exact_match: scores.exact_match,
            f1: scores.f1,
            total: scores.total,
            unanswered: scores.unanswered,
            questions: scores
                .per_question
                .iter()
                .map(|q| QuestionResult {
                    id: q.id.clone(),
                    exact_match: q.exact_match,
                    f1: q.f1,
                })
                .collect(),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        write_ron(path, self, 2)
    }

    pub fn load(path: &Path) -> Result<Self> {
        read_ron(path)
    }
}
