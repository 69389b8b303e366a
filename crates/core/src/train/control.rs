//! What a front end may ask of a running trainer.

/// Requests from the front end, read by the trainer at step boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    /// Stop at the next step boundary and save a checkpoint.
    Cancel,
}
