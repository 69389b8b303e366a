//! The Analysis view driven headless by egui_kittest on two imported
//! leaderboard files (the v1.1 dev set): its breakdown is the one
//! `squadlab breakdown` computes, its table shows each bucket's scores and
//! marks the significant differences, a bucket's cell opens the predictions
//! browser on exactly that bucket's questions, and its exports are the
//! breakdown's tables.
#![cfg(feature = "gui")]

use crate::breakdown::{fixture, import};
use crate::common;
use crate::gui::{harness, has_label_containing, saved_png_of, step_until};
use egui_kittest::kittest::Queryable;
use squadlab::gui::Tab;
use squadlab::report::significance::{show_p, BootstrapOptions};
use squadlab::report::{breakdown_runs, render_breakdown, Breakdown, Dimension, Format};
use std::time::Duration;

#[test]
fn the_analysis_view_breaks_two_runs_down_and_opens_a_buckets_questions() {
    let want = fixture();
    let leaderboard = |key: &str| {
        common::squad_file(&format!(
            "reference_predictions/{}",
            want[key].as_str().unwrap()
        ))
    };
    let (Some(dev), Some(base_file), Some(run_file)) = (
        common::squad_file("dev-v1.1.json"),
        leaderboard("base"),
        leaderboard("run"),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let store_arg = store.display().to_string();
    let base = import(&base_file, &dev, &store_arg);
    let run = import(&run_file, &dev, &store_arg);
    let dirs = [
        store.join("runs").join(&base),
        store.join("runs").join(&run),
    ];
    let dirs: Vec<&std::path::Path> = dirs.iter().map(|d| d.as_path()).collect();
    let expected =
        breakdown_runs(&dirs, Dimension::AnswerLength, BootstrapOptions::default()).unwrap();

    let mut h = harness(&store);
    h.state_mut().select(base.clone(), false);
    h.state_mut().select(run.clone(), true);
    h.state_mut().show(Tab::Analysis);
    h.run_steps(2);
    h.get_by_label("Answer length").click();
    let computed = |app: &squadlab::gui::SquadlabApp| {
        app.analysis()
            .breakdown()
            .is_some_and(|b| b.by == "answer-length")
    };
    step_until(&mut h, Duration::from_secs(120), computed);
    h.run_steps(2);
    assert_eq!(h.state().analysis().error(), None);
    let shown: Breakdown = h.state().analysis().breakdown().unwrap().clone();
    // What the view shows is what `squadlab breakdown` computes, bootstrap
    // draws and all.
    assert_eq!(shown, expected);
    assert_eq!(
        shown.runs[0].run_id, base,
        "the first selected run is the baseline"
    );
    let significant: Vec<&str> = shown.comparisons[0]
        .rows
        .iter()
        .filter(|r| r.significant)
        .map(|r| r.bucket.as_str())
        .collect();
    assert!(
        !significant.is_empty(),
        "two leaderboard systems differ somewhere"
    );
    for r in &shown.comparisons[0].rows {
        let cell = format!(
            "{:+.1} [{:+.1}, {:+.1}] · p {}{}",
            r.delta_f1.delta,
            r.delta_f1.low,
            r.delta_f1.high,
            show_p(r.mcnemar.p_value),
            if r.significant { " *" } else { "" }
        );
        assert!(has_label_containing(&h, &cell), "no cell {cell:?}");
    }

    // The run's cell of the two-word answers opens exactly those questions.
    let row = shown.runs[1]
        .rows
        .iter()
        .find(|r| r.bucket == "2")
        .unwrap()
        .clone();
    let cell = format!(
        "{} q · EM {:.1} · F1 {:.1} [{:.1}, {:.1}]",
        row.count, row.exact_match, row.f1, row.f1_interval[0], row.f1_interval[1]
    );
    h.get_by_label(&cell).click();
    h.run_steps(2);
    assert_eq!(h.state().tab(), Tab::Predictions);
    assert_eq!(h.state().selected().last(), Some(&run));
    assert_eq!(
        h.state().selected().len(),
        2,
        "the other run stays selected"
    );
    // Coming back, the comparison keeps its base run whatever the selection's order.
    assert_eq!(h.state().analysis().baseline, Some(base.clone()));
    step_until(&mut h, Duration::from_secs(60), |app| {
        app.predictions().set.as_ref().is_some_and(|s| s.run == run)
    });
    h.run_steps(2);
    let p = h.state_mut().predictions_mut();
    assert_eq!(
        p.filter.bucket,
        Some((Dimension::AnswerLength, "2".to_string()))
    );
    let questions = p.shown().to_vec();
    assert_eq!(questions.len(), row.count);
    let set = p.set.clone().unwrap();
    let (mut em, mut f1) = (0.0, 0.0);
    for &i in &questions {
        let q = &set.questions[i];
        assert_eq!(q.golds[0].0.split_whitespace().count(), 2, "{}", q.id);
        em += q.exact_match;
        f1 += q.f1;
    }
    let n = questions.len() as f64;
    assert!((100.0 * em / n - row.exact_match).abs() < 1e-9);
    assert!((100.0 * f1 / n - row.f1).abs() < 1e-9);
    assert!(has_label_containing(&h, "Only answer-length: 2"));
    h.get_by_label("show all questions").click();
    h.run_steps(2);
    assert_eq!(h.state_mut().predictions_mut().shown().len(), 10_570);

    // Another baseline: the breakdown is computed again with it first.
    h.state_mut().show(Tab::Analysis);
    h.state_mut().analysis_mut().baseline = Some(run.clone());
    step_until(&mut h, Duration::from_secs(120), |app| {
        app.analysis()
            .breakdown()
            .is_some_and(|b| b.runs[0].run_id == run)
    });
    let swapped = h.state().analysis().breakdown().unwrap().clone();
    assert_eq!(swapped.comparisons[0].run_id, base);
    let two = |b: &Breakdown| {
        b.comparisons[0]
            .rows
            .iter()
            .find(|r| r.bucket == "2")
            .unwrap()
            .delta_f1
            .delta
    };
    assert!(
        (two(&swapped) + two(&shown)).abs() < 1e-9,
        "ΔF1 changes sign with the baseline"
    );
    h.state_mut().analysis_mut().baseline = Some(base.clone());
    step_until(&mut h, Duration::from_secs(120), |app| {
        app.analysis()
            .breakdown()
            .is_some_and(|b| b.runs[0].run_id == base)
    });

    // Exports: the breakdown's tables, as `squadlab breakdown --format` prints them.
    h.run_steps(2);
    for button in ["Export Markdown", "Export CSV", "Export LaTeX"] {
        h.get_by_label(button).click();
        h.run_steps(2);
    }
    let files = h.state().analysis().exported.clone();
    assert_eq!(files.len(), 3, "{files:?}");
    for (ext, format) in [
        ("md", Format::Markdown),
        ("csv", Format::Csv),
        ("tex", Format::Latex),
    ] {
        let path = files
            .iter()
            .find(|f| f.extension().unwrap() == ext)
            .unwrap();
        assert!(path.starts_with(store.join("exports")), "{path:?}");
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(text, render_breakdown(&expected, format).unwrap());
        let cli = common::squadlab()
            .args([
                "breakdown",
                &base,
                &run,
                "--by",
                "answer-length",
                "--format",
                ext,
            ])
            .args(["--store", &store_arg])
            .output()
            .unwrap();
        assert!(
            cli.status.success(),
            "{}",
            String::from_utf8_lossy(&cli.stderr)
        );
        assert_eq!(
            String::from_utf8(cli.stdout).unwrap().trim_end(),
            text.trim_end()
        );
    }

    // Save chart as PNG: exactly the chart's pixels, in the store's exports.
    h.set_size(egui::vec2(1280.0, 1600.0));
    h.run_steps(2);
    saved_png_of(&mut h, "Save chart as PNG", &store, "breakdown-", |app| {
        app.analysis().chart_rect()
    });
}
