//! How long the app takes to build a frame of its heaviest views, measured
//! headless (egui_kittest, CPU tessellation, no GPU):
//! - the live view with 5 runs × 100,000 logged steps, as drawn (about two
//!   points per pixel column) beside drawing every point;
//! - the predictions browser on the full 10,570-question dev set: re-filtering
//!   and a frame of the list;
//! - the Sweeps view of a 500-run sweep (250 points × 2 seeds, all finished):
//!   its table, parallel-coordinates plot and per-axis effects.
//!
//! `cargo bench --bench gui_frames` (SQuAD dev from $SQUADLAB_DATA).

#![allow(clippy::unwrap_used)]
#[path = "synthetic.rs"]
mod synthetic;

use egui_kittest::Harness;
use squadlab::gui::{AppOptions, Category, SquadlabApp, Tab, UiState};
use squadlab::train::TrainEvent;
use std::path::Path;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const STEPS: u64 = 100_000;
const FRAMES: usize = 20;

/// Builds one frame and tessellates it, as the window would before painting.
fn frame(h: &mut Harness<'_, SquadlabApp>) -> Duration {
    let start = Instant::now();
    h.step();
    let output = h.output();
    let ppp = output.pixels_per_point;
    let _ = h.ctx.tessellate(output.shapes.clone(), ppp);
    start.elapsed()
}

fn frames(h: &mut Harness<'_, SquadlabApp>) -> (f64, f64) {
    for _ in 0..3 {
        frame(h);
    }
    let mut ms: Vec<f64> = (0..FRAMES).map(|_| frame(h).as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    (ms[FRAMES / 2], ms[FRAMES * 9 / 10])
}

fn harness(store: &Path) -> Harness<'static, SquadlabApp> {
    let app = SquadlabApp::with_state(
        UiState::default(),
        AppOptions {
            store: Some(store.to_path_buf()),
            ..AppOptions::default()
        },
    );
    Harness::builder()
        .with_size([1400.0, 900.0])
        .build_eframe(move |_| app)
}

fn live_view() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let ids: Vec<String> = (0..RUNS)
        .map(|i| synthetic::synthetic_run(&store, i, STEPS))
        .collect();
    let mut h = harness(&store);
    let start = Instant::now();
    for id in &ids {
        h.state_mut().select(id.clone(), true);
    }
    h.state_mut().show(Tab::Live);
    let mut loading = Vec::new();
    loop {
        let frame_start = Instant::now();
        h.step();
        loading.push(frame_start.elapsed().as_secs_f64() * 1e3);
        if !h.state().runs().catching_up {
            break;
        }
    }
    let points: usize = ids
        .iter()
        .map(|id| h.state().runs().get(id).unwrap().follower.series.len())
        .sum();
    println!(
        "live view: {RUNS} runs, {points} logged steps, read in {:.2} s over {} frames (longest {:.0} ms)",
        start.elapsed().as_secs_f64(),
        loading.len(),
        loading.iter().cloned().fold(0.0, f64::max)
    );
    let (ours, ours_p90) = frames(&mut h);
    // The worst case while training: every run logged a step since the last
    // frame, so each curve is smoothed and decimated again.
    let mut next = STEPS;
    let mut growing = Vec::new();
    for _ in 0..FRAMES {
        next += 1;
        for id in &ids {
            let series = &mut h
                .state_mut()
                .runs_mut()
                .get_mut(id)
                .unwrap()
                .follower
                .series;
            let mut last = series.last.clone().unwrap();
            last.step = next;
            series.push(&TrainEvent::Step(last));
        }
        growing.push(frame(&mut h).as_secs_f64() * 1e3);
    }
    growing.sort_by(f64::total_cmp);
    let (grow, grow_p90) = (growing[FRAMES / 2], growing[FRAMES * 9 / 10]);
    h.state_mut().ui_state_mut().every_point = true;
    let (every, every_p90) = frames(&mut h);
    println!("  frame, as drawn (min/max per pixel column):  median {ours:7.2} ms, p90 {ours_p90:7.2} ms");
    println!("  frame, as drawn, every run gained a step:     median {grow:7.2} ms, p90 {grow_p90:7.2} ms");
    println!("  frame, every point drawn (plain egui_plot):   median {every:7.2} ms, p90 {every_p90:7.2} ms");
    println!(
        "  speed-up {:.1}× (steady), {:.1}× (data arriving)",
        every / ours,
        every / grow
    );
}

fn predictions() {
    let data = squadlab::config::data_dir().join("dev-v1.1.json");
    if !data.is_file() {
        println!(
            "predictions: SKIPPED, {} is missing (set SQUADLAB_DATA)",
            data.display()
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let squad: serde_json::Value = serde_json::from_slice(&std::fs::read(&data).unwrap()).unwrap();
    let mut answers = serde_json::Map::new();
    let mut n = 0usize;
    for article in squad["data"].as_array().unwrap() {
        for p in article["paragraphs"].as_array().unwrap() {
            for qa in p["qas"].as_array().unwrap() {
                let gold = qa["answers"][0]["text"].as_str().unwrap();
                // Right, partly right and wrong in turn.
                let answer = match n % 3 {
                    0 => gold.to_string(),
                    1 => format!("the {gold} of"),
                    _ => "nothing".to_string(),
                };
                answers.insert(qa["id"].as_str().unwrap().to_string(), answer.into());
                n += 1;
            }
        }
    }
    let file = tmp.path().join("predictions.json");
    std::fs::write(&file, serde_json::to_vec(&answers).unwrap()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_squadlab"))
        .args(["import-predictions", "--name", "bench", "--json", "--store"])
        .arg(&store)
        .arg("--data")
        .arg(&data)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut h = harness(&store);
    h.state_mut().select(id, false);
    h.state_mut().show(Tab::Predictions);
    let start = Instant::now();
    while h.state().predictions().set.is_none() {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    let questions = h
        .state()
        .predictions()
        .set
        .as_ref()
        .unwrap()
        .questions
        .len();
    println!(
        "predictions: {questions} questions loaded in {:.2} s (a worker thread; frames go on meanwhile)",
        start.elapsed().as_secs_f64()
    );
    let mut filter_ms = Vec::new();
    for (category, search) in [
        (Category::Wrong, ""),
        (Category::All, "what year"),
        (Category::Partial, "the"),
        (Category::All, ""),
    ] {
        let p = &mut h.state_mut().predictions_mut();
        p.filter.category = category;
        p.filter.search = search.into();
        let start = Instant::now();
        let shown = p.shown().len();
        filter_ms.push(start.elapsed().as_secs_f64() * 1e3);
        println!("  filter {category:?} {search:?}: {shown} shown");
    }
    println!(
        "  re-filtering {questions} questions: max {:.2} ms",
        filter_ms.iter().cloned().fold(0.0, f64::max)
    );
    let (median, p90) = frames(&mut h);
    println!("  frame of the browser: median {median:.2} ms, p90 {p90:.2} ms");
}

/// A store holding a finished 500-run sweep: 10 learning rates × 5 warmup
/// ratios × 5 weight decays × 2 seeds, with made-up scores.
fn sweep_store(root: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(
        root.join("base.ron"),
        squadlab::config::RunConfig::default().to_ron(),
    )
    .unwrap();
    let file = root.join("sweep.ron");
    std::fs::write(
        &file,
        r#"Sweep(name: "bench sweep", base: File("base.ron"),
            grid: {"learning_rate": [1e-5, 2e-5, 3e-5, 4e-5, 5e-5, 6e-5, 7e-5, 8e-5, 9e-5, 1e-4],
                   "warmup_ratio": [0.0, 0.05, 0.1, 0.15, 0.2],
                   "weight_decay": [0.0, 0.001, 0.01, 0.1, 0.3]},
            seeds: [42, 43])"#,
    )
    .unwrap();
    let store = squadlab::store::Store::open(Some(&root.join("store")));
    let x = squadlab::sweep::start(&store, &file).unwrap();
    assert_eq!(x.queued.len(), 500);
    for (i, e) in store.list().unwrap().into_iter().enumerate() {
        let mut r = e.record.unwrap();
        let c = r.config.clone().unwrap();
        let f1 = 60.0 + 2e5 * c.learning_rate - 10.0 * c.warmup_ratio + (i % 7) as f64;
        r.status = squadlab::store::RunStatus::Finished;
        r.outcome.f1 = Some(f1);
        r.outcome.exact_match = Some(f1 - 8.0);
        r.outcome.train_runtime = Some(600.0 + i as f64);
        r.save(&e.dir).unwrap();
    }
    store.root
}

fn sweep_view() {
    let tmp = tempfile::tempdir().unwrap();
    let store = sweep_store(tmp.path());
    let mut h = harness(&store);
    h.state_mut().show(Tab::Sweeps);
    let start = Instant::now();
    while h.state().sweeps().selected.is_none()
        || h.state().sweeps().is_testing()
        || start.elapsed() < Duration::from_millis(200)
    {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "sweeps view: 500 runs, 250 points; tests against the best done in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let (median, p90) = frames(&mut h);
    println!("  frame of the view: median {median:.2} ms, p90 {p90:.2} ms");
    // The rest of the window (the runs sidebar lists all 500) under another tab.
    h.state_mut().show(Tab::Playground);
    let (median, p90) = frames(&mut h);
    println!("  the same window on the Playground tab: median {median:.2} ms, p90 {p90:.2} ms");
    h.state_mut().show(Tab::Sweeps);
    h.state_mut()
        .sweeps_mut()
        .brushes
        .insert("f1".into(), (0.5, 1.0));
    let (median, p90) = frames(&mut h);
    println!("  with an F1 brush: median {median:.2} ms, p90 {p90:.2} ms");
}

fn main() {
    println!(
        "squadlab app frame times (headless, CPU tessellation; 16.7 ms is one frame at 60 Hz)"
    );
    if std::env::args().any(|a| a == "--sweep-only") {
        sweep_view();
        return;
    }
    live_view();
    predictions();
    sweep_view();
}
