//! The lean step's op sequence: BERT's forward and backward as fused ops
//! with an explicit backward pass (llm.c's design), written once against
//! `Ops`. The CPU computes it (`cpu`); `plan` records it without arithmetic,
//! for the census and the memory planner, in any dtype. The trainer drives
//! it through `train::lean`.

pub mod cpu;
mod fallback;
pub mod ops;
pub mod plan;
pub mod sequence;
pub mod tensors;

pub use ops::{Dropout, StepInput};
pub use sequence::{Launches, MicroBatchDropout, ParamTable, Sequence};
