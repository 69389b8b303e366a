//! Evaluations during training (`eval_strategy`) and the best of them
//! (`metric_for_best_model`, `load_best_model_at_end`), by Hugging Face's rules.

use super::checkpoint::{checkpoint_dir, TrainerState};
use crate::config::{EvalStrategy, RunConfig};
use crate::schema::events::{BestModel, EvalSummary};
use std::path::{Path, PathBuf};

/// Whether an evaluation is due after `global_step`: at each epoch's end, or
/// every `eval_steps` steps.
pub fn due(config: &RunConfig, global_step: u64, epoch_ended: bool) -> bool {
    match config.eval_strategy {
        EvalStrategy::No => false,
        EvalStrategy::Epoch => epoch_ended,
        EvalStrategy::Steps => {
            let every = config.eval_every();
            every > 0 && global_step.is_multiple_of(every)
        }
    }
}

/// Records an in-training evaluation in the state; returns whether it is the
/// new best. As in Hugging Face, only a strictly better value replaces the
/// best, so ties keep the earlier step, and a NaN never wins.
pub fn note(state: &mut TrainerState, eval: &EvalSummary, config: &RunConfig) -> bool {
    state.eval_history.push(eval.clone());
    let (metric, greater) = config.best_metric();
    let value = metric.of(eval.exact_match, eval.f1);
    let better = match &state.best {
        _ if value.is_nan() => false,
        None => true,
        Some(best) if greater => value > best.value,
        Some(best) => value < best.value,
    };
    if better {
        state.best = Some(BestModel {
            step: eval.step,
            metric,
            value,
            checkpoint: None,
        });
    }
    better
}

/// Where the best evaluation's weights are on disk: its checkpoint in this
/// run's folder, else where it was saved before (a run resumed into a new
/// folder from another's checkpoint).
pub fn best_weights(run_dir: &Path, best: &BestModel) -> Option<PathBuf> {
    let here = checkpoint_dir(run_dir, best.step);
    [Some(here), best.checkpoint.clone()]
        .into_iter()
        .flatten()
        .find(|dir| dir.join(super::checkpoint::STATE_FILE).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BestMetric;
    use crate::rng::SeededRng;

    fn eval(step: u64, em: f64, f1: f64) -> EvalSummary {
        EvalSummary {
            exact_match: em,
            f1,
            total: 10,
            windows: 10,
            seconds: 0.0,
            step,
            epoch: 0.0,
            kind: crate::schema::events::EvalKind::InTraining,
            squad_v2: None,
        }
    }

    #[test]
    fn the_best_is_strictly_better_by_the_chosen_metric() {
        let mut state = TrainerState::new(SeededRng::new(1), Default::default());
        let mut c = RunConfig::default();
        let news: Vec<bool> = [
            (1, 10.0, 20.0),
            (2, 30.0, 15.0),
            (3, 5.0, 20.0),
            (4, 0.0, f64::NAN),
        ]
        .iter()
        .map(|&(s, em, f1)| note(&mut state, &eval(s, em, f1), &c))
        .collect();
        assert_eq!(
            news,
            [true, false, false, false],
            "a tie keeps the earlier step"
        );
        assert_eq!(
            state.best.as_ref().map(|b| (b.step, b.value)),
            Some((1, 20.0))
        );
        assert_eq!(state.eval_history.len(), 4);

        let mut state = TrainerState::new(SeededRng::new(1), Default::default());
        c.metric_for_best_model = Some(BestMetric::ExactMatch);
        c.greater_is_better = Some(false);
        for (s, em) in [(1, 10.0), (2, 3.0), (3, 7.0)] {
            note(&mut state, &eval(s, em, 0.0), &c);
        }
        let best = state.best.unwrap();
        assert_eq!(
            (best.step, best.metric, best.value),
            (2, BestMetric::ExactMatch, 3.0)
        );
    }

    #[test]
    fn evaluations_fall_due_by_strategy() {
        let mut c = RunConfig::default();
        assert!(!due(&c, 10, true));
        c.eval_strategy = EvalStrategy::Epoch;
        assert!(due(&c, 7, true) && !due(&c, 10, false));
        c.eval_strategy = EvalStrategy::Steps;
        c.logging_steps = 5;
        assert!(
            due(&c, 10, false) && !due(&c, 12, true),
            "eval_steps unset takes logging_steps"
        );
        c.eval_steps = Some(4);
        assert!(due(&c, 12, false) && !due(&c, 10, false));
    }
}
