//! Training: a background thread that fine-tunes the QA model, streams
//! `TrainEvent`s, obeys pause/resume/cancel, checkpoints and evaluates.

pub mod checkpoint;
mod events;
mod handle;
pub mod optimizer;
mod prepare;
pub mod schedule;
mod trainer;

pub use events::{
    Control, EpochLog, EvalSummary, EventSink, StartInfo, StepLog, TrainEvent, TrainSummary,
};
pub use handle::{RunRequest, TrainerHandle};
pub use prepare::{prepare, Prepared};
pub use trainer::{dropout_rng, epoch_order, StepPlan, Trainer};
