//! Question-level differences between two scored runs: which questions one
//! gets right (exact match) and the other wrong, and whether the difference
//! is more than chance (the paired tests of `significance`).

use super::significance::{paired_tests, BootstrapOptions, PairedTests};
use crate::eval::{load_predictions, EvalResults, PREDICTIONS_FILE, RESULTS_FILE};
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Flip {
    pub id: String,
    pub answer_a: String,
    pub answer_b: String,
    pub f1_a: f64,
    pub f1_b: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuestionDiff {
    pub both_right: usize,
    pub both_wrong: usize,
    /// Right in A, wrong in B.
    pub right_to_wrong: Vec<Flip>,
    /// Wrong in A, right in B.
    pub wrong_to_right: Vec<Flip>,
    /// Questions scored in only one of the runs.
    pub only_in_a: usize,
    pub only_in_b: usize,
    /// McNemar's test and the ΔF1 interval, when both runs scored the same
    /// questions; beside the flip counts in JSON.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub tests: Option<PairedTests>,
    /// Why there are no tests: the question counts that differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub untested: Option<String>,
}

/// Compares the per-question results of two run folders; the tests need
/// both to have scored exactly the same questions.
pub fn diff_runs(a: &Path, b: &Path, bootstrap: BootstrapOptions) -> Result<QuestionDiff> {
    let (ra, pa) = scored(a)?;
    let (rb, pb) = scored(b)?;
    let in_b: HashMap<&str, (f64, f64)> = rb
        .questions
        .iter()
        .map(|q| (q.id.as_str(), (q.exact_match, q.f1)))
        .collect();
    let mut diff = QuestionDiff {
        both_right: 0,
        both_wrong: 0,
        right_to_wrong: Vec::new(),
        wrong_to_right: Vec::new(),
        only_in_a: 0,
        only_in_b: 0,
        tests: None,
        untested: None,
    };
    // Paired scores, in A's question order: EM A, EM B, F1 A, F1 B.
    let mut paired: [Vec<f64>; 4] = Default::default();
    let mut matched = 0;
    for q in &ra.questions {
        let Some(&(em_b, f1_b)) = in_b.get(q.id.as_str()) else {
            diff.only_in_a += 1;
            continue;
        };
        matched += 1;
        for (v, x) in paired.iter_mut().zip([q.exact_match, em_b, q.f1, f1_b]) {
            v.push(x);
        }
        let flip = || Flip {
            id: q.id.clone(),
            answer_a: pa.get(&q.id).cloned().unwrap_or_default(),
            answer_b: pb.get(&q.id).cloned().unwrap_or_default(),
            f1_a: q.f1,
            f1_b,
        };
        match (q.exact_match > 0.5, em_b > 0.5) {
            (true, true) => diff.both_right += 1,
            (false, false) => diff.both_wrong += 1,
            (true, false) => diff.right_to_wrong.push(flip()),
            (false, true) => diff.wrong_to_right.push(flip()),
        }
    }
    diff.only_in_b = rb.questions.len() - matched;
    if diff.only_in_a + diff.only_in_b == 0 && matched > 0 {
        let [em_a, em_b, f1_a, f1_b] = &paired;
        diff.tests = Some(paired_tests(em_a, em_b, f1_a, f1_b, bootstrap));
    } else {
        diff.untested = Some(format!(
            "no paired tests: the runs were not scored on the same questions \
             (A {}, B {}, {matched} in common)",
            ra.questions.len(),
            rb.questions.len()
        ));
    }
    Ok(diff)
}

fn scored(dir: &Path) -> Result<(EvalResults, HashMap<String, String>)> {
    let results = EvalResults::load(&dir.join(RESULTS_FILE))
        .with_context(|| format!("run {} has no readable results", dir.display()))?;
    let predictions = load_predictions(&dir.join(PREDICTIONS_FILE)).unwrap_or_default();
    Ok((results, predictions))
}
