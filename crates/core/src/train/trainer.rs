//! The training loop: epochs of seeded shuffles, accumulated micro-batches,
//! clipped AdamW steps on a linear schedule, checkpoints, then evaluation.

use super::checkpoint::{
    checkpoint_dir, list_checkpoints, rotate_checkpoints, save_checkpoint, CheckpointParts,
    TrainerState,
};
use super::control::Control;
use super::engine::{dropout_round, generator_for, Engine};
use super::evaluation;
use super::optimizer::{global_norm, AdamW, AdamWParams};
use super::prepare::Prepared;
use super::schedule::Schedule;
use super::schedule::StepPlan;
use super::system::EventSender;
use crate::config::{RunConfig, SaveStrategy};
use crate::data::{FeatureSet, SquadDataset};
use crate::eval::{evaluate, EvalOutput, PostprocessParams};
use crate::model::{
    describe, expected_shapes, load_qa_model, save_pretrained, BertConfig, BertQa, Params,
    WindowBatch,
};
use crate::rng::SeededRng;
use crate::schema::events::{
    EpochLog, EvalKind, EvalSummary, StartInfo, StepLog, TrainEvent, TrainSummary,
};
use anyhow::{bail, Result};
use crossbeam_channel::{Receiver, TryRecvError};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The window order of epoch `epoch`: a Fisher–Yates shuffle seeded by the run's seed.
pub fn epoch_order(windows: usize, seed: u64, epoch: u32) -> Vec<u32> {
    let mut rng = SeededRng::new(seed ^ 0x5348_5546_0000_0000 ^ u64::from(epoch));
    let mut order: Vec<u32> = (0..windows as u32).collect();
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// The dropout stream's starting state, distinct from the shuffle's and the head's.
pub fn dropout_rng(seed: u64) -> SeededRng {
    SeededRng::new(seed ^ 0x4452_4F50_0000_0000)
}

/// Hugging Face's FLOPs estimate for one window of `seq_len` padded tokens:
/// 6 × the parameters outside the embedding tables (forward and backward).
pub fn flops_per_window(config: &BertConfig, seq_len: usize) -> f64 {
    let non_embedding: usize = expected_shapes(config)
        .iter()
        .filter(|(name, _)| !name.contains("_embeddings."))
        .map(|(_, shape)| shape.iter().product::<usize>())
        .sum();
    6.0 * non_embedding as f64 * seq_len as f64
}

enum Next {
    Continue,
    Cancel,
}

/// What the loop carries from one optimiser step to the next.
struct Progress {
    plan: StepPlan,
    schedule: Schedule,
    optimizer: AdamW,
    engine: Engine,
    /// Everything a checkpoint keeps: the step, the epoch's order, the
    /// generators, the history.
    state: TrainerState,
    flops_per_window: f64,
    /// Not resumed: the fault injection that slows steps applies.
    fresh_start: bool,
    /// Windows and seconds of this process's steps, for its throughput (a
    /// resumed run's earlier steps ran elsewhere).
    session_samples: u64,
    session_seconds: f64,
}

/// What one optimiser step came to.
enum Step {
    /// At this learning rate.
    Taken { learning_rate: f64 },
    /// A loss or the gradients' norm was not finite: nothing was updated.
    Diverged {
        step: u64,
        loss: f64,
        grad_norm: f64,
    },
}

pub struct Trainer<'a> {
    p: Prepared,
    run_dir: PathBuf,
    events: &'a EventSender,
    control: &'a Receiver<Control>,
}

impl<'a> Trainer<'a> {
    pub fn new(
        p: Prepared,
        run_dir: &Path,
        events: &'a EventSender,
        control: &'a Receiver<Control>,
    ) -> Self {
        Self {
            p,
            run_dir: run_dir.to_path_buf(),
            events,
            control,
        }
    }

    fn emit(&self, event: TrainEvent) {
        // A front end that stopped listening must not stop the run.
        let _ = self.events.send(event);
    }

    /// Trains to the plan's last step (or a cancel), then evaluates: the loop
    /// over epochs and optimiser steps, each step by [`Trainer::step`] and
    /// what follows it by [`Trainer::after_step`].
    pub fn run(mut self) -> Result<()> {
        let c = self.p.config.clone();
        // The whole run on this thread builds the graph the config asks for.
        let _graph = crate::model::kernels::generic_graph(c.graph == crate::config::Graph::Generic);
        let mut run = self.start(&c)?;
        self.announce(&c, &run);
        let windows = self.p.train_features.len();
        while run.state.global_step < run.plan.total_steps {
            if run.state.epoch_order.is_empty() {
                run.state.epoch_order = epoch_order(windows, c.seed, run.state.epoch);
                run.state.steps_done_in_epoch = 0;
            }
            let order = run.state.epoch_order.clone();
            let micro_batches: Vec<&[u32]> = order.chunks(c.per_device_train_batch_size).collect();
            for group in micro_batches
                .chunks(c.gradient_accumulation_steps)
                .skip(run.state.steps_done_in_epoch as usize)
            {
                if run.state.global_step >= run.plan.total_steps {
                    break;
                }
                if let Next::Cancel = self.poll_control(run.state.global_step) {
                    let checkpoint = Some(self.save(&mut run.state, &run.optimizer, &c)?);
                    self.emit(TrainEvent::Cancelled {
                        step: run.state.global_step,
                        checkpoint,
                    });
                    return Ok(());
                }
                match self.step(&c, &mut run, group)? {
                    Step::Taken { learning_rate } => {
                        self.after_step(&c, &mut run, learning_rate)?
                    }
                    Step::Diverged {
                        step,
                        loss,
                        grad_norm,
                    } => return self.diverged(step, loss, grad_norm),
                }
            }
        }
        self.finish(&run.state)
    }

    /// The schedule, the optimiser and the engine, and the state to go on
    /// from: a fresh one, or a checkpoint's with its optimiser moments.
    fn start(&mut self, c: &RunConfig) -> Result<Progress> {
        let plan = StepPlan::new(c, self.p.train_features.len());
        let warmup_steps = c.warmup_steps_for(plan.total_steps);
        let schedule = Schedule {
            kind: c.lr_scheduler_type,
            kwargs: c.lr_scheduler_kwargs,
            base_lr: c.learning_rate,
            warmup_steps,
            total_steps: plan.total_steps,
        };
        let mut optimizer = AdamW::new(
            &self.p.model.params,
            AdamWParams {
                beta1: c.adam_beta1,
                beta2: c.adam_beta2,
                eps: c.adam_epsilon,
                weight_decay: c.weight_decay,
            },
        )?;
        if c.layerwise_lr_decay != 1.0 {
            optimizer.set_lr_scales(&crate::model::layout::layerwise_lr_scales(
                &self.p.model.config,
                c.layerwise_lr_decay,
            ));
        }
        let fresh_start = self.p.resume.is_none();
        let mut state = match self.p.resume.take() {
            Some((dir, state)) => {
                optimizer.load(
                    &dir.join(super::checkpoint::OPTIMIZER_FILE),
                    state.global_step,
                    &self.p.device,
                )?;
                state
            }
            None => TrainerState::new(
                dropout_rng(c.seed),
                generator_for(c, &self.p.device, self.p.compute),
            ),
        };
        // The generator the run began with, whatever the config says now.
        let engine = Engine::new(
            c,
            &self.p.model.config,
            &self.p.model.params,
            &self.p.device,
            self.p.compute,
            state.dropout_generator,
        )?;
        // `prepare` refused a checkpoint derived with other warmup steps.
        state.warmup_steps = Some(warmup_steps);
        if !self.p.device.is_cpu() {
            self.p.device.set_seed(c.seed ^ state.global_step)?;
        }
        Ok(Progress {
            flops_per_window: flops_per_window(&self.p.model.config, c.max_seq_length),
            plan,
            schedule,
            optimizer,
            engine,
            state,
            fresh_start,
            session_samples: 0,
            session_seconds: 0.0,
        })
    }

    /// The fused kernels' self-check warnings, then the run's plan as
    /// `Started`.
    fn announce(&self, c: &RunConfig, run: &Progress) {
        let (device_name, dtype_name) = describe(&self.p.device, self.p.compute);
        // The self-check of every fused implementation on this device (once
        // per process): what it switched off is said before the run starts.
        for report in crate::model::fused::device_checks(&self.p.device) {
            for message in report.warnings() {
                self.emit(TrainEvent::Warning { message });
            }
        }
        self.emit(TrainEvent::Started(Box::new(StartInfo {
            config: c.clone(),
            run_dir: self.run_dir.clone(),
            total_steps: run.plan.total_steps,
            steps_per_epoch: run.plan.steps_per_epoch,
            warmup_steps: run.schedule.warmup_steps,
            train_data: self.p.train.origin.clone(),
            eval_data: self.p.eval.origin.clone(),
            train_examples: self.p.train.len(),
            train_windows: self.p.train_features.len(),
            eval_examples: self.p.eval.len(),
            eval_windows: self.p.eval_features.len(),
            effective_batch_size: c.per_device_train_batch_size * c.gradient_accumulation_steps,
            device: device_name,
            dtype: dtype_name,
            parameters: self
                .p
                .model
                .params
                .vars()
                .map(|(_, v)| v.elem_count())
                .sum(),
            resumed_from_step: run.state.global_step,
            dropout_generator: Some(run.engine.generator().name().to_string()),
            fused_kernels: Some(run.engine.fused_kernels().names()),
            family: Some(self.p.model.config.family()),
        })));
    }

    /// One optimiser step over `group`'s micro-batches: forward and backward
    /// with accumulated gradients, the step's one host read, the divergence
    /// checks, the clipped update, and its `Step` event.
    fn step(&self, c: &RunConfig, run: &mut Progress, group: &[&[u32]]) -> Result<Step> {
        let started = Instant::now();
        let state = &mut run.state;
        run.engine.begin(&self.p.model.params)?;
        let mut step_windows = 0usize;
        for (i, mb) in group.iter().enumerate() {
            let ids: Vec<usize> = mb.iter().map(|&w| w as usize).collect();
            let pad_to = if c.dynamic_padding {
                self.p.train_features.longest(&ids)
            } else {
                c.max_seq_length
            };
            // Uploads go through the device's stream from the thread
            // that created it; work moved to another thread would race.
            if std::thread::current().id() != self.p.device_thread {
                bail!("device work left the thread that created the device");
            }
            let batch = WindowBatch::new(
                &self.p.train_features,
                &self.p.train,
                &ids,
                pad_to,
                &self.p.device,
            )?;
            let round = dropout_round(state.global_step, c.gradient_accumulation_steps, i);
            run.engine.micro_batch(
                &self.p.model.params,
                &batch,
                1.0 / group.len() as f64,
                round,
                &mut state.dropout_rng,
            )?;
            step_windows += mb.len();
        }
        // The step's one host sync: its losses and gradient norms in
        // one read (each read waits for the device on CUDA).
        let (values, squared) = run.engine.read()?;
        let mut loss_sum = 0f64;
        for (i, mut value) in values.into_iter().enumerate() {
            if i == 0 && crate::faults::nan_loss_at(state.global_step + 1) {
                value = f64::NAN;
            }
            if !value.is_finite() {
                return Ok(Step::Diverged {
                    step: state.global_step + 1,
                    loss: value,
                    grad_norm: f64::NAN,
                });
            }
            loss_sum += value;
        }
        let loss = loss_sum / group.len() as f64;
        let lr = run.schedule.lr(state.global_step);
        let trace = run.engine.trace(state.global_step + 1)?;
        let grad_norm = global_norm(&squared);
        if !grad_norm.is_finite() {
            return Ok(Step::Diverged {
                step: state.global_step + 1,
                loss,
                grad_norm,
            });
        }
        run.engine
            .update(&mut run.optimizer, c.max_grad_norm, grad_norm, lr)?;
        if run.fresh_start {
            crate::faults::slow_step();
        }
        super::trace::after_update(trace, &self.p.model.params)?;

        let seconds = started.elapsed().as_secs_f64();
        run.session_seconds += seconds;
        run.session_samples += step_windows as u64;
        state.train_seconds += seconds;
        state.samples_seen += step_windows as u64;
        state.total_flos += run.flops_per_window * step_windows as f64;
        state.global_step += 1;
        state.steps_done_in_epoch += 1;
        let log = StepLog {
            step: state.global_step,
            epoch: state.epoch as f64
                + state.steps_done_in_epoch as f64 / run.plan.steps_per_epoch as f64,
            loss,
            grad_norm,
            learning_rate: lr,
            samples_per_second: run.session_samples as f64 / run.session_seconds.max(1e-9),
            elapsed_seconds: state.train_seconds,
        };
        state.step_history.push(log.clone());
        self.emit(TrainEvent::Step(log));
        Ok(Step::Taken { learning_rate: lr })
    }

    /// What follows a step: the epoch's end, an evaluation when due, and a
    /// checkpoint when due or when the evaluation found a new best.
    fn after_step(&self, c: &RunConfig, run: &mut Progress, lr: f64) -> Result<()> {
        let state = &mut run.state;
        let epoch_ended = state.steps_done_in_epoch == run.plan.steps_per_epoch;
        if epoch_ended {
            self.end_epoch(state, lr);
        }
        // Evaluate before saving, as Hugging Face does, so the
        // checkpoint's state knows whether it is the best.
        let mut new_best = false;
        if evaluation::due(c, state.global_step, epoch_ended) {
            new_best = self.evaluate_during_training(state, &run.plan)?;
        }
        let save = match c.save_strategy {
            SaveStrategy::Epoch => epoch_ended,
            SaveStrategy::Steps => state.global_step.is_multiple_of(c.save_steps),
            SaveStrategy::No => false,
        };
        // A best that falls between saves is kept too, so the end
        // can load it (Hugging Face would warn it cannot).
        if save || (new_best && c.load_best_model_at_end) {
            self.save(state, &run.optimizer, c)?;
        }
        Ok(())
    }

    fn end_epoch(&self, state: &mut TrainerState, lr: f64) {
        let this_epoch: Vec<&StepLog> = state
            .step_history
            .iter()
            .rev()
            .take(state.steps_done_in_epoch as usize)
            .collect();
        let n = this_epoch.len().max(1) as f64;
        let log = EpochLog {
            epoch: state.epoch + 1,
            step: state.global_step,
            mean_loss: this_epoch.iter().map(|s| s.loss).sum::<f64>() / n,
            mean_grad_norm: this_epoch.iter().map(|s| s.grad_norm).sum::<f64>() / n,
            learning_rate: lr,
            elapsed_seconds: state.train_seconds,
        };
        state.epoch_history.push(log.clone());
        state.epoch += 1;
        state.epoch_order.clear();
        state.steps_done_in_epoch = 0;
        self.emit(TrainEvent::EpochEnd(log));
    }

    /// Reads pending control requests; blocks while paused.
    fn poll_control(&self, step: u64) -> Next {
        loop {
            match self.control.try_recv() {
                Ok(Control::Cancel) => return Next::Cancel,
                Ok(Control::Resume) => {}
                Ok(Control::Pause) => {
                    self.emit(TrainEvent::Paused { step });
                    loop {
                        match self.control.recv() {
                            Ok(Control::Resume) => break,
                            Ok(Control::Pause) => {}
                            // A controller that vanished while paused cannot resume us.
                            Ok(Control::Cancel) | Err(_) => return Next::Cancel,
                        }
                    }
                    self.emit(TrainEvent::Resumed { step });
                }
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {
                    return Next::Continue
                }
            }
        }
    }

    fn save(
        &self,
        state: &mut TrainerState,
        optimizer: &AdamW,
        config: &crate::config::RunConfig,
    ) -> Result<PathBuf> {
        if let Some(best) = state.best.as_mut().filter(|b| b.step == state.global_step) {
            best.checkpoint = Some(checkpoint_dir(&self.run_dir, best.step));
        }
        let dir = save_checkpoint(
            &self.run_dir,
            state,
            &CheckpointParts {
                config,
                model_config: &self.p.model.config,
                params: &self.p.model.params,
                optimizer,
                tokenizer: &self.p.tokenizer_file,
            },
        )?;
        if let Some(keep) = config.save_total_limit {
            let best = state
                .best
                .as_ref()
                .map(|b| checkpoint_dir(&self.run_dir, b.step));
            let protect: Vec<&Path> = [Some(dir.as_path()), best.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            rotate_checkpoints(&self.run_dir, keep, &protect)?;
        }
        self.emit(TrainEvent::CheckpointSaved {
            step: state.global_step,
            path: dir.clone(),
        });
        Ok(dir)
    }

    fn diverged(&self, step: u64, loss: f64, grad_norm: f64) -> Result<()> {
        self.emit(TrainEvent::Diverged {
            step,
            loss,
            grad_norm,
            last_checkpoint: list_checkpoints(&self.run_dir).pop().map(|(_, d)| d),
        });
        Ok(())
    }

    /// Scores the weights in `params` on `data`.
    fn score(
        &self,
        params: &Params,
        model_config: &BertConfig,
        data: &SquadDataset,
        features: &FeatureSet,
    ) -> Result<EvalOutput> {
        let c = &self.p.config;
        let model = BertQa::with_dtype(model_config.clone(), params, self.p.compute)?;
        evaluate(
            &model,
            data,
            features,
            PostprocessParams {
                n_best_size: c.n_best_size,
                max_answer_length: c.max_answer_length,
                null_score_diff_threshold: c
                    .version_2_with_negative
                    .then_some(c.null_score_diff_threshold),
            },
            c.per_device_eval_batch_size,
            &self.p.device,
        )
    }

    /// An evaluation during training, on `in_training_eval_samples` questions
    /// when set; returns whether it is the best so far. Its time is not
    /// training time, so samples/s stay comparable.
    fn evaluate_during_training(&self, state: &mut TrainerState, plan: &StepPlan) -> Result<bool> {
        let (data, features) = match &self.p.in_training_eval {
            Some((data, features)) => (data, features),
            None => (&self.p.eval, &self.p.eval_features),
        };
        self.emit(TrainEvent::Status {
            message: format!(
                "evaluating step {} on {} questions ({} windows)",
                state.global_step,
                data.len(),
                features.len()
            ),
        });
        let out = self.score(&self.p.model.params, &self.p.model.config, data, features)?;
        let eval = summarize(&out, state.global_step, plan, EvalKind::InTraining);
        let new_best = evaluation::note(state, &eval, &self.p.config);
        self.emit(TrainEvent::Evaluated(eval));
        Ok(new_best)
    }

    /// Saves the final model (the best checkpoint's weights with
    /// `load_best_model_at_end`), evaluates it on the whole evaluation set,
    /// and reports the run's summary.
    fn finish(&self, state: &TrainerState) -> Result<()> {
        let c = &self.p.config;
        let best_dir = match (&state.best, c.load_best_model_at_end) {
            (Some(best), true) => {
                let found = evaluation::best_weights(&self.run_dir, best);
                if found.is_none() {
                    self.emit(TrainEvent::Status {
                        message: format!(
                            "warning: the best checkpoint (step {}) is no longer on disk; the final model is the last step's",
                            best.step
                        ),
                    });
                }
                found
            }
            _ => None,
        };
        let best_model = match &best_dir {
            Some(dir) => {
                self.emit(TrainEvent::Status {
                    message: format!("loading the best model from {}", dir.display()),
                });
                Some(load_qa_model(dir, &self.p.device, c.seed)?)
            }
            None => None,
        };
        let (model_config, params) = best_model
            .as_ref()
            .map_or((&self.p.model.config, &self.p.model.params), |m| {
                (&m.config, &m.params)
            });
        save_pretrained(
            &self.run_dir.join("model"),
            model_config,
            params,
            Some(&self.p.tokenizer_file),
        )?;
        self.emit(TrainEvent::Status {
            message: format!(
                "evaluating on {} questions ({} windows)",
                self.p.eval.len(),
                self.p.eval_features.len()
            ),
        });
        let plan = StepPlan::new(c, self.p.train_features.len());
        let out = self.score(params, model_config, &self.p.eval, &self.p.eval_features)?;
        out.write_to_dir(&self.run_dir)?;
        let step = match (&state.best, &best_dir) {
            (Some(best), Some(_)) => best.step,
            _ => state.global_step,
        };
        let eval = summarize(&out, step, &plan, EvalKind::Final);
        self.emit(TrainEvent::Evaluated(eval.clone()));
        let runtime = state.train_seconds.max(1e-9);
        let steps = state.step_history.len().max(1) as f64;
        let mut best = state.best.clone();
        if let (Some(best), Some(dir)) = (best.as_mut(), &best_dir) {
            best.checkpoint = Some(dir.clone());
        }
        self.emit(TrainEvent::Finished(Box::new(TrainSummary {
            run_dir: self.run_dir.clone(),
            global_step: state.global_step,
            epoch: state.global_step as f64 / plan.steps_per_epoch as f64,
            train_runtime: state.train_seconds,
            train_samples_per_second: state.samples_seen as f64 / runtime,
            train_steps_per_second: state.global_step as f64 / runtime,
            total_flos: state.total_flos,
            train_loss: state.step_history.iter().map(|s| s.loss).sum::<f64>() / steps,
            log_history: state.epoch_history.clone(),
            eval: Some(eval),
            best,
            loaded_best: best_dir.is_some(),
        })));
        Ok(())
    }
}

/// An evaluation's event, for the weights of `step`.
fn summarize(out: &EvalOutput, step: u64, plan: &StepPlan, kind: EvalKind) -> EvalSummary {
    EvalSummary {
        exact_match: out.scores.exact_match,
        f1: out.scores.f1,
        total: out.scores.total,
        windows: out.windows,
        seconds: out.seconds,
        step,
        epoch: step as f64 / plan.steps_per_epoch as f64,
        kind,
        squad_v2: out.squad_v2.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_flos_of_the_reference_bert_base_run() {
        // 3 epochs of 88,524 windows of 384 tokens: the notebook reports 5.20e16.
        let total = flops_per_window(&BertConfig::default(), 384) * 88_524.0 * 3.0;
        assert_eq!(format!("{total:.2e}"), "5.20e16");
    }

    #[test]
    fn epoch_orders_are_seeded_permutations() {
        let a = epoch_order(1000, 42, 0);
        assert_eq!(a, epoch_order(1000, 42, 0));
        assert_ne!(a, epoch_order(1000, 42, 1));
        assert_ne!(a, epoch_order(1000, 43, 0));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<u32>>());
    }
}
