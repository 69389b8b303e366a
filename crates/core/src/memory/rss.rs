//! This process's resident memory (Linux), to check the planner on the CPU:
//! a step's peak RSS less the RSS before it.

/// VmRSS and VmHWM (the peak since start or the last `reset_peak`), in bytes.
pub fn resident() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib << 10)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Starts a new peak: VmHWM falls back to the current RSS (writing 5 to
/// /proc/self/clear_refs, Linux 4.0+).
pub fn reset_peak() -> std::io::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
}
