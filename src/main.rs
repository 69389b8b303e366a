/// jemalloc, counting its large allocations for `squadlab bench memory`.
#[global_allocator]
static ALLOCATOR: squadlab::memory::counting::Counting<tikv_jemallocator::Jemalloc> =
    squadlab::memory::counting::Counting(tikv_jemallocator::Jemalloc);

/// jemalloc's settings. Training churns through tensors of tens of megabytes:
/// transparent huge pages cut the page faults of touching fresh ones about
/// 500-fold (a MiniLM forward+backward of 4×384 went from 6.1 s to 4.3 s).
/// Freed pages stay mapped for 30 s (`dirty_decay_ms`, then `muzzy_decay_ms`),
/// so the next step reuses them, and jemalloc's own background thread hands
/// older ones back to the OS: the training threads never pay for it, and a
/// long-lived app returns what its runs used. The thread is what makes the
/// decay work here: without it, jemalloc frees allocations of 8 MiB and more
/// (every training tensor) at once whenever a decay is set, and an idle app
/// allocates nothing that would trigger a timed release.
///
/// Measured with the app (under Xvfb) training three 12-step MiniLM runs back
/// to back on 2 cores, resident 30 s after the last run, and training speed:
/// - purging off (`-1`, the old setting): 2,335 MiB; 3.6 to 5.0 samples/s;
/// - this setting: 134 and 226 MiB in two tries; 4.1 to 5.1 samples/s;
/// - a 5 s or a 30 s decay without the thread: 150 and 171 MiB, but 2.4 to
///   3.6 samples/s, from some 260 times the page faults.
///
/// The environment variable `_RJEM_MALLOC_CONF` still overrides this.
/// (jemalloc reads a C string pointer under this name.)
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &u8 =
    &b"thp:always,dirty_decay_ms:30000,muzzy_decay_ms:30000,background_thread:true\0"[0];

fn main() -> std::process::ExitCode {
    squadlab::cli::main()
}
