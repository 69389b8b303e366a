//! Results: the selected runs against the paper and the reference notebook,
//! deltas coloured by sign, seed groups with their 95% intervals, each run
//! tested against a baseline run (paired, per question), a bar chart of EM
//! and F1, and exports through the same code as `squadlab export`.

use super::context::{AppContext, View};
use super::runs::Runs;
use super::widgets::{export_buttons, slot_label};
use crossbeam_channel::{bounded, Receiver};
use egui_plot::{Bar, BarChart, Legend, Plot};
use squadlab_core::report::significance::{show_p, PairedTests};
use squadlab_core::report::{
    comparison_rows, diff_runs, render, Format, ReferenceResults, Row, RowKind, Stat, TableOptions,
    SQUAD_V2,
};
use squadlab_core::store::RunEntry;
use std::collections::HashMap;
use std::path::PathBuf;

pub struct ResultsView {
    pub group_seeds: bool,
    pub include_references: bool,
    /// The run every other run row is tested against; the first run row when
    /// unset or no longer shown.
    pub baseline_run: Option<String>,
    /// Paired tests by (baseline, run), computed once on a worker thread.
    pub tests: HashMap<(String, String), PairTest>,
    /// Files written by the last exports.
    pub exported: Vec<PathBuf>,
    /// Where the bar chart was drawn, for saving it as PNG.
    chart_rect: Option<egui::Rect>,
}

/// A run row's paired tests against the baseline run.
pub enum PairTest {
    Running(Receiver<PairTest>),
    Tested(Box<PairedTests>),
    /// Not tested, and why: other questions, or a results file that cannot be read.
    Untested(String),
}

impl Default for ResultsView {
    fn default() -> Self {
        Self {
            group_seeds: true,
            include_references: true,
            baseline_run: None,
            tests: HashMap::new(),
            exported: Vec::new(),
            chart_rect: None,
        }
    }
}

/// The single run behind a run row (seed groups and published rows have none).
fn single_run(row: &Row) -> Option<&str> {
    match (row.kind, row.runs.as_slice()) {
        (RowKind::Run, [id]) => Some(id),
        _ => None,
    }
}

fn signed_color(ui: &egui::Ui, delta: f64) -> egui::Color32 {
    if delta >= 0.0 {
        egui::Color32::from_rgb(60, 170, 80)
    } else {
        ui.visuals().error_fg_color
    }
}

impl ResultsView {
    /// Where the bar chart was last drawn, in points: the region "Save chart
    /// as PNG" writes.
    pub fn chart_rect(&self) -> Option<egui::Rect> {
        self.chart_rect
    }

    /// The comparison rows of the selected, scored runs.
    pub fn rows(&self, runs: &Runs, selected: &[String]) -> anyhow::Result<Vec<Row>> {
        let entries: Vec<RunEntry> = selected
            .iter()
            .filter_map(|id| runs.get(id))
            .map(|v| v.entry.clone())
            .filter(RunEntry::is_scored)
            .collect();
        comparison_rows(
            &entries,
            &ReferenceResults::builtin(),
            &TableOptions {
                group_seeds: self.group_seeds,
                include_references: self.include_references,
                baseline: None,
            },
        )
    }

    /// Writes the table as `format` under `<store>/exports/`, returning the file.
    pub fn export_table(&mut self, cx: &AppContext<'_>, format: Format) -> anyhow::Result<PathBuf> {
        let rows = self.rows(cx.runs, &cx.state.selected)?;
        let body = render(&rows, format)?;
        let path = cx.export_path("comparison", format.extension());
        std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
        squadlab_core::fsutil::write_atomically(&path, body.as_bytes())?;
        self.exported.push(path.clone());
        Ok(path)
    }

    /// The baseline run among the rows: the chosen one, else the first run row.
    pub fn effective_baseline(&self, rows: &[Row]) -> Option<String> {
        let runs: Vec<&str> = rows.iter().filter_map(single_run).collect();
        self.baseline_run
            .as_deref()
            .filter(|id| runs.contains(id))
            .or(runs.first().copied())
            .map(String::from)
    }

    /// Starts the missing paired tests against `baseline` and collects the
    /// finished ones; true while any is still running.
    fn update_pair_tests(&mut self, runs: &Runs, rows: &[Row], baseline: &str) -> bool {
        for id in rows
            .iter()
            .filter_map(single_run)
            .filter(|id| *id != baseline)
        {
            let key = (baseline.to_string(), id.to_string());
            if self.tests.contains_key(&key) {
                continue;
            }
            let dirs = (
                runs.get(baseline).map(|v| v.entry.dir.clone()),
                runs.get(id).map(|v| v.entry.dir.clone()),
            );
            let (tx, rx) = bounded(1);
            std::thread::spawn(move || {
                let outcome = match dirs {
                    (Some(a), Some(b)) => match diff_runs(&a, &b, Default::default()) {
                        Ok(d) => match d.tests {
                            Some(t) => PairTest::Tested(Box::new(t)),
                            None => PairTest::Untested(d.untested.unwrap_or_default()),
                        },
                        Err(e) => PairTest::Untested(format!("{e:#}")),
                    },
                    _ => PairTest::Untested("the run is no longer in the store".into()),
                };
                let _ = tx.send(outcome);
            });
            self.tests.insert(key, PairTest::Running(rx));
        }
        let mut running = false;
        for test in self.tests.values_mut() {
            if let PairTest::Running(rx) = test {
                match rx.try_recv() {
                    Ok(done) => *test = done,
                    Err(crossbeam_channel::TryRecvError::Empty) => running = true,
                    Err(_) => *test = PairTest::Untested("the test stopped".into()),
                }
            }
        }
        running
    }

    /// Forgets the paired tests: a run scored again since is tested again.
    pub fn clear_tests(&mut self) {
        self.tests.clear();
    }
}

impl View for ResultsView {
    fn settle_for_screenshot(&mut self, _cx: &AppContext<'_>) -> bool {
        // The paired tests against the base run are in the picture.
        !self
            .tests
            .values()
            .any(|t| matches!(t, PairTest::Running(_)))
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.include_references, "published rows");
            ui.checkbox(&mut self.group_seeds, "fold seeds into mean ± std");
            ui.separator();
            if let Some(format) = export_buttons(ui) {
                match self.export_table(cx, format) {
                    Ok(p) => cx.notify(format!("wrote {}", p.display())),
                    Err(e) => cx.error(format!("export failed: {e:#}")),
                }
            }
            if ui.button("Save chart as PNG").clicked() {
                cx.save_png(ui.ctx(), self.chart_rect, "chart");
            }
            if ui.button("Copy Markdown").clicked() {
                match self
                    .rows(cx.runs, &cx.state.selected)
                    .and_then(|r| render(&r, Format::Markdown))
                {
                    Ok(text) => {
                        ui.ctx().copy_text(text);
                        cx.notify("copied the table as Markdown");
                    }
                    Err(e) => cx.error(format!("copy failed: {e:#}")),
                }
            }
        });
        let unscored: Vec<String> = cx
            .state
            .selected
            .iter()
            .filter_map(|id| cx.runs.get(id))
            .filter(|v| !v.entry.is_scored())
            .map(|v| v.label())
            .collect();
        if !unscored.is_empty() {
            ui.weak(format!(
                "Not scored yet, so not in the table: {}",
                unscored.join(", ")
            ));
        }
        let rows = match self.rows(cx.runs, &cx.state.selected) {
            Ok(r) => r,
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("{e:#}"));
                return;
            }
        };
        let baseline = self.effective_baseline(&rows);
        if let Some(base) = &baseline {
            if self.update_pair_tests(cx.runs, &rows, base) {
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(100));
            }
        }
        let mut chosen = baseline.clone();
        let tests = &self.tests;
        let lookup = |id: &str| {
            let base = baseline.as_deref()?;
            (base != id)
                .then(|| tests.get(&(base.to_string(), id.to_string())))
                .flatten()
        };
        egui::ScrollArea::both()
            .id_salt("results-table")
            .max_height(ui.available_height() * 0.5)
            .show(ui, |ui| results_table(ui, &rows, &mut chosen, &lookup));
        if chosen != baseline {
            self.baseline_run = chosen;
        }
        ui.separator();
        self.chart_rect = Some(bar_chart(ui, &rows));
    }
}

fn results_table<'t>(
    ui: &mut egui::Ui,
    rows: &[Row],
    baseline: &mut Option<String>,
    test_of: &dyn Fn(&str) -> Option<&'t PairTest>,
) {
    // SQuAD 2.0 rows add EM/F1 on the answerable and unanswerable questions.
    let any_v2 = rows.iter().any(|r| r.squad_version == SQUAD_V2);
    egui::Grid::new("results")
        .striped(true)
        .num_columns(if any_v2 { 16 } else { 14 })
        .show(ui, |ui| {
            let mut headers = vec![
                "Base",
                "System",
                "Model",
                "Questions",
                "n",
                "EM",
                "F1",
                "F1 95% CI",
            ];
            if any_v2 {
                headers.extend(["HasAns EM / F1", "NoAns EM / F1"]);
            }
            headers.extend([
                "ΔF1 vs base [95% CI], McNemar p",
                "ΔEM",
                "ΔF1",
                "vs",
                "Train time",
                "Hardware",
            ]);
            for h in headers {
                ui.strong(h);
            }
            ui.end_row();
            for row in rows {
                match single_run(row) {
                    Some(id) => {
                        let is_base = baseline.as_deref() == Some(id);
                        if ui
                            .radio(is_base, "")
                            .on_hover_text("test every other run against this one")
                            .clicked()
                        {
                            *baseline = Some(id.to_string());
                        }
                    }
                    None => {
                        ui.label("");
                    }
                }
                let label = egui::RichText::new(&row.label);
                ui.label(if row.kind == RowKind::Reference {
                    label.italics()
                } else {
                    label.strong()
                })
                .on_hover_text(&row.source);
                let model = row.model.rsplit('/').next().unwrap_or("");
                let version = if row.squad_version == SQUAD_V2 {
                    ", SQuAD 2.0"
                } else {
                    ""
                };
                match row.family {
                    Some(f) => ui.label(format!("{model} ({f}{version})")),
                    None => ui.label(format!("{model}{version}")),
                };
                ui.label(row.eval_questions.map_or("-".into(), |q| q.to_string()));
                ui.label(row.runs_n().to_string());
                ui.monospace(row.exact_match.as_ref().map_or("-".into(), |s| s.show(2)));
                ui.monospace(row.f1.as_ref().map_or("-".into(), |s| s.show(2)));
                ui.monospace(
                    row.f1
                        .as_ref()
                        .and_then(|s| s.show_interval(2))
                        .unwrap_or_else(|| "-".into()),
                )
                .on_hover_text("95% Student-t interval on the mean over the seeds");
                if any_v2 {
                    let pair = |em: &Option<Stat>, f1: &Option<Stat>| match (em, f1) {
                        (Some(em), Some(f1)) => format!("{} / {}", em.show(2), f1.show(2)),
                        _ => "-".into(),
                    };
                    ui.monospace(pair(&row.has_ans_exact, &row.has_ans_f1))
                        .on_hover_text("on the questions that have an answer");
                    ui.monospace(pair(&row.no_ans_exact, &row.no_ans_f1))
                        .on_hover_text(
                            "on the questions without an answer: right when it answers nothing",
                        );
                }
                pair_test_cell(ui, row, baseline.as_deref(), test_of);
                for delta in [row.delta_exact_match, row.delta_f1] {
                    match delta {
                        Some(d) => ui.colored_label(
                            signed_color(ui, d),
                            egui::RichText::new(format!("{d:+.2}")).monospace(),
                        ),
                        None => ui.label("-"),
                    };
                }
                ui.label(row.baseline.as_deref().unwrap_or("-"));
                ui.label(
                    row.train_runtime
                        .as_ref()
                        .map_or("-".into(), |s| super::widgets::duration(s.mean)),
                );
                ui.label(&row.hardware);
                ui.end_row();
            }
        });
}

/// EM and F1 as horizontal bars, one pair per row, labelled on the y axis.
fn bar_chart(ui: &mut egui::Ui, rows: &[Row]) -> egui::Rect {
    let scored: Vec<&Row> = rows
        .iter()
        .filter(|r| r.exact_match.is_some() || r.f1.is_some())
        .collect();
    // The first row at the top.
    let slot = |i: usize| (scored.len() - 1 - i) as f64;
    let bars = |pick: fn(&Row) -> Option<f64>, offset: f64| -> Vec<Bar> {
        scored
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                Some(
                    Bar::new(slot(i) + offset, pick(r)?)
                        .width(0.38)
                        .name(&r.label),
                )
            })
            .collect()
    };
    let em =
        BarChart::new("EM", bars(|r| r.exact_match.as_ref().map(|s| s.mean), 0.2)).horizontal();
    let f1 = BarChart::new("F1", bars(|r| r.f1.as_ref().map(|s| s.mean), -0.2)).horizontal();
    let labels: Vec<String> = scored.iter().rev().map(|r| r.label.clone()).collect();
    Plot::new("results-bars")
        .legend(Legend::default())
        .include_x(0.0)
        .include_x(100.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .y_axis_min_width(260.0)
        .y_grid_spacer(egui_plot::uniform_grid_spacer(|_| [1.0, 1.0, 1.0]))
        .y_axis_formatter(move |mark, _| slot_label(&labels, mark))
        .show(ui, |plot_ui| {
            plot_ui.bar_chart(em);
            plot_ui.bar_chart(f1);
        })
        .response
        .rect
}

/// The row's paired test against the baseline run: ΔF1 with its bootstrap
/// interval and McNemar's p, marked "n.s." when neither finds a difference.
fn pair_test_cell<'t>(
    ui: &mut egui::Ui,
    row: &Row,
    baseline: Option<&str>,
    test_of: &dyn Fn(&str) -> Option<&'t PairTest>,
) {
    let Some(id) = single_run(row) else {
        ui.label("");
        return;
    };
    if baseline == Some(id) {
        ui.weak("base run");
        return;
    }
    match test_of(id) {
        Some(PairTest::Tested(t)) => {
            ui.horizontal(|ui| {
                // The mark first, so a narrow window still shows it.
                if !t.significant {
                    ui.colored_label(ui.visuals().warn_fg_color, "n.s.")
                        .on_hover_text(&t.verdict);
                }
                let i = &t.delta_f1;
                ui.monospace(format!(
                    "{:+.2} [{:+.2}, {:+.2}] p {}",
                    i.delta,
                    i.low,
                    i.high,
                    show_p(t.mcnemar.p_value)
                ))
                .on_hover_text(&t.verdict);
            });
        }
        Some(PairTest::Untested(why)) => {
            ui.weak("not paired").on_hover_text(why);
        }
        Some(PairTest::Running(_)) => {
            ui.spinner();
        }
        None => {
            ui.label("");
        }
    }
}
