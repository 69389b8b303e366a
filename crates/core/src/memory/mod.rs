//! Device memory: what a training step will need (`plan`), whether it fits
//! the device a run names (`fit`), the GPUs `nvidia-smi` reports (`gpus`),
//! and this process's live bytes (`counting`) and resident memory (`rss`)
//! for the planner's check.

pub mod counting;
pub mod fit;
pub mod gpus;
pub mod plan;
pub mod rss;

pub use fit::{check, check_run, device_memory, model_config, DeviceMemory, Fit};
pub use plan::{plan, plan_lean, show_bytes, MemoryPlan};
