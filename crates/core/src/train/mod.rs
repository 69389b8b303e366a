//! Training: a background thread that fine-tunes the QA model, streams
//! `TrainEvent`s, obeys pause/resume/cancel, checkpoints and evaluates.

mod adamw_cpu;
pub mod census;
pub mod checkpoint;
mod control;
pub mod engine;
mod evaluation;
mod handle;
pub mod lean;
pub mod optimizer;
mod prepare;
pub mod schedule;
mod step;
pub mod system;
pub mod trace;
mod trainer;

pub use crate::schema::events::{
    BestModel, EpochLog, EvalKind, EvalSummary, EventSink, GpuUsage, StartInfo, StepLog,
    SystemSample, TrainEvent, TrainSummary,
};
pub use control::Control;
pub use handle::{RunRequest, TrainerHandle};
pub use prepare::{prepare, Prepared};
pub use schedule::StepPlan;
pub use step::accumulate_gradients;
pub use trainer::{dropout_rng, epoch_order, Trainer};
