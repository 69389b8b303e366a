//! Fault injection for tests of the failure paths, set by environment
//! variables and read once. Nothing changes unless one is set.

use std::sync::OnceLock;

/// `SQUADLAB_FAULT_NAN_LOSS_AT_STEP=N`: the loss of optimizer step N is NaN,
/// as a numerically broken model's would be.
pub const NAN_LOSS_AT_STEP: &str = "SQUADLAB_FAULT_NAN_LOSS_AT_STEP";

/// Whether the loss of (1-based) `step` is to be replaced by NaN.
pub fn nan_loss_at(step: u64) -> bool {
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    *AT.get_or_init(|| std::env::var(NAN_LOSS_AT_STEP).ok()?.trim().parse().ok()) == Some(step)
}

/// `SQUADLAB_FAULT_SLOW_STEP_MS=N`: each optimizer step of a run started from
/// scratch takes N ms longer, so a tiny run lives long enough to be
/// interrupted (Ctrl-C, a time limit); once resumed it runs at full speed,
/// so it outlives a time limit only once.
pub const SLOW_STEP_MS: &str = "SQUADLAB_FAULT_SLOW_STEP_MS";

/// Sleeps the configured extra time, if any.
pub fn slow_step() {
    static MS: OnceLock<Option<u64>> = OnceLock::new();
    if let Some(ms) = *MS.get_or_init(|| std::env::var(SLOW_STEP_MS).ok()?.trim().parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// `SQUADLAB_FAULT_CLAIM_PAUSE_MS=N`: a process taking a run or a device
/// (`store::exclusive`) sleeps N ms inside each of the windows where two
/// takers used to race: between writing its claim and linking it into
/// place, and between finding a holder gone and replacing it. A test sets it
/// so that racing takers always overlap there, instead of by luck.
pub const CLAIM_PAUSE_MS: &str = "SQUADLAB_FAULT_CLAIM_PAUSE_MS";

/// Sleeps the configured pause, if any.
pub fn claim_pause() {
    static MS: OnceLock<Option<u64>> = OnceLock::new();
    if let Some(ms) = *MS.get_or_init(|| std::env::var(CLAIM_PAUSE_MS).ok()?.trim().parse().ok()) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// `SQUADLAB_FAULT_BROKEN_KERNEL=NAME`: the fused kernel of that name
/// (`model::fused::Kernel::name`: its CPU twin, or the kernel itself under
/// CUDA) returns a wrong value, so tests see the self-check switch it off
/// and the run fall back to candle's generic ops.
pub const BROKEN_KERNEL: &str = "SQUADLAB_FAULT_BROKEN_KERNEL";

/// The kernel name the switch breaks, if any.
pub fn broken_kernel() -> Option<&'static str> {
    static NAME: OnceLock<Option<String>> = OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var(BROKEN_KERNEL)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}
