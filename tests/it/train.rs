//! The trainer end to end on a tiny task written from scratch: it learns,
//! checkpoints, cancels, resumes exactly, and stops on divergence.

use crate::common;

use common::{run_events, tiny_run_config, tiny_task};
use squadlab::config::SaveStrategy;
use squadlab::train::{
    checkpoint, Control, RunRequest, StepLog, TrainEvent, TrainSummary, TrainerHandle,
};
use std::path::PathBuf;

fn steps(events: &[TrainEvent]) -> Vec<StepLog> {
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn summary(events: &[TrainEvent]) -> TrainSummary {
    match events.last() {
        Some(TrainEvent::Finished(s)) => (**s).clone(),
        other => panic!("the run did not finish: {other:?}"),
    }
}

#[test]
fn a_tiny_bert_learns_the_task_and_the_run_folder_holds_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let config = tiny_run_config(&json, &model);
    let run_dir = tmp.path().join("run");
    let events = run_events(RunRequest {
        config: config.clone(),
        run_dir: run_dir.clone(),
        resume: None,
    });
    let TrainEvent::Started(info) = events
        .iter()
        .find(|e| matches!(e, TrainEvent::Started(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let epochs = config.num_train_epochs as u64;
    let total = 6 * epochs;
    // 48 questions, one window each; 6 steps of 8 per epoch, 10% warmup.
    assert_eq!(
        (info.train_windows, info.steps_per_epoch, info.total_steps),
        (48, 6, total)
    );
    // Hugging Face's rule: ceil(warmup_ratio × total steps).
    assert_eq!(info.warmup_steps, total.div_ceil(10));
    let log = steps(&events);
    assert_eq!(log.len() as u64, total);
    assert_eq!(
        log[0].learning_rate, 0.0,
        "Hugging Face's warmup starts at 0"
    );
    assert!(log
        .iter()
        .all(|s| s.grad_norm.is_finite() && s.grad_norm > 0.0));
    let s = summary(&events);
    eprintln!(
        "eval {:?} losses {:?}",
        s.eval,
        s.log_history
            .iter()
            .map(|e| e.mean_loss)
            .collect::<Vec<_>>()
    );
    let first = &s.log_history[0];
    let last = s.log_history.last().unwrap();
    assert_eq!(s.log_history.len() as u64, epochs);
    assert!(
        last.mean_loss < first.mean_loss / 3.0,
        "loss must fall: first epoch {:.3}, last {:.3}",
        first.mean_loss,
        last.mean_loss
    );
    let eval = s.eval.as_ref().unwrap();
    // Chance is about 1 in 30 positions; the model must have learned the questions.
    assert!(
        eval.exact_match >= 50.0,
        "EM {:.1} on the training questions",
        eval.exact_match
    );
    assert_eq!(eval.total, 48);
    // HF's FLOPs estimate: 6 × non-embedding parameters × padded tokens.
    let c = common::task_bert_config(0);
    let (h, i, l) = (c.hidden_size, c.intermediate_size, c.num_hidden_layers);
    let per_layer = 4 * (h * h + h) + (h * i + i) + (i * h + h) + 4 * h;
    let non_embedding = l * per_layer + 2 * h + (2 * h + 2);
    assert_eq!(
        s.total_flos,
        (6 * non_embedding * 48 * 64) as f64 * epochs as f64
    );

    // The folder: final model, evaluation outputs, the two newest checkpoints.
    let predictions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("predictions.json")).unwrap()).unwrap();
    assert_eq!(predictions.as_object().unwrap().len(), 48);
    assert!(run_dir.join("nbest.json").is_file() && run_dir.join("results.ron").is_file());
    assert!(run_dir.join("model/model.safetensors").is_file());
    let kept: Vec<u64> = checkpoint::list_checkpoints(&run_dir)
        .iter()
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(kept, vec![total - 6, total]);
    let saved = events
        .iter()
        .filter(|e| matches!(e, TrainEvent::CheckpointSaved { .. }))
        .count();
    assert_eq!(saved as u64, epochs, "one checkpoint per epoch");

    // `squadlab eval` on the final model agrees with the trainer's evaluation.
    let cli = common::squadlab_json(&[
        "eval",
        "--model",
        &run_dir.join("model").display().to_string(),
        "--data",
        &json.display().to_string(),
        "--max-length",
        "64",
        "--stride",
        "16",
        "--device",
        "cpu",
    ]);
    assert!((cli["exact_match"].as_f64().unwrap() - eval.exact_match).abs() < 1e-9);
    assert_eq!(cli["total"], 48);
    assert_eq!(cli["windows"], 48);
}

#[test]
fn resuming_from_a_mid_epoch_checkpoint_reproduces_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 3.0;
    config.save_strategy = SaveStrategy::Steps;
    config.save_steps = 4; // step 4 is mid-epoch 1 (6 steps per epoch)
    config.save_total_limit = None;
    let full_dir = tmp.path().join("full");
    let full = run_events(RunRequest {
        config: config.clone(),
        run_dir: full_dir.clone(),
        resume: None,
    });
    let ckpt = checkpoint::checkpoint_dir(&full_dir, 4);
    let resumed = run_events(RunRequest {
        config: config.clone(),
        run_dir: tmp.path().join("resumed"),
        resume: Some(ckpt),
    });
    let (a, b) = (steps(&full), steps(&resumed));
    assert_eq!(b.first().map(|s| s.step), Some(5));
    assert_eq!(a.len(), 18);
    for (x, y) in a[4..].iter().zip(&b) {
        assert_eq!(x.step, y.step);
        assert_eq!(x.loss, y.loss, "step {}: loss differs after resume", x.step);
        assert_eq!(x.grad_norm, y.grad_norm, "step {}", x.step);
        assert_eq!(x.learning_rate, y.learning_rate, "step {}", x.step);
    }
    let (sa, sb) = (summary(&full), summary(&resumed));
    assert_eq!(
        sa.train_loss, sb.train_loss,
        "the summary counts the steps before the checkpoint too"
    );
    assert_eq!(sa.eval.unwrap().f1, sb.eval.unwrap().f1);

    // A config that would change the run's course is refused.
    let original = config.clone();
    config.learning_rate = 1e-2;
    let refused = run_events(RunRequest {
        config,
        run_dir: tmp.path().join("refused"),
        resume: Some(checkpoint::checkpoint_dir(&full_dir, 8)),
    });
    match refused.last() {
        Some(TrainEvent::Failed { error }) => assert!(error.contains("config differs"), "{error}"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Resumed in its own folder with rotation on, the run deletes the checkpoint
    // it started from and still finishes: the tokenizer was read at the start.
    let start = checkpoint::checkpoint_dir(&full_dir, 4);
    let in_place = run_events(RunRequest {
        config: squadlab::config::RunConfig {
            save_total_limit: Some(1),
            ..original
        },
        run_dir: full_dir.clone(),
        resume: Some(start.clone()),
    });
    assert!(
        matches!(in_place.last(), Some(TrainEvent::Finished(_))),
        "{:?}",
        in_place.last()
    );
    assert!(!start.exists(), "rotated away during the run");
    let newest = checkpoint::checkpoint_dir(&full_dir, 16);
    assert!(newest.join("vocab.txt").is_file() && full_dir.join("model/vocab.txt").is_file());
}

#[test]
fn pause_resume_and_cancel_with_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.save_strategy = SaveStrategy::No;
    let run_dir = tmp.path().join("run");
    let handle = TrainerHandle::spawn(RunRequest {
        config,
        run_dir: run_dir.clone(),
        resume: None,
    })
    .unwrap();
    let mut seen = Vec::new();
    let mut sent_pause = false;
    let mut sent_cancel = false;
    for e in handle.events.iter() {
        match &e {
            TrainEvent::Step(_) if !sent_pause => {
                handle.send(Control::Pause);
                sent_pause = true;
            }
            TrainEvent::Paused { .. } => handle.send(Control::Resume),
            TrainEvent::Resumed { .. } if !sent_cancel => {
                handle.send(Control::Cancel);
                sent_cancel = true;
            }
            _ => {}
        }
        let end = e.is_terminal();
        seen.push(e);
        if end {
            break;
        }
    }
    handle.join();
    let paused_at = seen.iter().find_map(|e| match e {
        TrainEvent::Paused { step } => Some(*step),
        _ => None,
    });
    assert!(paused_at.is_some(), "the trainer reported the pause");
    let Some(TrainEvent::Cancelled { step, checkpoint }) = seen.last() else {
        panic!("expected Cancelled, got {:?}", seen.last());
    };
    assert!(*step < 60, "cancelled before the end");
    let dir: PathBuf = checkpoint.clone().expect("cancel saves a checkpoint");
    let state = checkpoint::load_state(&dir).unwrap();
    assert_eq!(state.global_step, *step);
    assert_eq!(state.step_history.len() as u64, *step);
    assert!(dir.join("model.safetensors").is_file() && dir.join("optimizer.safetensors").is_file());
    assert!(
        !run_dir.join("predictions.json").exists(),
        "a cancelled run is not evaluated"
    );
}

#[test]
fn a_non_finite_loss_stops_the_run_as_diverged_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    // An absurd learning rate blows the weights up within a few steps.
    config.learning_rate = 1e30;
    config.warmup_ratio = 0.0;
    config.save_strategy = SaveStrategy::Steps;
    config.save_steps = 1;
    config.save_total_limit = None;
    let run_dir = tmp.path().join("run");
    let events = run_events(RunRequest {
        config,
        run_dir: run_dir.clone(),
        resume: None,
    });
    let Some(TrainEvent::Diverged {
        step,
        loss,
        grad_norm,
        last_checkpoint,
    }) = events.last()
    else {
        panic!("expected Diverged, got {:?}", events.last());
    };
    assert!(!loss.is_finite() || !grad_norm.is_finite());
    assert!(*step >= 2, "step 1 starts from good weights");
    let good = last_checkpoint
        .clone()
        .expect("earlier steps were checkpointed");
    assert_eq!(good, checkpoint::checkpoint_dir(&run_dir, step - 1));
    assert!(!checkpoint::checkpoint_dir(&run_dir, *step).exists());
    assert_eq!(steps(&events).len() as u64, step - 1);
}

#[test]
fn a_checkpoint_derived_with_other_warmup_steps_is_not_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.num_train_epochs = 3.0; // 18 steps
    config.warmup_ratio = 0.15; // ceil(2.7) = 3 now; the old floor rule gave 2
    config.max_steps = Some(5);
    config.save_strategy = SaveStrategy::Steps;
    config.save_steps = 4;
    let dir = tmp.path().join("run");
    let events = run_events(RunRequest {
        config: config.clone(),
        run_dir: dir.clone(),
        resume: None,
    });
    assert!(matches!(events.last(), Some(TrainEvent::Finished(_))));
    let ckpt = checkpoint::checkpoint_dir(&dir, 4);
    let state_file = ckpt.join(checkpoint::STATE_FILE);
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state["warmup_steps"], 1, "ceil(0.15 × 5 steps), recorded");

    // The same checkpoint as squadlab wrote it before it recorded warmup
    // (and floored the ratio): for 18 steps that was 2, this squadlab derives 3.
    config.max_steps = None;
    state.as_object_mut().unwrap().remove("warmup_steps");
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    let mut saved = checkpoint::load_run_config(&ckpt).unwrap();
    saved.max_steps = None;
    std::fs::write(ckpt.join(checkpoint::RUN_CONFIG_FILE), saved.to_ron()).unwrap();
    let refused = run_events(RunRequest {
        config,
        run_dir: tmp.path().join("refused"),
        resume: Some(ckpt),
    });
    match refused.last() {
        Some(TrainEvent::Failed { error }) => assert!(
            error.contains("trained with 2 warmup steps of 18")
                && error.contains("this squadlab derives 3"),
            "{error}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn started_generator(events: &[TrainEvent]) -> Option<String> {
    events.iter().find_map(|e| match e {
        TrainEvent::Started(info) => info.dropout_generator.clone(),
        _ => None,
    })
}

#[test]
fn a_checkpoint_from_before_the_lean_step_resumes_with_its_own_generator() {
    use squadlab::config::Graph;
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.save_strategy = SaveStrategy::Steps;
    config.save_steps = 2;
    config.save_total_limit = None;

    // The step before the lean one, with its SeededRng dropout.
    let legacy_dir = tmp.path().join("legacy");
    let legacy = run_events(RunRequest {
        config: squadlab::config::RunConfig {
            graph: Graph::Autograd,
            ..config.clone()
        },
        run_dir: legacy_dir.clone(),
        resume: None,
    });
    assert_eq!(started_generator(&legacy).as_deref(), Some("seeded-rng"));
    // A checkpoint written before the generator was recorded: no field.
    let old = checkpoint::checkpoint_dir(&legacy_dir, 2);
    let state_file = old.join("trainer_state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    assert_eq!(state["dropout_generator"], "seeded-rng");
    state.as_object_mut().unwrap().remove("dropout_generator");
    std::fs::write(&state_file, serde_json::to_string(&state).unwrap()).unwrap();

    // Resumed with today's default graph, it keeps drawing as it did.
    let resumed = run_events(RunRequest {
        config: config.clone(),
        run_dir: tmp.path().join("resumed"),
        resume: Some(old),
    });
    assert_eq!(started_generator(&resumed).as_deref(), Some("seeded-rng"));
    let (a, b) = (steps(&legacy), steps(&resumed));
    assert_eq!(b.first().map(|s| s.step), Some(3));
    for (x, y) in a[2..].iter().zip(&b) {
        assert_eq!(x.loss, y.loss, "step {}: the old generator's loss", x.step);
        assert_eq!(x.grad_norm, y.grad_norm, "step {}", x.step);
    }

    // A fresh run draws with Philox on the lean step: other masks, other losses.
    let lean_dir = tmp.path().join("lean");
    let lean = run_events(RunRequest {
        config: config.clone(),
        run_dir: lean_dir.clone(),
        resume: None,
    });
    assert_eq!(started_generator(&lean).as_deref(), Some("philox4x32-10"));
    assert_ne!(steps(&lean)[0].loss, a[0].loss, "the generators differ");
    let lean_state =
        squadlab::schema::checkpoint::load_state(&checkpoint::checkpoint_dir(&lean_dir, 2))
            .unwrap();
    assert_eq!(
        lean_state.dropout_generator,
        squadlab::rng::DropoutGenerator::Philox
    );

    // Its checkpoint is refused where the lean step cannot run, never re-rolled.
    let refused = run_events(RunRequest {
        config: squadlab::config::RunConfig {
            graph: Graph::Generic,
            ..config
        },
        run_dir: tmp.path().join("refused"),
        resume: Some(checkpoint::checkpoint_dir(&lean_dir, 2)),
    });
    match refused.last() {
        Some(TrainEvent::Failed { error }) => {
            assert!(
                error.contains("philox4x32-10") && error.contains("lean step"),
                "{error}"
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
