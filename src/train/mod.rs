//! Training: a background thread that fine-tunes the QA model, streams
//! `TrainEvent`s, obeys pause/resume/cancel, checkpoints and evaluates.

mod adamw_cpu;
pub mod census;
pub mod checkpoint;
mod evaluation;
mod events;
mod handle;
pub mod optimizer;
mod prepare;
pub mod schedule;
mod step;
pub mod trace;
mod trainer;

pub use events::{
    BestModel, Control, EpochLog, EvalKind, EvalSummary, EventSink, StartInfo, StepLog, TrainEvent,
    TrainSummary,
};
pub use handle::{RunRequest, TrainerHandle};
pub use prepare::{prepare, Prepared};
pub use step::accumulate_gradients;
pub use trainer::{dropout_rng, epoch_order, StepPlan, Trainer};
