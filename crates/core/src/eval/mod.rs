//! From logits to answers (post-processing) and from answers to the official
//! SQuAD v1.1 and v2.0 scores.

mod answer;
mod evaluate;
mod infer;
mod metric;
mod metric_v2;
mod postprocess;
mod predictions;
mod results;

pub use answer::{Answer, Answerer};
pub use evaluate::{
    evaluate, score_squad2_predictions, EvalOutput, NBEST_FILE, NULL_ODDS_FILE, NULL_SCORES_FILE,
    PREDICTIONS_FILE,
};
pub use infer::window_logits;
pub use metric::{
    exact_match, f1_score, normalize_answer, score, score_predictions, QuestionScore, Scores,
};
pub use metric_v2::{
    load_na_probs, question_score_v2, score_v2, BestThresholds, NaProbs, V2Breakdown,
    DEFAULT_NA_PROB_THRESH,
};
pub use postprocess::{
    postprocess, Candidate, NullDecision, PostprocessParams, Prediction, WindowLogits,
};
pub use predictions::{load_predictions, write_nbest, write_predictions};
pub use results::{EvalResults, QuestionResult, RESULTS_FILE};
