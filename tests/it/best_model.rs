//! Evaluation during training and the best model: a tiny run with
//! `eval_strategy: steps` and `load_best_model_at_end` keeps its best
//! checkpoint through rotation, ends with its weights, and says its step.

use crate::common;

use common::{run_events, squadlab_json, step_losses, tiny_run_config, tiny_task};
use squadlab::config::{EvalStrategy, SaveStrategy};
use squadlab::train::checkpoint::{checkpoint_dir, list_checkpoints};
use squadlab::train::{EvalKind, EvalSummary, RunRequest, TrainEvent};
use std::path::Path;

fn evaluations(run_dir: &Path) -> Vec<EvalSummary> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| match serde_json::from_str(l).unwrap() {
            TrainEvent::Evaluated(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn the_best_checkpoint_survives_rotation_and_becomes_the_final_model() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let store = tmp.path().join("store");
    let train = |config: &squadlab::config::RunConfig, name: &str| {
        let file = tmp.path().join(format!("{name}.ron"));
        std::fs::write(&file, config.to_ron()).unwrap();
        squadlab_json(&[
            "train",
            &file.display().to_string(),
            "--store",
            &store.display().to_string(),
        ])
    };
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 10.0; // 6 steps an epoch: 60 steps
    config.save_strategy = SaveStrategy::Steps;
    config.save_steps = 6;
    config.save_total_limit = Some(1);
    let plain = train(&config, "plain");

    config.eval_strategy = EvalStrategy::Steps;
    config.eval_steps = Some(6);
    config.in_training_eval_samples = Some(24);
    config.load_best_model_at_end = true;
    let summary = train(&config, "best");
    let run_dir = Path::new(summary["run_dir"].as_str().unwrap()).to_path_buf();

    // Evaluating leaves training as it was: the same losses step for step.
    let plain_dir = Path::new(plain["run_dir"].as_str().unwrap());
    assert_eq!(step_losses(&run_dir), step_losses(plain_dir));

    let evals = evaluations(&run_dir);
    let (during, last) = evals.split_at(evals.len() - 1);
    assert_eq!(
        during.iter().map(|e| e.step).collect::<Vec<_>>(),
        (1..=10).map(|k| 6 * k).collect::<Vec<_>>()
    );
    assert!(during
        .iter()
        .all(|e| e.kind == EvalKind::InTraining && e.total == 24));
    // The best by F1, the earliest of equals (Hugging Face's strict `>`).
    let best = during
        .iter()
        .fold(None::<&EvalSummary>, |b, e| match b {
            Some(b) if e.f1 <= b.f1 => Some(b),
            _ => Some(e),
        })
        .unwrap();
    assert!(
        best.step < 60,
        "this setting peaks before the end (best at step {}), so rotation is put to the test",
        best.step
    );

    // Rotation kept the newest and the best, nothing else.
    let kept: Vec<u64> = list_checkpoints(&run_dir).iter().map(|(s, _)| *s).collect();
    assert_eq!(kept, vec![best.step, 60]);

    // The final model is the best checkpoint's weights, scored on all 48 questions.
    let weights = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    let best_dir = run_dir
        .join("checkpoints")
        .join(format!("checkpoint-{}", best.step));
    assert!(weights(&run_dir.join("model")) == weights(&best_dir));
    assert_eq!(
        (last[0].kind, last[0].total, last[0].step),
        (EvalKind::Final, 48, best.step)
    );
    assert_eq!(summary["best"]["step"], best.step);
    assert_eq!(summary["best"]["metric"], "f1");
    assert_eq!(summary["best"]["loaded_at_end"], true);
    assert_eq!(summary["f1"].as_f64(), Some(last[0].f1));

    // The record's headline is the final evaluation's; the best is beside it.
    let record = squadlab::store::RunRecord::load(&run_dir).unwrap();
    assert_eq!(record.outcome.f1, Some(last[0].f1));
    assert_eq!(record.outcome.eval_questions, Some(48));
    let b = record.outcome.best.unwrap();
    assert_eq!(
        (b.step, b.value, b.loaded_at_end),
        (best.step, best.f1, true)
    );

    // prune ranks by the evaluation, since each checkpoint has one at its step.
    let id = summary["run_id"].as_str().unwrap();
    let pruned = squadlab_json(&[
        "prune",
        id,
        "--keep-best",
        "1",
        "--store",
        &store.display().to_string(),
    ]);
    assert_eq!(pruned["ranked_by"], "in-training f1");
    let kept: Vec<u64> = list_checkpoints(&run_dir).iter().map(|(s, _)| *s).collect();
    assert_eq!(kept, vec![best.step], "--keep-best 1 keeps the best by F1");
}

#[test]
fn a_resumed_run_remembers_its_evaluations_and_its_best() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 6.0; // 36 steps
    config.save_strategy = SaveStrategy::Epoch;
    config.save_total_limit = None;
    config.eval_strategy = EvalStrategy::Epoch;
    config.metric_for_best_model = Some(squadlab::config::BestMetric::ExactMatch);
    config.load_best_model_at_end = true;
    let whole_dir = tmp.path().join("whole");
    let whole = run_events(RunRequest {
        config: config.clone(),
        run_dir: whole_dir.clone(),
        resume: None,
    });
    let resumed = run_events(RunRequest {
        config,
        run_dir: tmp.path().join("resumed"),
        resume: Some(checkpoint_dir(&whole_dir, 18)),
    });
    let summary = |events: &[TrainEvent]| match events.last() {
        Some(TrainEvent::Finished(s)) => (**s).clone(),
        other => panic!("expected Finished, got {other:?}"),
    };
    let (a, b) = (summary(&whole), summary(&resumed));
    let a_best = a.best.unwrap();
    let b_best = b.best.unwrap();
    assert_eq!(
        (a_best.step, a_best.value, a_best.metric),
        (b_best.step, b_best.value, b_best.metric)
    );
    assert!(a.loaded_best && b.loaded_best);
    assert_eq!(a.eval.unwrap().exact_match, b.eval.unwrap().exact_match);
    // The resumed run evaluated only the epochs after its checkpoint.
    let steps: Vec<u64> = resumed
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Evaluated(e) if e.kind == EvalKind::InTraining => Some(e.step),
            _ => None,
        })
        .collect();
    assert_eq!(steps, [24, 30, 36]);
}
