//! Evaluation: batched inference, post-processing, official scoring, and the
//! files a researcher reads afterwards.

use super::{
    postprocess, score_predictions, window_logits, write_nbest, write_predictions, EvalResults,
    PostprocessParams, Prediction, Scores, WindowLogits, RESULTS_FILE,
};
use crate::data::{FeatureSet, SquadDataset};
use crate::fsutil::write_atomically;
use crate::model::BertQa;
use anyhow::Result;
use candle_core::Device;
use serde_json::json;
use std::path::Path;
use std::time::Instant;

pub const PREDICTIONS_FILE: &str = "predictions.json";
pub const NBEST_FILE: &str = "nbest.json";

pub struct EvalOutput {
    pub scores: Scores,
    pub predictions: Vec<Prediction>,
    pub windows: usize,
    pub seconds: f64,
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
    let scores = score_predictions(data, &predictions);
    Ok(EvalOutput {
        scores,
        predictions,
        windows: features.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
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

    /// Writes a run folder's `predictions.json`, `nbest.json` and `results.ron`.
    pub fn write_to_dir(&self, dir: &Path) -> Result<()> {
        write_predictions(&dir.join(PREDICTIONS_FILE), &self.predictions)?;
        write_nbest(&dir.join(NBEST_FILE), &self.predictions)?;
        EvalResults::from_scores(&self.scores).save(&dir.join(RESULTS_FILE))
    }
}
