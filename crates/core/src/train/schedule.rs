//! Hugging Face's learning-rate schedules (`transformers.get_scheduler`), by
//! `lr_scheduler_type`, with their formulas and defaults: a linear rise over
//! the warmup steps (except `constant`), then the named decay. The learning
//! rate of optimizer step `step` (0-based: the first update uses `lr(0)`,
//! which is 0 when there is warmup) is `base_lr × factor(step)`, as with
//! PyTorch's `LambdaLR`. tests/it/schedules.rs holds every type to a fixture
//! made by transformers' own schedulers (tools/reference/lr_schedules_fixture.py).

use crate::config::{LrSchedulerKwargs, LrSchedulerType};
use std::f64::consts::PI;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub kind: LrSchedulerType,
    pub kwargs: LrSchedulerKwargs,
    pub base_lr: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

/// Hugging Face's defaults for the schedule's keyword arguments.
const COSINE_CYCLES: f64 = 0.5;
const RESTART_CYCLES: f64 = 1.0;
const POLY_POWER: f64 = 1.0;
const POLY_LR_END: f64 = 1e-7;

impl Schedule {
    pub fn lr(&self, step: u64) -> f64 {
        self.base_lr * self.factor(step)
    }

    fn factor(&self, step: u64) -> f64 {
        let (s, warmup, total) = (
            step as f64,
            self.warmup_steps as f64,
            self.total_steps as f64,
        );
        let warming = step < self.warmup_steps;
        let rise = s / warmup.max(1.0);
        // The share of the decay done, as transformers computes it.
        let progress = (s - warmup) / (total - warmup).max(1.0);
        let k = &self.kwargs;
        match self.kind {
            LrSchedulerType::Constant => 1.0,
            _ if warming => rise,
            LrSchedulerType::ConstantWithWarmup => 1.0,
            LrSchedulerType::Linear => ((total - s) / (total - warmup).max(1.0)).max(0.0),
            LrSchedulerType::Cosine => {
                let cycles = k.num_cycles.unwrap_or(COSINE_CYCLES);
                (0.5 * (1.0 + (PI * cycles * 2.0 * progress).cos())).max(0.0)
            }
            LrSchedulerType::CosineWithRestarts => {
                if progress >= 1.0 {
                    return 0.0;
                }
                let cycles = k.num_cycles.unwrap_or(RESTART_CYCLES);
                (0.5 * (1.0 + (PI * ((cycles * progress) % 1.0)).cos())).max(0.0)
            }
            LrSchedulerType::Polynomial => {
                let lr_end = k.lr_end.unwrap_or(POLY_LR_END);
                let power = k.power.unwrap_or(POLY_POWER);
                if step > self.total_steps {
                    return lr_end / self.base_lr;
                }
                let range = self.base_lr - lr_end;
                let remaining = 1.0 - (s - warmup) / (total - warmup);
                (range * remaining.powf(power) + lr_end) / self.base_lr
            }
        }
    }
}

/// How many steps a run takes, from its windows and batch settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepPlan {
    pub micro_batches_per_epoch: u64,
    pub steps_per_epoch: u64,
    pub total_steps: u64,
}

impl StepPlan {
    /// Micro-batches per epoch are `ceil(windows / batch)`; an optimizer step
    /// takes `gradient_accumulation_steps` of them (the epoch's last step takes
    /// what remains); total steps are `max_steps`, else `ceil(epochs × steps per epoch)`.
    pub fn new(config: &crate::config::RunConfig, windows: usize) -> Self {
        let micro = (windows as u64).div_ceil(config.per_device_train_batch_size as u64);
        let steps_per_epoch = micro
            .div_ceil(config.gradient_accumulation_steps as u64)
            .max(1);
        let total_steps = config
            .max_steps
            .unwrap_or_else(|| (config.num_train_epochs * steps_per_epoch as f64).ceil() as u64);
        Self {
            micro_batches_per_epoch: micro,
            steps_per_epoch,
            total_steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Schedule, StepPlan};
    use crate::config::{LrSchedulerKwargs, LrSchedulerType};

    #[test]
    fn linear_rises_over_warmup_then_decays_to_zero() {
        // The CPU protocol: 161 steps, ceil(10%) = 17 of them warmup.
        let s = Schedule {
            kind: LrSchedulerType::Linear,
            kwargs: LrSchedulerKwargs::default(),
            base_lr: 1e-4,
            warmup_steps: 17,
            total_steps: 161,
        };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(1) - 1e-4 / 17.0).abs() < 1e-12);
        assert!((s.lr(16) - 1e-4 * 16.0 / 17.0).abs() < 1e-12);
        assert!((s.lr(17) - 1e-4).abs() < 1e-12);
        assert!((s.lr(160) - 1e-4 / 144.0).abs() < 1e-12);
        assert_eq!(s.lr(161), 0.0);
        let flat = Schedule {
            warmup_steps: 0,
            ..s
        };
        assert!((flat.lr(0) - 1e-4).abs() < 1e-12);
    }

    #[test]
    fn steps_follow_hugging_face() {
        let mut c = crate::config::RunConfig {
            per_device_train_batch_size: 16,
            num_train_epochs: 1.0,
            ..Default::default()
        };
        // The CPU protocol: 2,564 windows at batch 16.
        assert_eq!(StepPlan::new(&c, 2564).total_steps, 161);
        c.per_device_train_batch_size = 8;
        c.gradient_accumulation_steps = 4;
        c.num_train_epochs = 2.5;
        let plan = StepPlan::new(&c, 100); // 13 micro-batches → 4 steps per epoch
        assert_eq!((plan.steps_per_epoch, plan.total_steps), (4, 10));
        c.max_steps = Some(7);
        assert_eq!(StepPlan::new(&c, 100).total_steps, 7);
    }
}
