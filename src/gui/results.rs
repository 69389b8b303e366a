//! Results: the selected runs against the paper and the reference notebook,
//! deltas coloured by sign, a bar chart of EM and F1, and exports through the
//! same code as `squadlab export`.

use super::app::SquadlabApp;
use crate::report::{
    comparison_rows, render, Format, ReferenceResults, Row, RowKind, TableOptions,
};
use crate::store::RunEntry;
use egui_plot::{Bar, BarChart, Legend, Plot};
use std::path::PathBuf;

pub struct ResultsView {
    pub group_seeds: bool,
    pub include_references: bool,
    /// Files written by the last exports.
    pub exported: Vec<PathBuf>,
    /// Where the bar chart was drawn, for saving it as PNG.
    pub(super) chart_rect: Option<egui::Rect>,
}

impl Default for ResultsView {
    fn default() -> Self {
        Self {
            group_seeds: true,
            include_references: true,
            exported: Vec::new(),
            chart_rect: None,
        }
    }
}

fn signed_color(ui: &egui::Ui, delta: f64) -> egui::Color32 {
    if delta >= 0.0 {
        egui::Color32::from_rgb(60, 170, 80)
    } else {
        ui.visuals().error_fg_color
    }
}

impl SquadlabApp {
    /// The comparison rows of the selected, scored runs.
    pub fn result_rows(&self) -> anyhow::Result<Vec<Row>> {
        let entries: Vec<RunEntry> = self
            .state
            .selected
            .iter()
            .filter_map(|id| self.runs.get(id))
            .map(|v| v.entry.clone())
            .filter(RunEntry::is_scored)
            .collect();
        comparison_rows(
            &entries,
            &ReferenceResults::builtin(),
            &TableOptions {
                group_seeds: self.results.group_seeds,
                include_references: self.results.include_references,
                baseline: None,
            },
        )
    }

    /// Writes the table as `format` under `<store>/exports/`, returning the file.
    pub fn export_table(&mut self, format: Format) -> anyhow::Result<PathBuf> {
        let rows = self.result_rows()?;
        let body = render(&rows, format)?;
        let ext = match format {
            Format::Markdown => "md",
            Format::Csv => "csv",
            Format::Latex => "tex",
            Format::Json => "json",
        };
        let path = self.export_path("comparison", ext);
        std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
        crate::fsutil::write_atomically(&path, body.as_bytes())?;
        self.results.exported.push(path.clone());
        Ok(path)
    }

    pub(super) fn results_view(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.results.include_references, "published rows");
            ui.checkbox(&mut self.results.group_seeds, "fold seeds into mean ± std");
            ui.separator();
            for (label, format) in [
                ("Export Markdown", Format::Markdown),
                ("Export CSV", Format::Csv),
                ("Export LaTeX", Format::Latex),
            ] {
                if ui.button(label).clicked() {
                    match self.export_table(format) {
                        Ok(p) => self.notify(format!("wrote {}", p.display())),
                        Err(e) => self.error(format!("export failed: {e:#}")),
                    }
                }
            }
            if ui.button("Save chart as PNG").clicked() {
                self.save_png(ui.ctx(), self.results.chart_rect, "chart");
            }
            if ui.button("Copy Markdown").clicked() {
                match self
                    .result_rows()
                    .and_then(|r| render(&r, Format::Markdown))
                {
                    Ok(text) => {
                        ui.ctx().copy_text(text);
                        self.notify("copied the table as Markdown");
                    }
                    Err(e) => self.error(format!("copy failed: {e:#}")),
                }
            }
        });
        let unscored: Vec<String> = self
            .state
            .selected
            .iter()
            .filter_map(|id| self.runs.get(id))
            .filter(|v| !v.entry.is_scored())
            .map(|v| v.label())
            .collect();
        if !unscored.is_empty() {
            ui.weak(format!(
                "Not scored yet, so not in the table: {}",
                unscored.join(", ")
            ));
        }
        let rows = match self.result_rows() {
            Ok(r) => r,
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("{e:#}"));
                return;
            }
        };
        egui::ScrollArea::both()
            .id_salt("results-table")
            .max_height(ui.available_height() * 0.5)
            .show(ui, |ui| results_table(ui, &rows));
        ui.separator();
        self.results.chart_rect = Some(bar_chart(ui, &rows));
    }
}

fn results_table(ui: &mut egui::Ui, rows: &[Row]) {
    egui::Grid::new("results")
        .striped(true)
        .num_columns(10)
        .show(ui, |ui| {
            for h in [
                "System",
                "Model",
                "Questions",
                "EM",
                "F1",
                "ΔEM",
                "ΔF1",
                "vs",
                "Train time",
                "Hardware",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for row in rows {
                let label = egui::RichText::new(&row.label);
                ui.label(if row.kind == RowKind::Reference {
                    label.italics()
                } else {
                    label.strong()
                })
                .on_hover_text(&row.source);
                ui.label(row.model.rsplit('/').next().unwrap_or(""));
                ui.label(row.eval_questions.map_or("-".into(), |q| q.to_string()));
                ui.monospace(row.exact_match.as_ref().map_or("-".into(), |s| s.show(2)));
                ui.monospace(row.f1.as_ref().map_or("-".into(), |s| s.show(2)));
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
        .y_axis_formatter(move |mark, _| {
            let i = mark.value.round();
            if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .show(ui, |plot_ui| {
            plot_ui.bar_chart(em);
            plot_ui.bar_chart(f1);
        })
        .response
        .rect
}
