//! Analysis: where the selected runs fail. The breakdowns of
//! `squadlab breakdown` (by question type, answer length or passage length)
//! as a bar chart with 95% intervals, the runs side by side and a star where
//! a run differs significantly from the first; under it, the same numbers
//! as a table. Clicking a bar or a cell opens the predictions browser on
//! that run's questions of the bucket. Exports as Markdown, CSV, LaTeX or
//! PNG, as the Results view does.

use super::analysis_chart::{breakdown_chart, chart_buckets, run_color, significant, Score};
use super::context::{AppContext, Request, View};
use super::widgets::export_buttons;
use crossbeam_channel::{bounded, Receiver};
use squadlab_core::report::significance::{show_p, BootstrapOptions};
use squadlab_core::report::{
    breakdown_runs, render_breakdown, run_label, Breakdown, Dimension, Format,
};
use std::path::PathBuf;
use std::sync::Arc;

/// What a breakdown was computed for: the dimension and the scored runs,
/// in selection order (the first is the one the others are tested against).
type Key = (Dimension, Vec<String>);

type Outcome = Result<Arc<Breakdown>, String>;

pub struct AnalysisView {
    pub dimension: Dimension,
    pub score: Score,
    /// The run the others are tested against; the first selected when
    /// unset or no longer among the scored selection.
    pub baseline: Option<String>,
    /// The last breakdown computed, for its key.
    done: Option<(Key, Outcome)>,
    computing: Option<(Key, Receiver<Outcome>)>,
    /// Files written by the last exports.
    pub exported: Vec<PathBuf>,
    /// Where the chart was drawn, for saving it as PNG.
    chart_rect: Option<egui::Rect>,
}

impl Default for AnalysisView {
    fn default() -> Self {
        Self {
            dimension: Dimension::QuestionType,
            score: Score::F1,
            baseline: None,
            done: None,
            computing: None,
            exported: Vec::new(),
            chart_rect: None,
        }
    }
}

impl AnalysisView {
    /// Where the chart was last drawn, in points: the region "Save chart as
    /// PNG" writes.
    pub fn chart_rect(&self) -> Option<egui::Rect> {
        self.chart_rect
    }

    /// The breakdown shown now, once computed.
    pub fn breakdown(&self) -> Option<&Breakdown> {
        match &self.done {
            Some((_, Ok(b))) => Some(b),
            _ => None,
        }
    }

    /// Why the breakdown could not be computed, if it could not.
    pub fn error(&self) -> Option<&str> {
        match &self.done {
            Some((_, Err(e))) => Some(e),
            _ => None,
        }
    }

    /// Forgets the breakdowns: runs scored again since are read again.
    pub fn clear(&mut self) {
        self.done = None;
        self.computing = None;
    }

    /// The scored runs among the selected, in selection order with the
    /// baseline first.
    fn key(&self, cx: &AppContext<'_>) -> Key {
        let mut runs: Vec<String> = cx
            .state
            .selected
            .iter()
            .filter(|id| cx.runs.get(id).is_some_and(|v| v.entry.is_scored()))
            .cloned()
            .collect();
        if let Some(i) = self
            .baseline
            .as_ref()
            .and_then(|b| runs.iter().position(|r| r == b))
        {
            let base = runs.remove(i);
            runs.insert(0, base);
        }
        (self.dimension, runs)
    }

    /// Starts computing the breakdown for `key` on a worker thread unless it
    /// is shown or on its way.
    fn want(&mut self, key: Key, cx: &AppContext<'_>) {
        let have = self.done.as_ref().is_some_and(|(k, _)| *k == key)
            || self.computing.as_ref().is_some_and(|(k, _)| *k == key);
        if have || key.1.is_empty() {
            return;
        }
        let dirs: Vec<PathBuf> = key
            .1
            .iter()
            .filter_map(|id| cx.runs.get(id).map(|v| v.entry.dir.clone()))
            .collect();
        let by = key.0;
        let (tx, rx) = bounded(1);
        std::thread::spawn(move || {
            let dirs: Vec<&std::path::Path> = dirs.iter().map(|d| d.as_path()).collect();
            let outcome = breakdown_runs(&dirs, by, BootstrapOptions::default())
                .map(Arc::new)
                .map_err(|e| format!("{e:#}"));
            let _ = tx.send(outcome);
        });
        self.computing = Some((key, rx));
    }

    /// Writes the breakdown shown as `format` under `<store>/exports/`.
    pub fn export_table(&mut self, cx: &AppContext<'_>, format: Format) -> anyhow::Result<PathBuf> {
        let b = self
            .breakdown()
            .ok_or_else(|| anyhow::anyhow!("no breakdown to export yet"))?;
        let body = render_breakdown(b, format)?;
        let path = cx.export_path(&format!("breakdown-{}", b.by), format.extension());
        std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
        squadlab_core::fsutil::write_atomically(&path, body.as_bytes())?;
        self.exported.push(path.clone());
        Ok(path)
    }

    fn toolbar(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        let runs = self.key(cx).1;
        ui.horizontal_wrapped(|ui| {
            if runs.len() > 1 {
                let label = |id: &str| cx.series_name(id);
                egui::ComboBox::from_id_salt("analysis-baseline")
                    .selected_text(format!("against {}", label(&runs[0])))
                    .show_ui(ui, |ui| {
                        for id in &runs {
                            let chosen = runs[0] == *id;
                            if ui.selectable_label(chosen, label(id)).clicked() {
                                self.baseline = Some(id.clone());
                            }
                        }
                    })
                    .response
                    .on_hover_text("the run the others are tested against");
                ui.separator();
            }
            for (d, label) in [
                (Dimension::QuestionType, "Question type"),
                (Dimension::AnswerLength, "Answer length"),
                (Dimension::ContextLength, "Passage length"),
            ] {
                ui.selectable_value(&mut self.dimension, d, label);
            }
            ui.separator();
            for s in [Score::F1, Score::ExactMatch] {
                ui.selectable_value(&mut self.score, s, s.name());
            }
            ui.separator();
            if let Some(format) = export_buttons(ui) {
                match self.export_table(cx, format) {
                    Ok(p) => cx.notify(format!("wrote {}", p.display())),
                    Err(e) => cx.error(format!("export failed: {e:#}")),
                }
            }
            if ui.button("Save chart as PNG").clicked() {
                cx.save_png(ui.ctx(), self.chart_rect, "breakdown");
            }
        });
    }
}

impl View for AnalysisView {
    fn poll(&mut self) {
        let Some((key, rx)) = &self.computing else {
            return;
        };
        if let Ok(outcome) = rx.try_recv() {
            self.done = Some((key.clone(), outcome));
            self.computing = None;
        }
    }

    fn is_waiting(&self) -> bool {
        self.computing.is_some()
    }

    fn settle_for_screenshot(&mut self, cx: &AppContext<'_>) -> bool {
        let key = self.key(cx);
        self.computing.is_none()
            && (key.1.is_empty() || self.done.as_ref().is_some_and(|(k, _)| *k == key))
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        self.toolbar(ui, cx);
        let key = self.key(cx);
        if key.1.is_empty() {
            ui.weak("Select one or more scored runs in the sidebar: the first is the one the others are tested against.");
            return;
        }
        self.want(key.clone(), cx);
        let shown = match &self.done {
            Some((k, outcome)) if *k == key => outcome.clone(),
            _ => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("scoring every question by bucket, with bootstrap intervals…");
                });
                return;
            }
        };
        let b = match shown {
            Ok(b) => b,
            Err(e) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("cannot break the runs down: {e}"),
                );
                return;
            }
        };
        let names: Vec<String> = b.runs.iter().map(|r| run_label(&b, r)).collect();
        if b.runs.len() > 1 {
            ui.weak(format!(
                "Bars: {} with 95% bootstrap intervals. *: the run differs from {} there \
                 (McNemar's p on EM below 0.05 or a ΔF1 interval without 0; each of the {} buckets \
                 tested alone, uncorrected). Click a bar to see its questions.",
                self.score.name(),
                names[0],
                chart_buckets(&b).len()
            ));
        } else {
            ui.weak(format!(
                "Bars: {} with 95% bootstrap intervals. Click a bar to see its questions.",
                self.score.name()
            ));
        }
        let height = (ui.available_height() * 0.55).max(220.0);
        let (rect, clicked) = breakdown_chart(ui, &b, &names, self.score, height);
        self.chart_rect = Some(rect);
        let mut open = clicked;
        ui.separator();
        egui::ScrollArea::both()
            .id_salt("analysis-table")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                if let Some(cell) = breakdown_table(ui, &b, &names) {
                    open = Some(cell);
                }
            });
        if let Some((run, bucket)) = open {
            // Opening a run's questions moves it to the end of the
            // selection; the comparison shown here keeps its base run.
            self.baseline = Some(b.runs[0].run_id.clone());
            cx.request(Request::ShowBucket {
                run: b.runs[run].run_id.clone(),
                dimension: b.dimension,
                bucket,
            });
        }
    }
}

/// The chart's numbers: per bucket, each run's EM and F1 with the F1
/// interval (a link to the bucket's questions), and each later run's ΔF1
/// against the first with McNemar's p. Returns the (run, bucket) clicked.
fn breakdown_table(ui: &mut egui::Ui, b: &Breakdown, names: &[String]) -> Option<(usize, String)> {
    let mut clicked = None;
    egui::Grid::new("analysis-grid")
        .striped(true)
        .spacing([14.0, 4.0])
        .show(ui, |ui| {
            ui.strong("bucket");
            for (j, name) in names.iter().enumerate() {
                ui.colored_label(run_color(j), egui::RichText::new(name).strong());
                if j > 0 {
                    ui.strong(format!("ΔF1 vs {}", names[0]));
                }
            }
            ui.end_row();
            for bucket in chart_buckets(b) {
                ui.label(bucket);
                for (j, run) in b.runs.iter().enumerate() {
                    match run.rows.iter().find(|r| r.bucket == bucket) {
                        Some(r) => {
                            let text = format!(
                                "{} q · EM {:.1} · F1 {:.1} [{:.1}, {:.1}]",
                                r.count, r.exact_match, r.f1, r.f1_interval[0], r.f1_interval[1]
                            );
                            if ui
                                .link(text)
                                .on_hover_text("show these questions")
                                .clicked()
                            {
                                clicked = Some((j, bucket.to_string()));
                            }
                        }
                        None => {
                            ui.weak("-");
                        }
                    }
                    if j > 0 {
                        delta_cell(ui, b, j, bucket);
                    }
                }
                ui.end_row();
            }
        });
    clicked
}

fn delta_cell(ui: &mut egui::Ui, b: &Breakdown, run: usize, bucket: &str) {
    let row = b
        .comparisons
        .iter()
        .filter(|c| c.run_id == b.runs[run].run_id)
        .flat_map(|c| &c.rows)
        .find(|r| r.bucket == bucket);
    let Some(r) = row else {
        ui.weak("-");
        return;
    };
    let d = &r.delta_f1;
    let text = format!(
        "{:+.1} [{:+.1}, {:+.1}] · p {}{}",
        d.delta,
        d.low,
        d.high,
        show_p(r.mcnemar.p_value),
        if significant(b, run, bucket) {
            " *"
        } else {
            ""
        }
    );
    if r.significant {
        ui.colored_label(run_color(run), egui::RichText::new(text).strong());
    } else {
        ui.weak(text);
    }
}
