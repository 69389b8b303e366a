//! The CLI's consumer of the event stream: a progress bar on stderr.

use crate::train::{EvalKind, EventSink, TrainEvent};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a log (stderr not a terminal) gets a plain progress line.
const LOG_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct ProgressReporter {
    bar: Option<ProgressBar>,
    /// Without a terminal indicatif draws nothing, and its `println` is
    /// dropped too; a server's log gets plain lines instead.
    plain: Option<PlainProgress>,
}

struct PlainProgress {
    total: u64,
    last: Instant,
}

impl ProgressReporter {
    fn say(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl EventSink for ProgressReporter {
    fn on_event(&mut self, event: &TrainEvent) -> anyhow::Result<()> {
        match event {
            TrainEvent::Status { message } => self.say(format!("{message}…")),
            TrainEvent::Warning { message } => self.say(format!("warning: {message}")),
            TrainEvent::Started(info) => {
                self.say(format!(
                    "training {} on {} ({}): {} windows of {} questions, {} steps of {} windows, {} warmup; evaluating on {} questions",
                    info.config.model.as_str(),
                    info.device,
                    info.dtype,
                    info.train_windows,
                    info.train_examples,
                    info.total_steps,
                    info.effective_batch_size,
                    info.warmup_steps,
                    info.eval_examples,
                ));
                if info.resumed_from_step > 0 {
                    self.say(format!("resuming at step {}", info.resumed_from_step));
                }
                if !std::io::stderr().is_terminal() {
                    self.plain = Some(PlainProgress {
                        total: info.total_steps,
                        last: Instant::now(),
                    });
                    return Ok(());
                }
                let bar = ProgressBar::new(info.total_steps);
                bar.set_style(
                    ProgressStyle::with_template("{bar:28} {pos}/{len} steps  {msg}  ETA {eta}")
                        .expect("valid template"),
                );
                bar.set_position(info.resumed_from_step);
                bar.reset_eta();
                self.bar = Some(bar);
            }
            TrainEvent::Step(s) => {
                if let Some(plain) = &mut self.plain {
                    if plain.last.elapsed() >= LOG_EVERY || s.step == plain.total {
                        plain.last = Instant::now();
                        eprintln!(
                            "step {}/{}  epoch {:.2}  loss {:.4}  lr {:.2e}  {:.1} samples/s",
                            s.step,
                            plain.total,
                            s.epoch,
                            s.loss,
                            s.learning_rate,
                            s.samples_per_second
                        );
                    }
                }
                if let Some(bar) = &self.bar {
                    bar.set_position(s.step);
                    bar.set_message(format!(
                        "epoch {:.2}  loss {:.4}  lr {:.2e}  {:.1} samples/s",
                        s.epoch, s.loss, s.learning_rate, s.samples_per_second
                    ));
                }
            }
            TrainEvent::EpochEnd(e) => self.say(format!(
                "epoch {} done at step {}: mean loss {:.4}, mean grad-norm {:.3}",
                e.epoch, e.step, e.mean_loss, e.mean_grad_norm
            )),
            TrainEvent::CheckpointSaved { step, path } => {
                self.say(format!("step {step}: checkpoint {}", path.display()))
            }
            TrainEvent::Paused { step } => self.say(format!("paused at step {step}")),
            TrainEvent::Resumed { step } => self.say(format!("resumed at step {step}")),
            TrainEvent::System(_) | TrainEvent::Unknown => {}
            TrainEvent::Evaluated(e) => self.say(format!(
                "{}: EM {:.2}  F1 {:.2} on {} questions ({} windows, {:.1} s)",
                match e.kind {
                    EvalKind::InTraining => format!("step {} evaluation", e.step),
                    EvalKind::Final => "evaluation".to_string(),
                },
                e.exact_match,
                e.f1,
                e.total,
                e.windows,
                e.seconds
            )),
            TrainEvent::Finished(_)
            | TrainEvent::Diverged { .. }
            | TrainEvent::Cancelled { .. }
            | TrainEvent::Failed { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.abandon();
                }
            }
        }
        Ok(())
    }
}
