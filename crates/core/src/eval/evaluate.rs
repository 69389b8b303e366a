//! Evaluation: batched inference, post-processing, official scoring, and the
//! files a researcher reads afterwards.

use super::{
    postprocess, score_predictions, score_v2, window_logits, write_nbest, write_predictions,
    EvalResults, NaProbs, PostprocessParams, Prediction, Scores, V2Breakdown, WindowLogits,
    DEFAULT_NA_PROB_THRESH, RESULTS_FILE,
};
use crate::data::{FeatureSet, SquadDataset};
use crate::fsutil::write_atomically;
use crate::model::BertQa;
use anyhow::Result;
use candle_core::Device;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

pub const PREDICTIONS_FILE: &str = "predictions.json";
pub const NBEST_FILE: &str = "nbest.json";
/// SQuAD 2.0: each question's null score minus its best span's
/// (`{id: diff}`, run_qa.py's null_odds.json), the official scorer's
/// `--na-prob-file`.
pub const NULL_ODDS_FILE: &str = "null_odds.json";
/// SQuAD 2.0: each question's null decision (null score, best span and its
/// score, the difference), for replaying the threshold.
pub const NULL_SCORES_FILE: &str = "null_scores.json";

pub struct EvalOutput {
    pub scores: Scores,
    pub predictions: Vec<Prediction>,
    pub windows: usize,
    pub seconds: f64,
    /// SQuAD 2.0 runs: HasAns/NoAns and the best thresholds over the null odds.
    pub squad_v2: Option<V2Breakdown>,
}

pub fn evaluate(
    model: &BertQa,
    data: &SquadDataset,
    features: &FeatureSet,
    params: PostprocessParams,
    batch_size: usize,
    device: &Device,
) -> Result<EvalOutput> {
    let started = Instant::now();
    let (start, end) = window_logits(model, data, features, batch_size, device)?;
    let logits = WindowLogits {
        start: &start,
        end: &end,
        row_len: features.params.max_length,
    };
    let predictions = postprocess(data, features, &logits, params);
    let (scores, squad_v2) = match params.null_score_diff_threshold {
        Some(_) => {
            let (scores, breakdown) = score_squad2_predictions(data, &predictions)?;
            (scores, Some(breakdown))
        }
        None => (score_predictions(data, &predictions), None),
    };
    Ok(EvalOutput {
        scores,
        predictions,
        windows: features.len(),
        seconds: started.elapsed().as_secs_f64(),
        squad_v2,
    })
}

/// A SQuAD 2.0 evaluation: the answers as decided (the run's threshold)
/// give `exact`, `f1` and HasAns/NoAns. The best thresholds come from the
/// official search over the real null odds, answering each question with
/// its best span when not abstaining: `best_f1` is the F1 the run would
/// score with `null_score_diff_threshold` at `best_f1_thresh`.
pub fn score_squad2_predictions(
    data: &SquadDataset,
    predictions: &[Prediction],
) -> Result<(Scores, V2Breakdown)> {
    let decided: HashMap<String, String> = predictions
        .iter()
        .map(|p| (p.id.clone(), p.text.clone()))
        .collect();
    let (scores, mut breakdown) = score_v2(data, &decided, None, DEFAULT_NA_PROB_THRESH)?;
    let spans: HashMap<String, String> = predictions
        .iter()
        .map(|p| {
            let span = p.null.as_ref().map_or(&p.text, |n| &n.best_non_null);
            (p.id.clone(), span.clone())
        })
        .collect();
    let odds = NaProbs(
        predictions
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    p.null.as_ref().map_or(0.0, |n| n.score_diff as f64),
                )
            })
            .collect(),
    );
    // An infinite na-prob threshold leaves every answer as it is.
    let (_, searched) = score_v2(data, &spans, Some(&odds), f64::INFINITY)?;
    breakdown.best = searched.best;
    Ok((scores, breakdown))
}

impl EvalOutput {
    /// Writes `predictions` (official `{id: answer}`), `nbest`, and `scores`
    /// (totals and one entry per question) to the three paths.
    pub fn write(&self, predictions: &Path, nbest: &Path, scores: &Path) -> Result<()> {
        write_predictions(predictions, &self.predictions)?;
        write_nbest(nbest, &self.predictions)?;
        let per_question: Vec<_> = self
            .scores
            .per_question
            .iter()
            .map(|q| json!({"id": q.id, "exact_match": q.exact_match, "f1": q.f1}))
            .collect();
        let doc = json!({
            "exact_match": self.scores.exact_match,
            "f1": self.scores.f1,
            "total": self.scores.total,
            "windows": self.windows,
            "seconds": self.seconds,
            "per_question": per_question,
        });
        write_atomically(scores, &serde_json::to_vec(&doc)?)
    }

    /// Writes a run folder's `predictions.json`, `nbest.json` and
    /// `results.ron`, and for SQuAD 2.0 `null_odds.json` and `null_scores.json`.
    pub fn write_to_dir(&self, dir: &Path) -> Result<()> {
        write_predictions(&dir.join(PREDICTIONS_FILE), &self.predictions)?;
        write_nbest(&dir.join(NBEST_FILE), &self.predictions)?;
        if self.squad_v2.is_some() {
            write_null_files(dir, &self.predictions)?;
        }
        EvalResults::from_scores(&self.scores).save(&dir.join(RESULTS_FILE))
    }
}

/// `null_odds.json` (`{id: score diff}`, question order) and
/// `null_scores.json` (`{id: null decision}`).
fn write_null_files(dir: &Path, predictions: &[Prediction]) -> Result<()> {
    let mut odds = serde_json::Map::new();
    let mut decisions = serde_json::Map::new();
    for p in predictions {
        if let Some(n) = &p.null {
            odds.insert(p.id.clone(), json!(n.score_diff as f64));
            decisions.insert(p.id.clone(), serde_json::to_value(n)?);
        }
    }
    write_atomically(&dir.join(NULL_ODDS_FILE), &serde_json::to_vec(&odds)?)?;
    write_atomically(
        &dir.join(NULL_SCORES_FILE),
        &serde_json::to_vec(&decisions)?,
    )
}
