//! The desktop app driven headless by egui_kittest: no display, no GPU. The
//! tests click the app's own buttons and check its state and labels.
#![cfg(feature = "gui")]

use crate::common;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use squadlab::config::{ModelSource, RunConfig};
use squadlab::gui::{AppOptions, Category, SquadlabApp, Tab, UiState};
use squadlab::store::{Outcome, RunRecord, RunStatus, Shown};
use squadlab::train::TrainEvent;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) fn harness(store: &Path) -> Harness<'static, SquadlabApp> {
    let options = AppOptions {
        store: Some(store.to_path_buf()),
        ..AppOptions::default()
    };
    let app = SquadlabApp::with_state(UiState::default(), options);
    Harness::builder()
        .with_size([1400.0, 900.0])
        .build_eframe(move |_| app)
}

/// The tiny training task (its JSON and model folder) and the app on an empty
/// store beside them; the folder lives as long as the returned guard.
fn tiny_app() -> (
    tempfile::TempDir,
    PathBuf,
    PathBuf,
    PathBuf,
    Harness<'static, SquadlabApp>,
) {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = common::tiny_task(tmp.path());
    let store = tmp.path().join("store");
    let h = harness(&store);
    (tmp, json, model, store, h)
}

/// Steps the app until `done` holds, or fails after `limit`.
pub(crate) fn step_until(
    h: &mut Harness<'_, SquadlabApp>,
    limit: Duration,
    mut done: impl FnMut(&SquadlabApp) -> bool,
) {
    let start = Instant::now();
    while !done(h.state()) {
        assert!(start.elapsed() < limit, "timed out after {limit:?}");
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}

/// Steps the app until a label containing `text` shows, or fails after 20 s.
fn step_until_label(h: &mut Harness<'_, SquadlabApp>, text: &str) {
    let start = Instant::now();
    while !has_label_containing(h, text) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no label containing {text:?} after 20 s"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Clicks `button`, which should save `region` of the window as PNG, and
/// checks the file: in `<store>/exports`, named `<prefix>…png`, holding
/// exactly the region's pixels. kittest renders nothing without a GPU
/// backend, so this answers the window's screenshot request itself with an
/// image whose pixels encode their own position. The region must lie inside
/// the window (size the harness first).
pub(crate) fn saved_png_of(
    h: &mut Harness<'_, SquadlabApp>,
    button: &str,
    store: &Path,
    prefix: &str,
    region: impl Fn(&SquadlabApp) -> Option<egui::Rect>,
) -> PathBuf {
    // Notices of earlier exports shift the layout for a frame or two.
    h.run_steps(3);
    let rect = region(h.state()).expect("the region was drawn");
    assert!(h.ctx.viewport_rect().contains_rect(rect), "{rect:?}");
    let written = h.state().notices().len();
    h.get_by_label(button).click();
    let mut request = None;
    for _ in 0..4 {
        h.step();
        request = h.output().viewport_output.values().find_map(|v| {
            v.commands.iter().find_map(|c| match c {
                egui::ViewportCommand::Screenshot(callback) => Some(callback.clone()),
                _ => None,
            })
        });
        if request.is_some() {
            break;
        }
    }
    let request = request.unwrap_or_else(|| panic!("{button:?} asked for no screenshot"));
    assert_eq!(
        region(h.state()),
        Some(rect),
        "the region moved while saving"
    );
    let ppp = h.ctx.pixels_per_point();
    let size = h.ctx.viewport_rect().size() * ppp;
    let [w, height] = [size.x.ceil() as usize, size.y.ceil() as usize];
    // Red and green: x and y modulo 256; blue: their high bits.
    let pixel = |x: usize, y: usize| {
        egui::Color32::from_rgb(x as u8, y as u8, ((x >> 8) | ((y >> 8) << 4)) as u8)
    };
    let pixels = (0..height)
        .flat_map(|y| (0..w).map(move |x| pixel(x, y)))
        .collect();
    request.complete(std::sync::Arc::new(egui::ColorImage::new(
        [w, height],
        pixels,
    )));
    let is_png =
        |n: &squadlab::gui::Notice| n.text.starts_with("wrote ") && n.text.ends_with(".png");
    step_until(h, Duration::from_secs(10), |app| {
        app.notices()[written.min(app.notices().len())..]
            .iter()
            .any(is_png)
    });
    let notice = h.state().notices()[written..]
        .iter()
        .find(|n| is_png(n))
        .unwrap();
    assert!(!notice.error, "{}", notice.text);
    let path = PathBuf::from(notice.text.trim_start_matches("wrote "));
    assert!(path.starts_with(store.join("exports")), "{path:?}");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with(prefix), "{name}");

    let file = std::fs::File::open(&path).unwrap();
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = |v: f32| (v * ppp).round() as usize;
    let (x0, y0) = (px(rect.min.x), px(rect.min.y));
    let (pw, ph) = (info.width as usize, info.height as usize);
    assert_eq!(
        (pw, ph),
        (px(rect.max.x) - x0, px(rect.max.y) - y0),
        "{button}: the region's size"
    );
    let at = |x: usize, y: usize| {
        let i = 4 * (y * pw + x);
        [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]
    };
    for (x, y) in [
        (0, 0),
        (pw - 1, 0),
        (0, ph - 1),
        (pw - 1, ph - 1),
        (pw / 2, ph / 2),
    ] {
        assert_eq!(
            at(x, y),
            pixel(x0 + x, y0 + y).to_array(),
            "{button}: pixel ({x}, {y})"
        );
    }
    path
}

pub(crate) fn has_label_containing(h: &Harness<'_, SquadlabApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

fn has_label(h: &Harness<'_, SquadlabApp>, text: &str) -> bool {
    h.query_all_by_label(text).next().is_some()
}

#[test]
fn a_run_launched_from_the_form_plots_live_and_finishes() {
    let (_tmp, json, model, store, mut h) = tiny_app();
    let config = RunConfig {
        num_train_epochs: 8.0,
        logging_steps: 1,
        ..common::tiny_run_config(&json, &model)
    };
    h.state_mut()
        .new_run_mut()
        .load_config(config, "test config".into());
    h.state_mut().new_run_mut().threads = 1;
    h.state_mut().show(Tab::NewRun);
    h.run_steps(2);
    assert!(
        h.state().new_run().build().1.is_empty(),
        "{:?}",
        h.state().new_run().build().1
    );
    h.get_by_label("Launch").click();
    h.run_steps(2);
    let id = h
        .state()
        .new_run()
        .launched
        .clone()
        .expect("the form launched a run");
    assert_eq!(h.state().selected(), vec![id.clone()]);
    assert_eq!(h.state().tab(), Tab::Live, "launching shows the live view");

    // Watch the plotted series grow while the run trains.
    let mut seen = Vec::new();
    step_until(&mut h, Duration::from_secs(300), |app| {
        let view = app.runs().get(&id).unwrap();
        let n = view.follower.series.len();
        if seen.last() != Some(&n) {
            seen.push(n);
        }
        view.entry.shown == Shown::Is(RunStatus::Finished) && view.scores().is_some()
    });
    let app = h.state();
    let view = app.runs().get(&id).unwrap();
    let total = view.follower.series.started.as_ref().unwrap().total_steps as usize;
    assert_eq!(total, 48); // 48 windows / 8 per batch × 8 epochs
    assert_eq!(
        view.follower.series.len(),
        total,
        "one point per logged step"
    );
    assert!(
        seen.iter().filter(|&&n| n > 0 && n < total).count() >= 2,
        "the plot gained points while the run trained: {seen:?}"
    );
    assert_eq!(view.follower.series.epochs.len(), 8, "epoch markers");
    let (em, f1) = view.scores().unwrap();
    assert!((0.0..=100.0).contains(&em) && f1 >= em, "EM {em} F1 {f1}");
    assert!(has_label_containing(&h, "finished"));
    assert!(
        has_label_containing(&h, &format!("{em:.2}")),
        "EM shown beside the plots"
    );
    let record = RunRecord::load(&store.join("runs").join(&id)).unwrap();
    assert_eq!(record.status, RunStatus::Finished);
    assert_eq!(record.outcome.global_step, Some(48));
    saved_png_of(&mut h, "Save plots as PNG…", &store, "plots-", |app| {
        app.live().plots_rect
    });

    // The playground asks the finished run's model about a new passage.
    h.state_mut().show(Tab::Playground);
    h.run_steps(2);
    step_until(&mut h, Duration::from_secs(60), |app| {
        !app.playground().is_busy()
    });
    let passage = "the old horse is here . the sad dog is pink .";
    h.state_mut().playground_mut().passage = passage.into();
    h.state_mut().playground_mut().question = "what color is the sad dog ?".into();
    h.run_steps(1);
    h.get_by_label("Answer").click();
    step_until(&mut h, Duration::from_secs(60), |app| {
        app.playground().answer.is_some() || app.playground().error.is_some()
    });
    let app = h.state();
    assert_eq!(app.playground().error, None);
    let (asked, answer) = app.playground().answer.as_ref().unwrap();
    assert_eq!(asked, passage);
    let best = answer.prediction.best().expect("a span qualified");
    let span: String = passage
        .chars()
        .skip(best.start_char)
        .take(best.end_char - best.start_char)
        .collect();
    assert_eq!(span, best.text, "the answer is cut from the passage");
    assert!(has_label(&h, &best.text));
}

fn launch(h: &mut Harness<'_, SquadlabApp>, config: RunConfig) -> String {
    h.state_mut()
        .new_run_mut()
        .load_config(config, "test config".into());
    h.state_mut().new_run_mut().threads = 1;
    h.state_mut().show(Tab::NewRun);
    h.run_steps(2);
    h.get_by_label("Launch").click();
    h.run_steps(2);
    h.state()
        .new_run()
        .launched
        .clone()
        .expect("the form launched a run")
}

fn shown(app: &SquadlabApp, id: &str) -> Shown {
    app.runs().get(id).unwrap().entry.shown
}

#[test]
fn runs_queue_per_device_pause_cancel_and_resume_from_the_sidebar() {
    let (_tmp, json, model, store, mut h) = tiny_app();
    let config = |name: &str| RunConfig {
        name: name.into(),
        num_train_epochs: 40.0,
        logging_steps: 1,
        save_strategy: squadlab::config::SaveStrategy::Steps,
        save_steps: 10,
        ..common::tiny_run_config(&json, &model)
    };
    let a = launch(&mut h, config("first"));
    let b = launch(&mut h, config("second"));
    step_until(&mut h, Duration::from_secs(60), |app| {
        shown(app, &a) == Shown::Is(RunStatus::Running)
    });
    assert_eq!(
        shown(h.state(), &b),
        Shown::Is(RunStatus::Queued),
        "one run per device: the second waits"
    );
    assert!(
        h.state().runs().get(&b).unwrap().entry.problems.is_empty(),
        "a queued run is held, not interrupted"
    );

    h.state_mut().select(a.clone(), false);
    step_until(&mut h, Duration::from_secs(60), |app| {
        app.runs().get(&a).unwrap().follower.series.len() >= 3
    });
    h.get_by_label("Pause").click();
    step_until(&mut h, Duration::from_secs(60), |app| {
        app.jobs().get(&a).unwrap().paused
    });
    let frozen = h.state().runs().get(&a).unwrap().follower.series.len();
    for _ in 0..30 {
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        h.state().runs().get(&a).unwrap().follower.series.len(),
        frozen,
        "paused: no steps"
    );
    h.get_by_label("Resume").click();
    step_until(&mut h, Duration::from_secs(60), |app| {
        app.runs().get(&a).unwrap().follower.series.len() > frozen + 12
    });
    h.get_by_label("Cancel").click();
    step_until(&mut h, Duration::from_secs(60), |app| {
        shown(app, &a) == Shown::Is(RunStatus::Cancelled)
    });
    let cancelled_at = h.state().runs().get(&a).unwrap().follower.series.len();
    assert!(
        cancelled_at < 240,
        "cancelled before the end: {cancelled_at}"
    );

    // The device is free: the queued run starts, and finishes.
    step_until(&mut h, Duration::from_secs(300), |app| {
        shown(app, &b) == Shown::Is(RunStatus::Finished)
    });

    // Resume the cancelled run from its newest checkpoint.
    h.state_mut().select(a.clone(), false);
    h.run_steps(2);
    h.get_by_label("Resume run").click();
    step_until(&mut h, Duration::from_secs(300), |app| {
        shown(app, &a) == Shown::Is(RunStatus::Finished)
    });
    let record = RunRecord::load(&store.join("runs").join(&a)).unwrap();
    assert_eq!(record.outcome.global_step, Some(240));
    assert_eq!(record.resumed_from.len(), 1);
    assert_eq!(
        record.resumed_from,
        vec![cancelled_at as u64],
        "from the checkpoint cancelling wrote"
    );
    let series = &h.state().runs().get(&a).unwrap().follower.series;
    assert_eq!(
        series.len(),
        240,
        "the resumed log continues the plot, one point per step"
    );
    assert!(series.step.windows(2).all(|w| w[1] == w[0] + 1.0));
}

#[test]
fn closing_while_training_asks_then_stops_the_run_with_a_checkpoint() {
    let (_tmp, json, model, store, mut h) = tiny_app();
    let id = launch(
        &mut h,
        RunConfig {
            num_train_epochs: 400.0,
            save_strategy: squadlab::config::SaveStrategy::Steps,
            save_steps: 5,
            ..common::tiny_run_config(&json, &model)
        },
    );
    step_until(&mut h, Duration::from_secs(60), |app| {
        app.runs().get(&id).unwrap().follower.series.len() >= 8
    });
    h.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    h.run_steps(2);
    assert!(
        has_label(&h, "1 run(s) still training"),
        "closing asks first"
    );
    assert_eq!(
        h.state().jobs().active(),
        1,
        "and does not stop the run by itself"
    );
    h.get_by_label("Stop them with a checkpoint and close")
        .click();
    // The frame that sees the run end closes the window.
    let start = Instant::now();
    loop {
        h.step();
        if h.state().jobs().active() == 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run did not stop"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let commands = &h.output().viewport_output[&egui::ViewportId::ROOT].commands;
    assert!(
        commands.contains(&egui::ViewportCommand::Close),
        "{commands:?}"
    );
    let record = RunRecord::load(&store.join("runs").join(&id)).unwrap();
    assert_eq!(record.status, RunStatus::Cancelled);
    let checkpoints = squadlab::train::checkpoint::list_checkpoints(&store.join("runs").join(&id));
    assert!(!checkpoints.is_empty(), "a checkpoint to resume from");
    assert!(
        squadlab::store::plan_resume(&store.join("runs").join(&id)).is_ok(),
        "resumable"
    );
}

/// A finished bert-base run's record, scored.
fn scored_run(store: &Path, id: &str, name: &str, em: f64, f1: f64) -> PathBuf {
    let dir = store.join("runs").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    RunRecord {
        id: id.into(),
        name: name.into(),
        status: RunStatus::Finished,
        outcome: Outcome {
            exact_match: Some(em),
            f1: Some(f1),
            eval_questions: Some(10_570),
            ..Outcome::default()
        },
        config: Some(RunConfig {
            name: name.into(),
            model: ModelSource::try_from("google-bert/bert-base-uncased".to_string()).unwrap(),
            ..RunConfig::default()
        }),
        ..RunRecord::default()
    }
    .save(&dir)
    .unwrap();
    dir
}

#[test]
fn results_show_the_paper_rows_and_signed_deltas() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    scored_run(&store, "20260101-000000-aaaa", "base run", 81.3, 88.0);
    let mut h = harness(&store);
    h.state_mut().select("20260101-000000-aaaa".into(), false);
    h.state_mut().show(Tab::Results);
    h.run_steps(3);
    for label in [
        "BERT paper, BERT-base (single)",
        "BERT paper, BERT-large (single)",
        "Reference notebook, bert-base-uncased",
    ] {
        assert!(has_label(&h, label), "row {label:?} shown");
    }
    assert!(has_label(&h, "base run"));
    // 81.30 - 80.80 and 88.00 - 88.50 against the paper's BERT-base row.
    assert!(has_label(&h, "+0.50"));
    assert!(has_label(&h, "-0.50"));
    // Without the published rows only the run is left.
    h.get_by_label("published rows").click();
    h.run_steps(2);
    assert!(!has_label(&h, "BERT paper, BERT-base (single)"));
    assert!(has_label(&h, "base run"));
}

/// A RoBERTa run sits under RoBERTa's published rows, its deltas measured
/// from RoBERTa-base's paper row; BERT's rows are not shown for it.
#[test]
fn results_show_a_roberta_run_beside_robertas_published_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = scored_run(&store, "20260101-000000-bbbb", "roberta run", 83.6, 90.0);
    let mut record = RunRecord::load(&dir).unwrap();
    record.family = Some(squadlab::model::Family::Roberta);
    if let Some(c) = record.config.as_mut() {
        c.model = ModelSource::try_from("FacebookAI/roberta-base".to_string()).unwrap();
    }
    record.save(&dir).unwrap();
    let mut h = harness(&store);
    h.state_mut().select("20260101-000000-bbbb".into(), false);
    h.state_mut().show(Tab::Results);
    h.run_steps(3);
    for label in [
        "RoBERTa-base (single)",
        "RoBERTa-large (single)",
        "roberta run",
    ] {
        assert!(has_label(&h, label), "row {label:?} shown");
    }
    assert!(
        !has_label(&h, "BERT paper, BERT-base (single)"),
        "BERT's rows are for BERT runs"
    );
    assert!(has_label_containing(&h, "roberta-base (RoBERTa)"));
    // 83.60 − 84.6 and 90.00 − 91.5 against RoBERTa-base's paper row.
    assert!(has_label(&h, "-1.00"));
    assert!(has_label(&h, "-1.50"));
    // The table's rows in order: RoBERTa's published rows just above the run.
    let rows = h.state().result_rows().unwrap();
    let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "RoBERTa-base (single)",
            "RoBERTa-large (single)",
            "roberta run"
        ]
    );
}

#[test]
fn export_buttons_write_valid_tables_identical_to_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    scored_run(&store, "20260101-000000-aaaa", "base run", 81.3, 88.0);
    scored_run(
        &store,
        "20260101-000001-bbbb",
        "base, \"hot\" lr",
        79.5,
        87.25,
    );
    let mut h = harness(&store);
    h.state_mut().select("20260101-000000-aaaa".into(), false);
    h.state_mut().select("20260101-000001-bbbb".into(), true);
    h.state_mut().results_mut().group_seeds = false;
    h.state_mut().show(Tab::Results);
    h.run_steps(2);
    for button in ["Export CSV", "Export Markdown", "Export LaTeX"] {
        h.get_by_label(button).click();
        h.run_steps(2);
    }
    let files = h.state().results().exported.clone();
    assert_eq!(files.len(), 3, "{files:?}");
    let read = |ext: &str| {
        let path = files
            .iter()
            .find(|f| f.extension().unwrap() == ext)
            .unwrap();
        assert!(path.starts_with(store.join("exports")));
        std::fs::read_to_string(path).unwrap()
    };
    // The published rows of the runs' family and SQuAD version (BERT's, v1.1).
    let refs = squadlab::report::ReferenceResults::builtin()
        .results
        .iter()
        .filter(|r| r.family == squadlab::model::Family::Bert && r.version == "1.1")
        .count();

    let csv = read("csv");
    let cli = common::squadlab()
        .args([
            "export",
            "20260101-000000-aaaa",
            "20260101-000001-bbbb",
            "--no-group",
            "--format",
            "csv",
            "--store",
        ])
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    // The CLI ends its output with one more newline.
    let printed = String::from_utf8(cli.stdout).unwrap();
    assert_eq!(
        csv.trim_end(),
        printed.trim_end(),
        "the app exports what the CLI does"
    );
    let records = csv_records(&csv);
    assert_eq!(
        records.len(),
        1 + refs + 2,
        "header, published rows, two runs"
    );
    assert!(
        records.iter().all(|r| r.len() == records[0].len()),
        "every row has every column"
    );
    assert!(
        records.iter().any(|r| r[0] == "base, \"hot\" lr"),
        "quotes survive CSV quoting"
    );

    let md = read("md");
    let table: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
    assert_eq!(table.len(), 2 + refs + 2, "header, rule, rows");
    let pipes = |l: &str| l.matches('|').count() - l.matches("\\|").count();
    assert!(table.iter().all(|l| pipes(l) == pipes(table[0])));

    let tex = read("tex");
    assert!(tex.contains("\\begin{tabular}") && tex.contains("\\end{tabular}"));
    assert_eq!(
        tex.matches('{').count() - tex.matches("\\{").count(),
        tex.matches('}').count() - tex.matches("\\}").count()
    );
    assert!(tex.contains("81.30") && tex.contains("79.50"));

    saved_png_of(&mut h, "Save chart as PNG", &store, "chart-", |app| {
        app.results().chart_rect()
    });
}

/// RFC 4180 records.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            ('\r', false) => {}
            (c, _) => field.push(c),
        }
    }
    records
}

/// Imports predictions for the tiny task: question c gets `answer(c)`.
fn import(store: &Path, data: &Path, name: &str, answer: impl Fn(usize, &str) -> String) -> String {
    let squad: serde_json::Value = serde_json::from_slice(&std::fs::read(data).unwrap()).unwrap();
    let mut predictions = serde_json::Map::new();
    for (c, p) in squad["data"][0]["paragraphs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let gold = p["qas"][0]["answers"][0]["text"].as_str().unwrap();
        predictions.insert(format!("q{c}"), answer(c, gold).into());
    }
    common::import_predictions(store, data, name, &predictions)
}

#[test]
fn results_mark_runs_no_different_from_the_base_run_and_show_seed_intervals() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, _) = common::tiny_task(tmp.path());
    let store = tmp.path().join("store");
    let right_below = |n: usize| {
        move |c: usize, gold: &str| {
            if c < n {
                gold.to_string()
            } else {
                "purple".to_string()
            }
        }
    };
    // On the same 48 questions: 10 right, 12 right (2 flips), 40 right (30 flips).
    let weak = import(&store, &json, "weak", right_below(10));
    let close = import(&store, &json, "close", right_below(12));
    let strong = import(&store, &json, "strong", right_below(40));
    // Two seeds of one bert-base config, F1 88 and 89.
    for (id, seed, em, f1) in [
        ("20260101-000000-s042", 42, 80.0, 88.0),
        ("20260101-000001-s043", 43, 82.0, 89.0),
    ] {
        let dir = scored_run(&store, id, "base", em, f1);
        let mut record = RunRecord::load(&dir).unwrap();
        record.config.as_mut().unwrap().seed = seed;
        record.save(&dir).unwrap();
    }
    let mut h = harness(&store);
    for id in [&weak, &close, &strong] {
        h.state_mut().select(id.clone(), true);
    }
    h.state_mut().select("20260101-000000-s042".into(), true);
    h.state_mut().select("20260101-000001-s043".into(), true);
    h.state_mut().results_mut().include_references = false;
    h.state_mut().show(Tab::Results);
    let tests_done = |app: &SquadlabApp| {
        app.results().tests.len() == 2
            && app
                .results()
                .tests
                .values()
                .all(|t| !matches!(t, squadlab::gui::PairTest::Running(_)))
    };
    step_until(&mut h, Duration::from_secs(60), tests_done);
    h.run_steps(2);
    // The first run row is the base; "close" is no different from it, "strong" is.
    assert!(has_label(&h, "base run"));
    assert_eq!(
        h.query_all_by_label("n.s.").count(),
        1,
        "only close is n.s."
    );
    assert!(
        has_label_containing(&h, "+4.17 ["),
        "close: 2 of 48 questions"
    );
    assert!(has_label_containing(&h, "+62.50 ["), "strong: 30 of 48");
    // The seed group: n = 2, F1 88.5 ± t(0.975, 1) · 0.7071 / √2 = [82.15, 94.85].
    assert!(has_label(&h, "base (2 seeds)"));
    assert!(has_label(&h, "[82.15, 94.85]"));

    // Against "strong", both others differ: no mark.
    h.state_mut().results_mut().baseline_run = Some(strong.clone());
    step_until(&mut h, Duration::from_secs(60), |app| {
        app.results().tests.len() == 4
            && app
                .results()
                .tests
                .values()
                .all(|t| !matches!(t, squadlab::gui::PairTest::Running(_)))
    });
    h.run_steps(2);
    assert_eq!(h.query_all_by_label("n.s.").count(), 0);
    assert!(has_label_containing(&h, "-62.50 ["));
}

#[test]
fn prediction_filters_narrow_the_list_and_flips_show() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, _) = common::tiny_task(tmp.path());
    let store = tmp.path().join("store");
    // Every third question right, every third partly right ("is red" for "red"), the rest wrong.
    let mixed = import(&store, &json, "mixed", |c, gold| match c % 3 {
        0 => gold.to_string(),
        1 => format!("is {gold}"),
        _ => "the".to_string(),
    });
    let perfect = import(&store, &json, "perfect", |_, gold| gold.to_string());
    let mut h = harness(&store);
    h.state_mut().select(mixed.clone(), false);
    h.state_mut().show(Tab::Predictions);
    step_until(&mut h, Duration::from_secs(30), |app| {
        app.predictions().set.is_some()
    });
    let count = |h: &mut Harness<'_, SquadlabApp>| h.state_mut().predictions_mut().shown().len();
    assert_eq!(count(&mut h), 48);
    assert!(has_label(&h, "48 of 48 questions · EM 33.33 · F1 55.56"));
    for (button, expected) in [("Correct", 16), ("Partial", 16), ("Wrong", 16), ("All", 48)] {
        h.get_by_label(button).click();
        h.run_steps(2);
        assert_eq!(count(&mut h), expected, "{button}");
        assert_eq!(
            h.state().predictions().filter.category == Category::All,
            button == "All"
        );
    }
    // Text search: the questions about horses.
    let horses = (0..48).filter(|c| c % 6 == 4).count();
    h.state_mut().predictions_mut().filter.search = "horse".into();
    h.run_steps(2);
    assert_eq!(count(&mut h), horses);
    h.state_mut().predictions_mut().filter.search.clear();
    // Worst first.
    h.state_mut().predictions_mut().filter.sort = squadlab::gui::Sort::F1Ascending;
    let shown = h.state_mut().predictions_mut().shown().to_vec();
    let set = h.state().predictions().set.clone().unwrap();
    assert!(shown
        .windows(2)
        .all(|w| set.questions[w[0]].f1 <= set.questions[w[1]].f1));
    assert_eq!(set.questions[shown[0]].f1, 0.0);
    // A question's detail: the question, its prediction and gold answer.
    let partial = shown
        .iter()
        .copied()
        .find(|&i| set.questions[i].id == "q1")
        .unwrap();
    h.state_mut().predictions_mut().selected = Some(partial);
    h.run_steps(2);
    let q1 = &set.questions[partial];
    assert!(has_label(&h, &q1.question));
    assert!(has_label(&h, &q1.predicted));
    assert_eq!(
        q1.predicted_span(&set.contexts[q1.context])
            .map(|(s, e)| e - s),
        Some(q1.predicted.chars().count())
    );
    // Against the perfect run, the 32 questions not exactly right here flipped.
    h.state_mut().predictions_mut().compare_with = Some(perfect);
    h.state_mut().predictions_mut().filter.category = Category::Flipped;
    h.run_steps(1);
    step_until(&mut h, Duration::from_secs(30), |app| {
        !app.predictions().is_loading()
    });
    assert_eq!(count(&mut h), 32);
    assert!(has_label_containing(
        &h,
        "0 questions right here and wrong there, 32 the other way"
    ));
    // The paired tests: 32 flips one way, F1 100 against 55.56.
    assert!(has_label_containing(
        &h,
        "against this run: significant at 0.05: EM differs (McNemar p = "
    ));
}

#[test]
fn a_damaged_run_shows_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = store.join("runs").join("20260101-000000-bad0");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("run.ron"), "RunRecord( id: \"unterminated").unwrap();
    std::fs::write(dir.join("metrics.jsonl"), "{\"not an event\": 1}\n").unwrap();
    let mut h = harness(&store);
    h.state_mut().select("20260101-000000-bad0".into(), false);
    for tab in Tab::ALL {
        h.state_mut().show(tab);
        h.run_steps(2);
    }
    assert!(has_label(&h, "damaged"));
    let view = h.state().runs().get("20260101-000000-bad0").unwrap();
    let reason = view.entry.problems.first().cloned().unwrap();
    assert!(reason.contains("run.ron"), "{reason}");
    assert!(has_label_containing(&h, &reason), "the reason is on screen");
}

#[test]
fn ui_state_survives_a_restart_and_tolerates_old_fields() {
    let state = UiState {
        selected: vec!["a".into(), "b".into()],
        smoothing: 0.6,
        log_loss: true,
        tab: Tab::Predictions,
        ..UiState::default()
    };
    let text = ron::to_string(&state).unwrap();
    let back: UiState = ron::from_str(&text).unwrap();
    assert_eq!(back.selected, state.selected);
    assert_eq!(back.smoothing, 0.6);
    assert!(back.log_loss);
    assert_eq!(back.tab, Tab::Predictions);
    // A state saved by an older version, with fields missing, loads with defaults.
    let old: UiState = ron::from_str("(selected: [\"x\"])").unwrap();
    assert_eq!(old.selected, vec!["x".to_string()]);
    assert_eq!(old.smoothing, UiState::default().smoothing);
}

#[test]
fn a_run_started_in_a_terminal_appears_and_is_followed_live() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = common::tiny_task(tmp.path());
    let store = tmp.path().join("store");
    let config = tmp.path().join("run.ron");
    let run = RunConfig {
        name: "from the terminal".into(),
        num_train_epochs: 30.0,
        logging_steps: 1,
        ..common::tiny_run_config(&json, &model)
    };
    std::fs::write(&config, run.to_ron()).unwrap();
    let mut h = harness(&store);
    h.run_steps(2);
    assert!(h.state().runs().views.is_empty());
    let mut child = common::squadlab()
        .arg("train")
        .arg(&config)
        .arg("--store")
        .arg(&store)
        .args(["--threads", "1"])
        // Steps of at least 40 ms: the run outlives several of the app's
        // reads of its log however fast the CPU trains it, and however slowly
        // the other tests leave the app's frames to come.
        .env(squadlab::faults::SLOW_STEP_MS, "40")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    step_until(&mut h, Duration::from_secs(60), |app| {
        !app.runs().views.is_empty()
    });
    let id = h.state().runs().views[0].id().to_string();
    h.state_mut().select(id.clone(), false);
    let mut progress = Vec::new();
    step_until(&mut h, Duration::from_secs(300), |app| {
        let view = app.runs().get(&id).unwrap();
        if let Some(p) = view.progress() {
            if progress.last() != Some(&p) {
                progress.push(p);
            }
        }
        view.is_finished()
    });
    assert!(child.wait().unwrap().success());
    assert!(
        progress.iter().filter(|&&p| p > 0.0 && p < 1.0).count() >= 2,
        "live progress while the other process trained: {progress:?}"
    );
    let view = h.state().runs().get(&id).unwrap();
    assert_eq!(view.follower.series.len(), 180);
    assert_eq!(view.label(), "from the terminal");
    assert!(view.scores().is_some());
}

#[test]
fn a_failing_run_shows_the_trainers_error_on_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, _) = common::tiny_task(tmp.path());
    let store = tmp.path().join("store");
    let missing = tmp.path().join("no-such-model");
    let mut h = harness(&store);
    let id = launch(&mut h, common::tiny_run_config(&json, &missing));
    step_until(&mut h, Duration::from_secs(60), |app| {
        shown(app, &id) == Shown::Is(RunStatus::Failed)
            && app.jobs().get(&id).is_some_and(|j| j.error.is_some())
    });
    let job = h.state().jobs().get(&id).unwrap();
    let error = job
        .error
        .clone()
        .unwrap_or_else(|| panic!("the error is kept; status {:?}", job.status));
    assert!(error.contains("no-such-model"), "{error}");
    assert!(has_label(&h, &error), "and shown on the run");
    let record = RunRecord::load(&store.join("runs").join(&id)).unwrap();
    assert_eq!(record.status_detail.as_deref(), Some(error.as_str()));
}

#[test]
fn keyboard_shortcuts_switch_views() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = harness(&tmp.path().join("store"));
    h.run_steps(1);
    for (key, tab) in [
        (egui::Key::Num2, Tab::Results),
        (egui::Key::Num3, Tab::Predictions),
        (egui::Key::N, Tab::NewRun),
        (egui::Key::Num1, Tab::Live),
    ] {
        h.key_press_modifiers(egui::Modifiers::COMMAND, key);
        h.run_steps(1);
        assert_eq!(h.state().tab(), tab, "{key:?}");
    }
}

#[test]
fn a_diverged_run_reads_back_whole_and_says_why() {
    let (_tmp, json, model, store, mut h) = tiny_app();
    let id = launch(
        &mut h,
        RunConfig {
            // An absurd learning rate blows the weights up within a few steps.
            learning_rate: 1e30,
            warmup_ratio: 0.0,
            logging_steps: 1,
            ..common::tiny_run_config(&json, &model)
        },
    );
    step_until(&mut h, Duration::from_secs(120), |app| {
        shown(app, &id) == Shown::Is(RunStatus::Diverged)
            && app.jobs().get(&id).is_some_and(|j| j.error.is_some())
    });
    h.state_mut().ui_state_mut().log_loss = true;
    h.run_steps(3);
    let view = h.state().runs().get(&id).unwrap();
    assert_eq!(
        view.follower.problems,
        Vec::<String>::new(),
        "NaN losses read back from the log"
    );
    let log = squadlab::store::read_metrics(&store.join("runs").join(&id));
    assert!(log.problems.is_empty(), "{:?}", log.problems);
    let Some(TrainEvent::Diverged {
        loss, grad_norm, ..
    }) = log.events.last()
    else {
        panic!("the log ends with the divergence: {:?}", log.events.last());
    };
    assert!(!loss.is_finite() || !grad_norm.is_finite());
    let error = h.state().jobs().get(&id).unwrap().error.clone().unwrap();
    assert!(error.starts_with("diverged at step"), "{error}");
    assert!(has_label(&h, "diverged"));
}

#[test]
fn the_form_shows_the_clis_validation_errors_inline_and_blocks_launch() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = common::tiny_task(tmp.path());
    let bad = RunConfig {
        per_device_train_batch_size: 0,
        learning_rate: -1.0,
        ..common::tiny_run_config(&json, &model)
    };
    // What the CLI says of the same config.
    let file = tmp.path().join("bad.ron");
    std::fs::write(&file, bad.to_ron()).unwrap();
    let out = common::squadlab()
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let cli = String::from_utf8(out.stderr).unwrap();
    let cli_problems: Vec<&str> = cli
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .collect();
    assert_eq!(cli_problems.len(), 2, "{cli}");

    let mut h = harness(&tmp.path().join("store"));
    h.state_mut().new_run_mut().load_config(bad, "bad".into());
    h.state_mut().show(Tab::NewRun);
    h.run_steps(2);
    let (_, problems) = h.state().new_run().build();
    assert_eq!(problems, cli_problems, "the same checks in the same words");
    for p in &cli_problems {
        assert!(has_label_containing(&h, p), "{p} shown");
    }
    h.get_by_label("Launch").click();
    h.run_steps(2);
    assert_eq!(h.state().new_run().launched, None, "nothing launched");
    assert!(h.state().runs().views.is_empty());

    // So is a local data file that is not there.
    h.state_mut()
        .new_run_mut()
        .config
        .per_device_train_batch_size = 8;
    h.state_mut().new_run_mut().config.learning_rate = 1e-3;
    h.state_mut().new_run_mut().train = tmp.path().join("missing.json").display().to_string();
    h.run_steps(2);
    let (_, problems) = h.state().new_run().build();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("data.train: file ")
            && problems[0].ends_with("missing.json does not exist"),
        "{problems:?}"
    );
}

#[test]
fn the_new_run_form_shows_the_memory_plan_and_refuses_a_run_too_big_for_its_gpu() {
    let (tmp, json, model, _store, mut h) = tiny_app();
    let tiny = common::tiny_run_config(&json, &model);
    h.state_mut().new_run_mut().load_config(tiny, "tiny".into());
    h.state_mut().show(Tab::NewRun);
    // A GPU as nvidia-smi would report it, so no process is spawned.
    h.state_mut()
        .new_run_mut()
        .memory
        .set_gpus(Ok(vec![squadlab::memory::gpus::Gpu {
            name: "test GPU".into(),
            driver: "1".into(),
            compute_cap: "9.0".into(),
            free_mib: Some(16 * 1024),
            total_mib: Some(16 * 1024),
        }]));
    // The tiny model's config is read off the UI thread: its plan comes a
    // few frames later.
    step_until_label(&mut h, "Memory: training needs about");

    // BERT-large at 32 × 384 in bf16 on that 16 GiB GPU cannot fit.
    let large = RunConfig {
        model: ModelSource::try_from("bert-large-uncased".to_string()).unwrap(),
        device: squadlab::config::Device::Cuda(0),
        dtype: squadlab::config::DType::Bf16,
        max_seq_length: 384,
        doc_stride: 128,
        per_device_train_batch_size: 32,
        ..common::tiny_run_config(&json, &model)
    };
    h.state_mut()
        .new_run_mut()
        .load_config(large, "large".into());
    h.run_steps(2);
    assert!(has_label_containing(
        &h,
        "more than the 16.00 GiB free on cuda:0"
    ));
    assert!(has_label_containing(&h, "gradient_accumulation_steps"));
    h.get_by_label("Launch").click();
    h.run_steps(2);
    assert_eq!(h.state().new_run().launched, None, "nothing launched");
    drop(tmp);
}

/// A model locator that counts its calls and holds each one until the test
/// releases it (or 3 s pass): one called on the UI thread holds the frame.
fn held_locator() -> (
    squadlab::gui::Locator,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    crossbeam_channel::Sender<()>,
) {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (release, held) = crossbeam_channel::unbounded::<()>();
    let counted = calls.clone();
    let locator: squadlab::gui::Locator = std::sync::Arc::new(move |source| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = held.recv_timeout(Duration::from_secs(3));
        squadlab::memory::model_config(source)
    });
    (locator, calls, release)
}

/// One frame, which must not wait for the model's lookup.
fn quick_step(h: &mut Harness<'_, SquadlabApp>, what: &str) {
    let start = Instant::now();
    h.step();
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "{what}: the frame took {took:?}, waiting for the model's lookup"
    );
}

#[test]
fn the_memory_line_finds_the_model_off_the_ui_thread_once_its_text_settles() {
    let (tmp, json, model, _store, mut h) = tiny_app();
    let (locator, calls, release) = held_locator();
    let calls_now = || calls.load(std::sync::atomic::Ordering::SeqCst);
    h.state_mut().new_run_mut().memory = squadlab::gui::MemoryProbe::with_locator(locator);
    h.state_mut().new_run_mut().memory.set_gpus(Ok(vec![]));
    let config = common::tiny_run_config(&json, &model);
    let path = config.model.as_str().to_string();
    h.state_mut()
        .new_run_mut()
        .load_config(config, "tiny".into());
    h.state_mut().show(Tab::NewRun);

    // A model set from outside the field is looked for at once, on a thread:
    // the frame shows that it is planning while the lookup is held.
    quick_step(&mut h, "a config loaded");
    quick_step(&mut h, "a config loaded");
    assert!(
        has_label_containing(&h, "Memory: planning"),
        "planning shown"
    );
    release.send(()).unwrap();
    step_until_label(&mut h, "Memory: training needs about");
    assert_eq!(calls_now(), 1);

    // Typed into, the field asks for no lookup on any keystroke...
    let field = egui_kittest::kittest::By::new()
        .role(egui::accesskit::Role::TextInput)
        .value(&path);
    h.get(field).focus();
    quick_step(&mut h, "the field focused");
    for key in ["x", "y"] {
        h.event(egui::Event::Text(key.into()));
        quick_step(&mut h, "a keystroke");
        quick_step(&mut h, "a keystroke");
    }
    assert_ne!(
        h.state().new_run().model,
        path,
        "the keys reached the field"
    );
    assert_eq!(calls_now(), 1, "the model was looked for while being typed");
    // ...until its text stops changing.
    std::thread::sleep(squadlab::gui::MEMORY_SETTLE + Duration::from_millis(100));
    quick_step(&mut h, "the text settled");
    let start = Instant::now();
    while calls_now() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no lookup after the text settled"
        );
        quick_step(&mut h, "the text settled");
        std::thread::sleep(Duration::from_millis(10));
    }
    release.send(()).unwrap();
    // The typed folder does not exist: nothing to plan.
    step_until_label(&mut h, "Memory: not planned");
    assert_eq!(calls_now(), 2);
    drop(tmp);
}

/// The memory line's colour: a CUDA run that cannot fit is refused in the
/// error colour, a CPU run that may not fit warned of in the warning colour.
#[test]
fn the_memory_line_warns_of_a_cpu_run_that_may_not_fit() {
    use squadlab::gui::{memory_tone, MemoryTone};
    let large = squadlab::model::BertConfig::known("bert-large-uncased").unwrap();
    let run = RunConfig {
        per_device_train_batch_size: 32,
        max_seq_length: 384,
        ..RunConfig::default()
    };
    let device = |cuda, free| squadlab::memory::DeviceMemory {
        name: if cuda { "cuda:0" } else { "cpu" }.into(),
        cuda,
        free: Some(free),
    };
    let warned = squadlab::memory::check(&run, &large, &device(false, 1 << 30));
    assert!(warned.warn, "{}", warned.message);
    assert_eq!(
        memory_tone(&warned),
        MemoryTone::Warning,
        "{}",
        warned.message
    );
    let refused = squadlab::memory::check(&run, &large, &device(true, 1 << 30));
    assert_eq!(
        memory_tone(&refused),
        MemoryTone::Refused,
        "{}",
        refused.message
    );
    let fits = squadlab::memory::check(&run, &large, &device(false, 1 << 40));
    assert_eq!(memory_tone(&fits), MemoryTone::Plain, "{}", fits.message);
}

#[test]
fn the_app_shares_the_stores_queue_with_workers_in_both_directions() {
    let (tmp, json, model, store, mut h) = tiny_app();
    let config = RunConfig {
        max_steps: Some(3),
        save_strategy: squadlab::config::SaveStrategy::No,
        ..common::tiny_run_config(&json, &model)
    };
    // A run queued in the app while another process trains on its device
    // waits; a worker's claim then takes it from the app.
    h.run_steps(1);
    let busy = squadlab::store::queue::take_device(&store, "cpu")
        .unwrap()
        .expect("the cpu slot is free");
    let queued_here = launch(&mut h, config.clone());
    h.run_steps(3);
    let job = h.state().jobs().get(&queued_here).unwrap();
    assert!(
        job.status.contains("busy in another process"),
        "{}",
        job.status
    );
    let dir = store.join("runs").join(&queued_here);
    let worker_claim = squadlab::store::queue::claim(&dir)
        .unwrap()
        .expect("claimable");
    drop(busy);
    step_until(&mut h, Duration::from_secs(30), |app| {
        app.jobs()
            .get(&queued_here)
            .unwrap()
            .status
            .contains("taken by another process")
    });
    drop(worker_claim);

    // A run queued from the CLI is trained by the app when it works the store's queue.
    let ron = tmp.path().join("queued.ron");
    std::fs::write(&ron, config.to_ron()).unwrap();
    let queued = common::squadlab_json(&[
        "train",
        &ron.display().to_string(),
        "--queue",
        "--store",
        &store.display().to_string(),
    ]);
    let id = queued["run_id"].as_str().unwrap().to_string();
    h.state_mut().ui_state_mut().train_store_queue = true;
    step_until(&mut h, Duration::from_secs(60), |app| {
        app.jobs().get(&id).is_some_and(|j| j.status == "finished")
    });
    let record = squadlab::store::RunRecord::load(&store.join("runs").join(&id)).unwrap();
    assert_eq!(record.status, RunStatus::Finished);
}

#[test]
fn evaluations_during_training_plot_against_step_and_export_to_tensorboard() {
    let (_tmp, json, model, store, mut h) = tiny_app();
    let config = RunConfig {
        num_train_epochs: 4.0,
        eval_strategy: squadlab::config::EvalStrategy::Epoch,
        in_training_eval_samples: Some(20),
        ..common::tiny_run_config(&json, &model)
    };
    let id = launch(&mut h, config);
    step_until(&mut h, Duration::from_secs(300), |app| {
        let view = app.runs().get(&id).unwrap();
        view.entry.shown == Shown::Is(RunStatus::Finished) && view.scores().is_some()
    });
    let series = &h.state().runs().get(&id).unwrap().follower.series;
    let (evals, last) = (series.evals.clone(), series.eval.clone());
    let steps: Vec<u64> = evals.iter().map(|e| e.step).collect();
    assert_eq!(steps, [6, 12, 18, 24], "one evaluation per epoch");
    assert!(evals.iter().all(|e| e.total == 20));
    let last = last.expect("the final evaluation");
    assert_eq!((last.total, last.step), (48, 24));
    let best = evals
        .iter()
        .fold(None::<&squadlab::train::EvalSummary>, |b, e| match b {
            Some(b) if e.f1 <= b.f1 => Some(b),
            _ => Some(e),
        })
        .unwrap()
        .clone();
    assert!(has_label_containing(
        &h,
        "F1 (solid) and EM (dashed) of the evaluations during training"
    ));
    assert!(
        has_label_containing(&h, &format!("{:.2} (step {}, 20 q)", best.f1, best.step)),
        "the best evaluation is beside the plots"
    );

    h.get_by_label("Export to TensorBoard").click();
    h.run_steps(2);
    let dir = store.join("exports").join("tensorboard").join(&id);
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let scalars =
        squadlab::report::tensorboard::read_event_file(&std::fs::read(&files[0]).unwrap()).unwrap();
    let f1: Vec<(i64, f32)> = scalars
        .iter()
        .filter(|s| s.tag == "eval/f1")
        .map(|s| (s.step, s.value))
        .collect();
    let expected: Vec<(i64, f32)> = evals.iter().map(|e| (e.step as i64, e.f1 as f32)).collect();
    assert_eq!(f1, expected);
    assert!(has_label_containing(&h, "tensorboard --logdir"));
}

#[test]
fn the_live_views_system_row_plots_a_runs_samples_and_its_gpus() {
    use squadlab::train::{GpuUsage, StepLog, SystemSample, TrainEvent};
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let dir = scored_run(&store, "20260101-000000-0001", "sampled", 80.0, 88.0);
    let sample = |t: f64, step: u64, gpu: bool| {
        TrainEvent::System(SystemSample {
            elapsed_seconds: t,
            step,
            cpu_percent: Some(150.0),
            rss_bytes: Some(2 << 30),
            gpus: if gpu {
                vec![GpuUsage {
                    index: 0,
                    utilization_percent: Some(95.0),
                    memory_used_mib: Some(30_000.0),
                    power_watts: Some(280.0),
                    temperature_c: Some(60.0),
                }]
            } else {
                Vec::new()
            },
            gpu_error: None,
        })
    };
    let step = |n: u64| {
        TrainEvent::Step(StepLog {
            step: n,
            epoch: 0.0,
            loss: 2.0,
            grad_norm: 1.0,
            learning_rate: 1e-5,
            samples_per_second: 10.0,
            elapsed_seconds: n as f64,
        })
    };
    let write = |events: &[TrainEvent]| {
        let lines: Vec<String> = events
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        std::fs::write(dir.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
    };
    write(&[
        step(1),
        sample(5.0, 1, false),
        step(2),
        sample(10.0, 2, false),
    ]);
    let mut h = harness(&store);
    h.state_mut().select("20260101-000000-0001".into(), false);
    h.run_steps(3);
    assert!(has_label(&h, "System"), "the row is there, folded");
    assert!(!has_label(&h, "CPU % (100 = one core)"));
    h.get_by_label("System").click();
    h.run_steps(2);
    assert!(has_label(&h, "CPU % (100 = one core)"));
    assert!(has_label(&h, "memory (RSS, GiB)"));
    assert!(
        !has_label(&h, "GPU power (W)"),
        "no GPU plots for a CPU run"
    );
    let series = &h
        .state()
        .runs()
        .get("20260101-000000-0001")
        .unwrap()
        .follower
        .series;
    assert_eq!(series.system.len(), 2);

    // A CUDA run's samples add the GPU plots.
    write(&[
        step(1),
        sample(5.0, 1, true),
        step(2),
        sample(10.0, 2, true),
    ]);
    let mut h = harness(&store);
    h.state_mut().select("20260101-000000-0001".into(), false);
    h.run_steps(3);
    if !has_label(&h, "GPU power (W)") {
        h.get_by_label("System").click();
        h.run_steps(2);
    }
    for title in [
        "GPU utilisation %",
        "GPU memory used (GiB)",
        "GPU power (W)",
        "GPU temperature (°C)",
    ] {
        assert!(has_label(&h, title), "{title}");
    }
}

/// A sweep of the tiny task (3 learning rates × 2 seeds) started in `store`,
/// its runs then marked finished with the given F1 per (lr index, seed).
fn scored_sweep(tmp: &Path, f1: impl Fn(usize, u64) -> f64) -> (PathBuf, String) {
    let (json, model) = common::tiny_task(tmp);
    std::fs::write(
        tmp.join("base.ron"),
        common::tiny_run_config(&json, &model).to_ron(),
    )
    .unwrap();
    let file = tmp.join("sweep.ron");
    std::fs::write(
        &file,
        r#"Sweep(name: "lr study", base: File("base.ron"), grid: {"learning_rate": [1e-4, 1e-3, 3e-3]}, seeds: [42, 43])"#,
    )
    .unwrap();
    let store = squadlab::store::Store::open(Some(&tmp.join("store")));
    squadlab::sweep::start(&store, &file).unwrap();
    let lrs = [1e-4, 1e-3, 3e-3];
    for e in store.list().unwrap() {
        let mut r = e.record.unwrap();
        let c = r.config.clone().unwrap();
        let i = lrs.iter().position(|&l| l == c.learning_rate).unwrap();
        let v = f1(i, c.seed);
        r.status = RunStatus::Finished;
        r.outcome = Outcome {
            exact_match: Some(v - 10.0),
            f1: Some(v),
            eval_questions: Some(48),
            train_runtime: Some(10.0 + i as f64),
            ..Outcome::default()
        };
        r.save(&e.dir).unwrap();
    }
    (store.root, file.display().to_string())
}

/// The table's learning rates, top to bottom, as drawn: the same values
/// label the per-axis effects below the table, after its separator.
fn table_order(h: &Harness<'_, SquadlabApp>, values: &[&str]) -> Vec<String> {
    let effects = h
        .query_by_label_contains("F1 by axis value")
        .map_or(f32::MAX, |n| n.rect().min.y);
    let mut at: Vec<(f32, String)> = values
        .iter()
        .filter_map(|v| {
            let node = h.query_all_by_label(v).find(|n| n.rect().min.y < effects)?;
            Some((node.rect().min.y, v.to_string()))
        })
        .collect();
    at.sort_by(|a, b| a.0.total_cmp(&b.0));
    at.into_iter().map(|(_, v)| v).collect()
}

#[test]
fn the_sweep_table_sorts_marks_the_best_and_the_points_no_different_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    // lr 1e-3 is best; 3e-3 is close (noisy seeds), 1e-4 far below.
    let (store, _) = scored_sweep(tmp.path(), |i, seed| match (i, seed) {
        (0, 42) => 40.0,
        (0, _) => 41.0,
        (1, 42) => 80.0,
        (1, _) => 82.0,
        (_, 42) => 70.0,
        _ => 88.0,
    });
    let mut h = harness(&store);
    h.state_mut().show(Tab::Sweeps);
    step_until(&mut h, Duration::from_secs(30), |app| {
        !app.sweeps().is_testing()
    });
    h.run_steps(3);
    assert_eq!(h.state().sweeps().selected.as_deref(), Some("lr-study"));
    assert!(has_label_containing(&h, "3 points, 6 runs, 6 finished"));
    let lrs = ["0.0001", "0.001", "0.003"];
    // The best row is marked; 3e-3 (F1 79 ± 12.7) is no different by Welch's
    // test, 1e-4 (40.5 ± 0.7) is.
    let rows = h.state_mut().sweep_rows();
    let mark = |lr: &str| {
        rows.iter()
            .find(|r| r.point["learning_rate"] == lr)
            .unwrap()
            .vs_best
            .clone()
    };
    use squadlab::sweep::table::VsBest;
    assert_eq!(mark("0.001"), VsBest::Best);
    assert!(
        matches!(mark("0.003"), VsBest::NotSignificant(_)),
        "{:?}",
        mark("0.003")
    );
    assert!(
        matches!(mark("0.0001"), VsBest::Significant(_)),
        "{:?}",
        mark("0.0001")
    );
    // The marks are drawn once the table has its intervals: a loaded machine
    // may take more frames than an idle one.
    let marked = |h: &_| has_label(h, "best") && has_label(h, "n.s.") && has_label(h, "worse");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !marked(&h) && std::time::Instant::now() < deadline {
        h.run_steps(1);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(marked(&h));

    // Sorting by F1, descending, then ascending by a second click.
    h.get_by_label("F1 (95% CI)").click();
    h.run_steps(2);
    assert_eq!(table_order(&h, &lrs), ["0.001", "0.003", "0.0001"]);
    h.get_by_label_contains("F1 (95% CI)").click();
    h.run_steps(2);
    assert_eq!(table_order(&h, &lrs), ["0.0001", "0.003", "0.001"]);
    // By train time (1e-4 fastest): descending first.
    h.get_by_label("train time").click();
    h.run_steps(2);
    assert_eq!(table_order(&h, &lrs), ["0.003", "0.001", "0.0001"]);

    // The per-axis effects: F1 by learning rate, mean over both seeds.
    assert!(has_label(&h, "81.00 ± 1.41 (n=2)"));

    // Export goes through the comparison table's path.
    h.get_by_label("Export CSV").click();
    h.run_steps(2);
    let exported: Vec<PathBuf> = std::fs::read_dir(store.join("exports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(exported.len(), 1);
    let csv = std::fs::read_to_string(&exported[0]).unwrap();
    let cli = common::squadlab()
        .args(["export", "sweep:lr-study", "--format", "csv", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(cli.status.success());
    let printed = String::from_utf8(cli.stdout).unwrap();
    assert_eq!(
        csv.trim_end(),
        printed.trim_end(),
        "the same table as the CLI's"
    );
    assert_eq!(
        csv_records(&csv)
            .iter()
            .filter(|r| r[1] == "seed_group")
            .count(),
        3
    );
}

#[test]
fn brushing_an_axis_of_the_parallel_plot_filters_the_table() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = scored_sweep(tmp.path(), |i, seed| {
        40.0 + 20.0 * i as f64 + seed as f64 - 42.0
    });
    let mut h = harness(&store);
    h.state_mut().show(Tab::Sweeps);
    step_until(&mut h, Duration::from_secs(30), |app| {
        !app.sweeps().is_testing()
    });
    h.run_steps(3);
    let lrs = ["0.0001", "0.001", "0.003"];
    assert_eq!(table_order(&h, &lrs).len(), 3);
    // Axes: learning_rate (0), then F1 (1). Brush the top half of F1:
    // only 3e-3 (F1 80, 81) lies there.
    let from = h.state().sweeps().plot_screen_pos(1, 0.98).unwrap();
    let to = h.state().sweeps().plot_screen_pos(1, 0.75).unwrap();
    h.hover_at(from);
    h.run_steps(1);
    h.drag_at(from);
    h.run_steps(1);
    for k in 1..=5 {
        h.hover_at(from + (to - from) * (k as f32 / 5.0));
        h.run_steps(1);
    }
    h.drop_at(to);
    h.run_steps(3);
    let brush = h.state().sweeps().brushes.get("f1").copied();
    assert!(
        brush.is_some_and(|(lo, hi)| (lo - 0.75).abs() < 0.02 && (hi - 0.98).abs() < 0.02),
        "{brush:?}"
    );
    assert_eq!(table_order(&h, &lrs), ["0.003"]);
    assert!(has_label_containing(&h, "1 of 3 points inside the brushes"));

    // A brush on the learning rate too: nothing passes both.
    let lo = h.state().sweeps().plot_screen_pos(0, 0.0).unwrap();
    let mid = h.state().sweeps().plot_screen_pos(0, 0.6).unwrap();
    h.hover_at(lo);
    h.run_steps(1);
    h.drag_at(lo);
    h.run_steps(1);
    h.hover_at(mid);
    h.run_steps(1);
    h.drop_at(mid);
    h.run_steps(3);
    assert!(table_order(&h, &lrs).is_empty());

    // Clearing the brushes shows every point again.
    h.get_by_label("Clear brushes").click();
    h.run_steps(3);
    assert!(h.state().sweeps().brushes.is_empty());
    assert_eq!(table_order(&h, &lrs).len(), 3);
}

#[test]
fn a_sweep_started_from_a_file_in_the_app_trains_to_its_end() {
    let (tmp, json, model, _store, mut h) = tiny_app();
    let base = RunConfig {
        num_train_epochs: 2.0,
        ..common::tiny_run_config(&json, &model)
    };
    std::fs::write(tmp.path().join("base.ron"), base.to_ron()).unwrap();
    let file = tmp.path().join("sweep.ron");
    std::fs::write(
        &file,
        r#"Sweep(name: "app sweep", base: File("base.ron"), grid: {"learning_rate": [1e-3, 2e-3]}, seeds: [42, 43])"#,
    )
    .unwrap();
    h.state_mut().show(Tab::Sweeps);
    h.run_steps(2);
    h.state_mut().open_sweep_file(file.clone());
    h.run_steps(2);
    assert!(has_label_containing(&h, "sweep app-sweep: 4 runs, 4 new"));
    h.get_by_label("train queued runs here").click();
    h.get_by_label("Start sweep").click();
    h.run_steps(2);
    assert_eq!(h.state().sweeps().selected.as_deref(), Some("app-sweep"));
    assert!(h.state().ui_state().train_store_queue);
    // The app takes the queued runs one at a time and the table follows them.
    let mut saw_running = false;
    step_until(&mut h, Duration::from_secs(600), |app| {
        let entries: Vec<_> = app
            .runs()
            .views
            .iter()
            .filter(|v| v.entry.record.as_ref().is_some_and(|r| r.sweep.is_some()))
            .collect();
        saw_running |= entries
            .iter()
            .any(|v| v.entry.shown == Shown::Is(RunStatus::Running));
        entries.len() == 4
            && entries
                .iter()
                .all(|v| v.entry.shown == Shown::Is(RunStatus::Finished))
    });
    assert!(saw_running, "the view saw runs training");
    step_until(&mut h, Duration::from_secs(60), |app| {
        !app.sweeps().is_testing()
    });
    h.run_steps(3);
    assert!(has_label_containing(&h, "2 points, 4 runs, 4 finished"));
    assert!(has_label(&h, "best"));
    assert!(has_label_containing(&h, "finished 2"));
    // Started again, the file has nothing new to queue.
    assert!(has_label_containing(
        &h,
        "4 runs, 0 new, 4 already in the store"
    ));
}

#[test]
fn trials_are_added_to_a_random_sweep_from_the_app() {
    let (tmp, json, model, store, mut h) = tiny_app();
    std::fs::write(
        tmp.path().join("base.ron"),
        common::tiny_run_config(&json, &model).to_ron(),
    )
    .unwrap();
    let file = tmp.path().join("sweep.ron");
    std::fs::write(
        &file,
        r#"Sweep(name: "random sweep", base: File("base.ron"), random: {"warmup_ratio": Uniform(0.0, 0.2)}, trials: 2, seed: 3)"#,
    )
    .unwrap();
    h.state_mut().show(Tab::Sweeps);
    h.state_mut().open_sweep_file(file);
    h.run_steps(2);
    assert!(has_label_containing(
        &h,
        "sweep random-sweep: 2 runs, 2 new"
    ));
    h.get_by_label("Start sweep").click();
    h.run_steps(3);
    assert!(has_label_containing(&h, "2 points, 2 runs, 0 finished"));
    assert!(
        has_label_containing(&h, "queued 1"),
        "the table shows queued runs"
    );
    h.state_mut().sweeps_mut().trials_to_add = 3;
    h.get_by_label("Add trials").click();
    h.run_steps(3);
    let opened = squadlab::store::Store::open(Some(&store));
    let queued = squadlab::sweep::runs(&opened, "random-sweep").unwrap();
    assert_eq!(queued.len(), 5, "3 more points drawn from the same stream");
    assert!(has_label_containing(&h, "5 points, 5 runs, 0 finished"));
}

/// A SQuAD 2.0 run's predictions: the slider replays every null decision,
/// the best-threshold button gives the evaluation's best F1, and the v2
/// filters count the answers the threshold decides.
#[test]
fn the_null_threshold_slider_replays_a_v2_runs_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = crate::squad2::tiny_v2_task(tmp.path());
    let mut config = common::tiny_run_config(&json, &model);
    config.version_2_with_negative = true;
    config.num_train_epochs = 10.0;
    let file = tmp.path().join("v2.ron");
    std::fs::write(&file, config.to_ron()).unwrap();
    let store = tmp.path().join("store");
    let run = common::squadlab_json(&[
        "train",
        &file.display().to_string(),
        "--store",
        &store.display().to_string(),
    ]);
    let id = run["run_id"].as_str().unwrap().to_string();
    let record = RunRecord::load(&store.join("runs").join(&id)).unwrap();
    let v2 = record.outcome.squad_v2.clone().unwrap();
    let best = v2.best.clone().unwrap();
    let total = v2.has_ans_total.unwrap() + v2.no_ans_total.unwrap();

    let mut h = harness(&store);
    h.state_mut().select(id.clone(), false);
    h.state_mut().show(Tab::Predictions);
    step_until(&mut h, Duration::from_secs(30), |app| {
        app.predictions().set.is_some()
    });
    h.run_steps(2);
    let f1 = |h: &Harness<'_, SquadlabApp>| h.state().predictions().set.as_ref().unwrap().f1;
    // At the run's own threshold: the run's scores.
    assert!((f1(&h) - record.outcome.f1.unwrap()).abs() < 1e-9);
    assert!(has_label_containing(
        &h,
        &format!(
            "at 0.000: EM {:.2} · F1 {:.2}",
            record.outcome.exact_match.unwrap(),
            record.outcome.f1.unwrap()
        )
    ));
    // The marked best threshold gives the evaluation's best F1.
    h.get_by_label(&format!("best F1 threshold {:.3}", best.best_f1_thresh))
        .click();
    h.run_steps(3);
    assert_eq!(h.state().predictions().threshold, Some(best.best_f1_thresh));
    assert!(
        (f1(&h) - best.best_f1).abs() < 1e-9,
        "replayed F1 {} at the best threshold, the evaluation found {}",
        f1(&h),
        best.best_f1
    );
    assert!(has_label_containing(&h, &format!("F1 {:.2}", best.best_f1)));
    // Below every difference the model answers nothing: only the
    // unanswerable questions are right, and every answerable one is a
    // false null.
    h.state_mut().predictions_mut().set_threshold(-1e6);
    h.run_steps(2);
    let no_ans = v2.no_ans_total.unwrap() as f64;
    assert!((f1(&h) - 100.0 * no_ans / total as f64).abs() < 1e-9);
    h.get_by_label("False null").click();
    h.run_steps(2);
    assert_eq!(
        h.state_mut().predictions_mut().shown().len(),
        v2.has_ans_total.unwrap()
    );
    h.get_by_label("False answer").click();
    h.run_steps(2);
    assert_eq!(h.state_mut().predictions_mut().shown().len(), 0);
    h.get_by_label("Unanswerable").click();
    h.run_steps(2);
    assert_eq!(
        h.state_mut().predictions_mut().shown().len(),
        v2.no_ans_total.unwrap()
    );
    // A question's detail says it has no answer and shows its null score.
    let first = h.state_mut().predictions_mut().shown()[0];
    h.state_mut().predictions_mut().selected = Some(first);
    h.run_steps(2);
    assert!(has_label(&h, "unanswerable"));
    assert!(has_label(&h, "(no answer)"));
    assert!(has_label_containing(&h, "null "));
}
