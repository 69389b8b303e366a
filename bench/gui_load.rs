//! The app on a large store: 50 finished runs × 100,000 logged steps
//! (~0.9 GB of metrics.jsonl), measured headless (egui_kittest, CPU
//! tessellation, no GPU):
//! - start: constructing the app on the store to its first frame, for a fresh
//!   window, for `--select NAME` (resolved through the store listing), and for
//!   a remembered state plotting several runs;
//! - frames right after start (runs list, empty main view), while the plotted
//!   runs' histories load, and once they have: wall time, and the UI thread's
//!   CPU time, which a busy machine does not inflate;
//! - peak resident memory (VmHWM, reset before each case);
//! - `squadlab runs`, the CLI listing of the same store.
//!
//! `cargo bench --bench gui_load`. The store is generated once per run of the
//! bench into a temporary folder, so it is in the page cache: warm-start figures.

#![allow(clippy::unwrap_used)]
#[path = "synthetic.rs"]
mod synthetic;

// The app's allocator, so memory figures are the app's.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use egui_kittest::Harness;
use squadlab::gui::{AppOptions, SquadlabApp, Tab, UiState};
use std::path::Path;
use std::time::{Duration, Instant};

const RUNS: usize = 50;
const STEPS: u64 = 100_000;
/// Runs whose curves the live view plots.
const PLOTTED: usize = 8;
const FRAMES: usize = 30;

/// CPU time of the calling thread in ms: unlike wall time, it does not
/// count the time other processes on a busy machine took the core.
fn thread_cpu_ms() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
}

/// Builds one frame and tessellates it, as the window would before painting;
/// its wall and UI-thread CPU times in ms.
fn frame(h: &mut Harness<'_, SquadlabApp>) -> (f64, f64) {
    let (start, cpu) = (Instant::now(), thread_cpu_ms());
    h.step();
    let output = h.output();
    let ppp = output.pixels_per_point;
    let _ = h.ctx.tessellate(output.shapes.clone(), ppp);
    (start.elapsed().as_secs_f64() * 1e3, thread_cpu_ms() - cpu)
}

/// Median and max of wall and of CPU frame times.
type Stats = [(f64, f64); 2];

fn median_max(frames: Vec<(f64, f64)>) -> Stats {
    let pick = |f: fn(&(f64, f64)) -> f64| {
        let mut ms: Vec<f64> = frames.iter().map(f).collect();
        ms.sort_by(f64::total_cmp);
        (ms[ms.len() / 2], ms[ms.len() - 1])
    };
    [pick(|f| f.0), pick(|f| f.1)]
}

fn steady(h: &mut Harness<'_, SquadlabApp>) -> Stats {
    median_max((0..FRAMES).map(|_| frame(h)).collect())
}

/// `(name, kB)` lines of /proc/self/status.
fn status_kb(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

fn mib(kb: f64) -> String {
    format!("{:.0} MiB", kb / 1024.0)
}

/// Resets the peak-RSS counter (Linux ≥ 4.0), so each case reports its own.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").ok();
}

/// The app as eframe starts it, timed up to its first frame. kittest's
/// builder runs the first frame and one settling frame.
fn start(state: UiState, options: AppOptions) -> (Harness<'static, SquadlabApp>, Duration) {
    let t = Instant::now();
    let app = SquadlabApp::with_state(state, options);
    let h = Harness::builder()
        .with_size([1400.0, 900.0])
        .with_max_steps(1)
        .build_eframe(move |_| app);
    (h, t.elapsed())
}

fn options(store: &Path) -> AppOptions {
    AppOptions {
        store: Some(store.to_path_buf()),
        ..AppOptions::default()
    }
}

struct Row {
    case: String,
    start_ms: f64,
    frames: Vec<(String, Stats)>,
    peak_kb: f64,
}

fn print(rows: &[Row]) {
    println!(
        "\n{:<36} {:>9}  {:<40} {:>19} {:>19} {:>9}",
        "case", "start", "frames", "wall median / max", "CPU median / max", "peak RSS"
    );
    for r in rows {
        for (i, (what, [wall, cpu])) in r.frames.iter().enumerate() {
            let (case, start, peak) = if i == 0 {
                (
                    r.case.as_str(),
                    format!("{:.0} ms", r.start_ms),
                    mib(r.peak_kb),
                )
            } else {
                ("", String::new(), String::new())
            };
            println!(
                "{case:<36} {start:>9}  {what:<40} {:>6.1} / {:>6.1} ms {:>6.1} / {:>6.1} ms {peak:>9}",
                wall.0, wall.1, cpu.0, cpu.1
            );
        }
    }
}

fn main() {
    println!(
        "squadlab app on a large store (headless, CPU tessellation; 16.7 ms is one frame at 60 Hz)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let t = Instant::now();
    let ids: Vec<String> = (0..RUNS)
        .map(|i| synthetic::synthetic_run(&store, i, STEPS))
        .collect();
    let bytes: u64 = ids
        .iter()
        .map(|id| squadlab::store::disk_use(&store.join("runs").join(id)))
        .sum();
    println!(
        "store: {RUNS} runs × {STEPS} steps, {:.2} GB, generated in {:.1} s",
        bytes as f64 / 1e9,
        t.elapsed().as_secs_f64()
    );
    let mut rows = Vec::new();

    // 1. A fresh window: the runs list and an empty live view.
    reset_peak();
    let (mut h, took) = start(UiState::default(), options(&store));
    assert_eq!(h.state().runs().views.len(), RUNS);
    let list = steady(&mut h);
    h.state_mut().select(ids[RUNS / 2].clone(), false);
    let mut loading = Vec::new();
    while h.state().runs().catching_up {
        loading.push(frame(&mut h));
    }
    let one = steady(&mut h);
    rows.push(Row {
        case: "fresh window".into(),
        start_ms: took.as_secs_f64() * 1e3,
        frames: vec![
            ("runs list, nothing selected".into(), list),
            (
                format!("1 run clicked: loading ({} frames)", loading.len()),
                median_max(loading),
            ),
            ("1 run plotted".into(), one),
        ],
        peak_kb: status_kb("VmHWM:"),
    });
    drop(h);

    // 2. `squadlab gui --select "run 7"`: a name, found by listing the store.
    reset_peak();
    let (mut h, took) = start(
        UiState::default(),
        AppOptions {
            select: vec!["run 7".into()],
            ..options(&store)
        },
    );
    assert_eq!(h.state().selected(), [ids[7].clone()]);
    let after = steady(&mut h);
    rows.push(Row {
        case: "--select \"run 7\" (by name)".into(),
        start_ms: took.as_secs_f64() * 1e3,
        frames: vec![("right after start".into(), after)],
        peak_kb: status_kb("VmHWM:"),
    });
    drop(h);

    // 3. A remembered state: the live view plotting several runs.
    reset_peak();
    let remembered = UiState {
        selected: ids
            .iter()
            .step_by(RUNS / PLOTTED)
            .take(PLOTTED)
            .cloned()
            .collect(),
        tab: Tab::Live,
        ..UiState::default()
    };
    let (mut h, took) = start(remembered, options(&store));
    let load_start = Instant::now();
    let mut loading = Vec::new();
    while h.state().runs().catching_up {
        loading.push(frame(&mut h));
    }
    let loaded_in = load_start.elapsed().as_secs_f64() + took.as_secs_f64();
    let points: usize = h
        .state()
        .selected()
        .iter()
        .map(|id| h.state().runs().get(id).unwrap().follower.series.len())
        .sum();
    assert_eq!(points, PLOTTED * STEPS as usize);
    let plotted = steady(&mut h);
    rows.push(Row {
        case: format!("remembered: live view, {PLOTTED} runs"),
        start_ms: took.as_secs_f64() * 1e3,
        frames: vec![
            (
                format!(
                    "histories loading ({} frames, {loaded_in:.1} s)",
                    loading.len()
                ),
                median_max(loading),
            ),
            (format!("{PLOTTED} runs plotted ({points} points)"), plotted),
        ],
        peak_kb: status_kb("VmHWM:"),
    });
    drop(h);
    print(&rows);

    // The CLI's listing of the same store, for comparison.
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squadlab"))
        .args(["runs", "--json", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "\nsquadlab runs --json (CLI listing, its own process): {:.2} s",
        t.elapsed().as_secs_f64()
    );
}
