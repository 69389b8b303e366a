//! A run's files, as the trainer writes them and the store reads them: the
//! event stream (`metrics.jsonl`, one event a line) and the checkpoint
//! layout. At the bottom of the layers with config and rng, so that the
//! store never imports the trainer.

pub mod checkpoint;
pub mod events;

pub use events::{
    BestModel, BestThresholds, EpochLog, EvalKind, EvalSummary, EventSink, GpuUsage, StartInfo,
    StepLog, SystemSample, TrainEvent, TrainSummary, V2Breakdown,
};
