//! The Sweeps view's table: one row per point, sortable by any column, the
//! best point and the points no different from it marked. Rows are laid out
//! only while on screen, so a sweep of hundreds of points stays quick.

use super::runs::Runs;
use squadlab_core::report::Stat;
use squadlab_core::store::{RunStatus, Shown};
use squadlab_core::sweep::table::{numeric, PointRow, VsBest};
use std::collections::HashMap;

/// A table column to sort by.
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    Axis(String),
    Status,
    ExactMatch,
    F1,
    Runtime,
}

const ROW_HEIGHT: f32 = 20.0;
const MARK_WIDTH: f32 = 48.0;
const AXIS_WIDTH: f32 = 110.0;

/// Column titles and widths after the mark column and the axes.
const COLUMNS: [(&str, f32); 4] = [
    ("status", 190.0),
    ("EM", 120.0),
    ("F1 (95% CI)", 240.0),
    ("train time", 100.0),
];

/// The sweep's points as a table whose headers sort it.
#[derive(Default)]
pub struct SweepTable {
    /// The column sorted by, and whether descending; None: by the first axis.
    pub sort: Option<(SortKey, bool)>,
}

impl SweepTable {
    /// The `shown` rows; `runs` gives the running runs' progress.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        runs: &Runs,
        rows: &[PointRow],
        varying: &[String],
        shown: &[bool],
        height: f32,
    ) {
        let mut order: Vec<usize> = (0..rows.len()).filter(|&i| shown[i]).collect();
        match (&self.sort, varying.first()) {
            (Some((key, descending)), _) => sort_rows(&mut order, rows, key, *descending),
            // Unsorted, points follow their first axis, numbers in numeric order.
            (None, Some(axis)) => sort_rows(&mut order, rows, &SortKey::Axis(axis.clone()), false),
            (None, None) => {}
        }
        if order.len() < rows.len() {
            ui.weak(format!(
                "{} of {} points inside the brushes",
                order.len(),
                rows.len()
            ));
        }
        let keys: Vec<(String, SortKey, f32)> = varying
            .iter()
            .map(|a| (a.clone(), SortKey::Axis(a.clone()), AXIS_WIDTH))
            .chain(
                [
                    SortKey::Status,
                    SortKey::ExactMatch,
                    SortKey::F1,
                    SortKey::Runtime,
                ]
                .into_iter()
                .zip(COLUMNS)
                .map(|(k, (t, w))| (t.to_string(), k, w)),
            )
            .collect();
        egui::ScrollArea::horizontal()
            .id_salt("sweep-table")
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.add_sized([MARK_WIDTH, ROW_HEIGHT], egui::Label::new(""));
                    for (title, key, width) in &keys {
                        self.sort_header(ui, title, key, *width);
                    }
                });
                let progress = progress_of(runs, rows, &order);
                egui::ScrollArea::vertical()
                    .id_salt("sweep-table-rows")
                    .max_height(height)
                    .auto_shrink([false, true])
                    .show_rows(ui, ROW_HEIGHT, order.len(), |ui, range| {
                        for &i in &order[range] {
                            ui.horizontal(|ui| table_row(ui, &rows[i], varying, &progress));
                        }
                    });
            });
    }

    fn sort_header(&mut self, ui: &mut egui::Ui, title: &str, key: &SortKey, width: f32) {
        let arrow = match &self.sort {
            Some((k, true)) if k == key => " (desc)",
            Some((k, false)) if k == key => " (asc)",
            _ => "",
        };
        let button = egui::Button::new(format!("{title}{arrow}"));
        if ui.add_sized([width, ROW_HEIGHT], button).clicked() {
            // Scores and times sort best-first; axis values in their order.
            self.sort = match &self.sort {
                Some((k, d)) if k == key => Some((key.clone(), !d)),
                _ => Some((key.clone(), !matches!(key, SortKey::Axis(_)))),
            };
        }
    }
}

/// Progress of the shown rows' running runs, as followed by the app.
fn progress_of(runs: &Runs, rows: &[PointRow], order: &[usize]) -> HashMap<String, f32> {
    order
        .iter()
        .flat_map(|&i| rows[i].runs.iter())
        .filter(|r| r.shown == Shown::Is(RunStatus::Running))
        .filter_map(|r| Some((r.id.clone(), runs.get(&r.id)?.progress()?)))
        .collect()
}

fn cell(ui: &mut egui::Ui, width: f32, text: impl Into<egui::WidgetText>) -> egui::Response {
    ui.add_sized([width, ROW_HEIGHT], egui::Label::new(text).truncate())
}

fn table_row(
    ui: &mut egui::Ui,
    row: &PointRow,
    varying: &[String],
    progress: &HashMap<String, f32>,
) {
    let mono = |s: String| egui::RichText::new(s).monospace();
    match &row.vs_best {
        VsBest::Best => {
            cell(
                ui,
                MARK_WIDTH,
                egui::RichText::new("best").color(egui::Color32::GOLD),
            )
            .on_hover_text("the highest mean F1");
        }
        VsBest::NotSignificant(why) => {
            cell(ui, MARK_WIDTH, "n.s.")
                .on_hover_text(format!("no different from the best: {why}"));
        }
        VsBest::Significant(why) => {
            cell(ui, MARK_WIDTH, egui::RichText::new("worse").weak()).on_hover_text(why);
        }
        VsBest::Untested(why) => {
            cell(ui, MARK_WIDTH, "").on_hover_text(why);
        }
    }
    for axis in varying {
        cell(
            ui,
            AXIS_WIDTH,
            mono(row.point.get(axis).cloned().unwrap_or_default()),
        );
    }
    let running: Vec<String> = row
        .runs
        .iter()
        .filter_map(|r| progress.get(&r.id).map(|p| format!("{:.0}%", p * 100.0)))
        .collect();
    let status = if running.is_empty() {
        row.status()
    } else {
        format!("{} ({})", row.status(), running.join(", "))
    };
    cell(ui, COLUMNS[0].1, status);
    let stat = |s: &Option<Stat>| s.as_ref().map_or("–".to_string(), |s| s.show(2));
    cell(ui, COLUMNS[1].1, mono(stat(&row.exact_match)));
    let f1 = match &row.f1 {
        Some(s) => match s.show_interval(2) {
            Some(ci) => format!("{} {ci}", s.show(2)),
            None => s.show(2),
        },
        None => "–".into(),
    };
    cell(ui, COLUMNS[2].1, mono(f1));
    let time = row
        .train_runtime
        .as_ref()
        .map_or("–".into(), |s| super::widgets::duration(s.mean));
    cell(ui, COLUMNS[3].1, mono(time));
}

/// Orders table rows by a column; rows without a value go last.
pub fn sort_rows(order: &mut [usize], rows: &[PointRow], key: &SortKey, descending: bool) {
    let value = |r: &PointRow| -> (Option<f64>, String) {
        match key {
            SortKey::Axis(a) => {
                let v = r.point.get(a).cloned().unwrap_or_default();
                (numeric(&v), v)
            }
            SortKey::Status => (None, r.status()),
            SortKey::ExactMatch => (r.exact_match.as_ref().map(|s| s.mean), String::new()),
            SortKey::F1 => (r.f1.as_ref().map(|s| s.mean), String::new()),
            SortKey::Runtime => (r.train_runtime.as_ref().map(|s| s.mean), String::new()),
        }
    };
    order.sort_by(|&a, &b| {
        let ((na, ta), (nb, tb)) = (value(&rows[a]), value(&rows[b]));
        let ord = match (na, nb) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => return std::cmp::Ordering::Less,
            (None, Some(_)) => return std::cmp::Ordering::Greater,
            (None, None) => ta.cmp(&tb),
        };
        if descending {
            ord.reverse()
        } else {
            ord
        }
    });
}
