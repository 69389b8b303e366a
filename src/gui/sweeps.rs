//! The Sweeps view: a study at a glance. The sweep's points as a sortable
//! table (seeds folded, the best marked, the points no different from it
//! marked too), a parallel-coordinates plot whose brushes filter the table,
//! F1 by value on each axis, and launching a sweep file into the store's queue.

use super::app::SquadlabApp;
use super::browse::{Browser, Purpose};
use crate::report::Format;
use crate::store::{RunEntry, Store};
use crate::sweep::table::{axes, axis_effects, point_rows, test_against_best, PointRow, VsBest};
use crossbeam_channel::{bounded, Receiver};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A table column to sort by.
#[derive(Clone, Debug, PartialEq)]
pub enum SortKey {
    Axis(String),
    Status,
    ExactMatch,
    F1,
    Runtime,
}

type Verdicts = HashMap<BTreeMap<String, String>, VsBest>;

#[derive(Default)]
pub struct SweepsView {
    /// The sweep shown.
    pub selected: Option<String>,
    /// A sweep file opened to start, and what starting it would do.
    pub file: Option<PathBuf>,
    pub preview: Option<Result<crate::sweep::Preview, String>>,
    pub sort: Option<(SortKey, bool)>,
    /// Brushed ranges per plot axis (swept fields and `f1`), in the axis's
    /// 0–1 plot units; a run passes when it lies inside every one.
    pub brushes: BTreeMap<String, (f64, f64)>,
    pub trials_to_add: usize,
    /// The tests against the best, for the finished runs they were run on.
    tests: Option<(Vec<(String, u64)>, Verdicts)>,
    testing: Option<(Vec<(String, u64)>, Receiver<Verdicts>)>,
    pub(super) plot: super::parallel::PlotState,
}

impl SweepsView {
    /// Reads a sweep file and previews its expansion.
    pub fn open_file(&mut self, store: &Store, path: PathBuf) {
        self.preview = Some(crate::sweep::preview(store, &path).map_err(|e| format!("{e:#}")));
        self.file = Some(path);
    }

    /// Where the value at `y` (0–1) of the plot's axis `index` was drawn
    /// last frame (axes: the swept fields in name order, then F1).
    pub fn plot_screen_pos(&self, index: usize, y: f64) -> Option<egui::Pos2> {
        self.plot.screen_pos(index, y)
    }

    /// Whether the tests against the best are still running.
    pub fn is_testing(&self) -> bool {
        self.testing.is_some()
    }
}

/// The finished runs behind a table, as (id, F1 bits): the tests rerun when it changes.
fn finished_signature(rows: &[PointRow]) -> Vec<(String, u64)> {
    rows.iter()
        .flat_map(|r| r.runs.iter())
        .filter(|r| r.is_finished())
        .map(|r| (r.id.clone(), r.f1.unwrap_or_default().to_bits()))
        .collect()
}

impl SquadlabApp {
    /// The shown sweep's runs, as the store listing has them now.
    fn sweep_entries(&self, id: &str) -> Vec<RunEntry> {
        self.runs
            .views
            .iter()
            .filter(|v| {
                v.entry
                    .record
                    .as_ref()
                    .and_then(|r| r.sweep.as_ref())
                    .is_some_and(|s| s.id == id)
            })
            .map(|v| {
                let mut e = v.entry.clone();
                // The listing reads no log tail; a followed run knows its step.
                e.last_step = v.follower.series.last.clone();
                e
            })
            .collect()
    }

    /// The shown sweep's points with the latest tests against the best,
    /// starting the tests in the background when the finished runs changed.
    pub fn sweep_rows(&mut self) -> Vec<PointRow> {
        let Some(id) = self.sweeps.selected.clone() else {
            return Vec::new();
        };
        let mut rows = point_rows(&self.sweep_entries(&id));
        let signature = finished_signature(&rows);
        let sv = &mut self.sweeps;
        if let Some((sig, rx)) = &sv.testing {
            if let Ok(verdicts) = rx.try_recv() {
                sv.tests = Some((sig.clone(), verdicts));
                sv.testing = None;
            }
        }
        let current = sv.tests.as_ref().is_some_and(|(s, _)| *s == signature);
        let started = sv.testing.as_ref().is_some_and(|(s, _)| *s == signature);
        if !current && !started && !signature.is_empty() {
            let mut to_test = rows.clone();
            let (tx, rx) = bounded(1);
            std::thread::spawn(move || {
                test_against_best(&mut to_test);
                let verdicts = to_test.into_iter().map(|r| (r.point, r.vs_best)).collect();
                let _ = tx.send(verdicts);
            });
            sv.testing = Some((signature.clone(), rx));
        }
        if let Some((sig, verdicts)) = &sv.tests {
            if *sig == signature {
                for row in rows.iter_mut().filter(|r| !r.is_best()) {
                    if let Some(v) = verdicts.get(&row.point) {
                        row.vs_best = v.clone();
                    }
                }
            }
        }
        rows
    }

    pub(super) fn sweeps_view(&mut self, ui: &mut egui::Ui) {
        let ids = crate::sweep::list(&self.runs.store).unwrap_or_default();
        if self
            .sweeps
            .selected
            .as_ref()
            .is_none_or(|s| !ids.contains(s))
        {
            self.sweeps.selected = ids.last().cloned();
        }
        self.sweep_launcher(ui, &ids);
        ui.separator();
        let Some(id) = self.sweeps.selected.clone() else {
            ui.weak("No sweeps in this store yet: open a sweep file above (experiments/sweeps/ has examples).");
            return;
        };
        let rows = self.sweep_rows();
        let (varying, fixed) = axes(&rows);
        self.sweep_summary(ui, &id, &rows, &fixed);
        let shown = super::parallel::passing(&rows, &varying, &self.sweeps.brushes);
        ui.horizontal(|ui| {
            ui.weak("Drag along an axis to brush a range; the table keeps the points with a run inside every brush.");
            if !self.sweeps.brushes.is_empty() && ui.button("Clear brushes").clicked() {
                self.sweeps.brushes.clear();
            }
        });
        let height = (ui.available_height() * 0.4).clamp(180.0, 360.0);
        self.parallel_plot(ui, &rows, &varying, height);
        egui::ScrollArea::vertical()
            .id_salt("sweep-lower")
            .show(ui, |ui| {
                self.sweep_table(ui, &rows, &varying, &shown);
                ui.separator();
                sweep_effects(ui, &rows, &varying);
            });
    }

    fn sweep_launcher(&mut self, ui: &mut egui::Ui, ids: &[String]) {
        ui.horizontal(|ui| {
            ui.label("Sweep");
            egui::ComboBox::from_id_salt("sweep")
                .selected_text(self.sweeps.selected.clone().unwrap_or_else(|| "none".into()))
                .show_ui(ui, |ui| {
                    for id in ids {
                        ui.selectable_value(&mut self.sweeps.selected, Some(id.clone()), id);
                    }
                });
            if ui.button("Open sweep file…").clicked() {
                self.browser = Some(Browser::file(
                    Purpose::SweepFile,
                    Path::new("experiments/sweeps"),
                ));
            }
            ui.checkbox(&mut self.state.train_store_queue, "train queued runs here")
                .on_hover_text("This app takes the store's queued runs, one per device, as `squadlab worker` does");
        });
        let Some(file) = self.sweeps.file.clone() else {
            return;
        };
        ui.horizontal(|ui| {
            ui.monospace(file.display().to_string());
            match &self.sweeps.preview {
                Some(Ok(p)) => {
                    ui.label(format!(
                        "sweep {}: {} runs, {} new{}{}",
                        p.sweep,
                        p.points,
                        p.new,
                        if p.existing > 0 {
                            format!(", {} already in the store", p.existing)
                        } else {
                            String::new()
                        },
                        if p.over_cap > 0 {
                            format!(", {} over run_cap", p.over_cap)
                        } else {
                            String::new()
                        },
                    ));
                    if ui
                        .add_enabled(p.new > 0, egui::Button::new("Start sweep"))
                        .clicked()
                    {
                        self.start_sweep_file(&file);
                    }
                }
                Some(Err(e)) => {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                None => {}
            }
        });
    }

    /// Queues the sweep file's new points and shows the sweep.
    pub fn start_sweep_file(&mut self, file: &Path) {
        match crate::sweep::start(&self.runs.store, file) {
            Ok(x) => {
                self.notify(format!(
                    "sweep {}: queued {} run(s){}",
                    x.sweep,
                    x.queued.len(),
                    if self.state.train_store_queue {
                        ""
                    } else {
                        "; tick \"train queued runs here\" or start `squadlab worker`"
                    }
                ));
                self.sweeps.selected = Some(x.sweep);
                self.sweeps.open_file(&self.runs.store, file.to_path_buf());
                self.runs.refresh(&self.state.selected, true);
            }
            Err(e) => self.error(format!("cannot start the sweep: {e:#}")),
        }
    }

    fn sweep_summary(
        &mut self,
        ui: &mut egui::Ui,
        id: &str,
        rows: &[PointRow],
        fixed: &[(String, String)],
    ) {
        let runs: Vec<_> = rows.iter().flat_map(|r| r.runs.iter()).collect();
        let finished = runs.iter().filter(|r| r.is_finished()).count();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &runs {
            *counts.entry(r.shown.as_str()).or_default() += 1;
        }
        ui.horizontal_wrapped(|ui| {
            ui.strong(id);
            ui.label(format!(
                "{} points, {} runs, {finished} finished",
                rows.len(),
                runs.len()
            ));
            ui.weak(
                counts
                    .iter()
                    .map(|(s, n)| format!("{s} {n}"))
                    .collect::<Vec<_>>()
                    .join(" · "),
            );
            if !fixed.is_empty() {
                ui.weak(format!(
                    "fixed: {}",
                    fixed
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if self.sweeps.is_testing() {
                ui.spinner();
                ui.weak("testing against the best…");
            }
            for (label, format) in [
                ("Export Markdown", Format::Markdown),
                ("Export CSV", Format::Csv),
                ("Export LaTeX", Format::Latex),
            ] {
                if ui.button(label).clicked() {
                    match self.export_sweep(id, format) {
                        Ok(p) => self.notify(format!("wrote {}", p.display())),
                        Err(e) => self.error(format!("export failed: {e:#}")),
                    }
                }
            }
            let random =
                crate::sweep::load(&self.runs.store, id).is_ok_and(|s| !s.random.is_empty());
            if random {
                ui.separator();
                ui.add(
                    egui::DragValue::new(&mut self.sweeps.trials_to_add)
                        .range(1..=1000)
                        .prefix("trials: "),
                );
                if ui.button("Add trials").clicked() {
                    let n = self.sweeps.trials_to_add.max(1);
                    match crate::sweep::add(&self.runs.store, id, n) {
                        Ok(x) => {
                            self.notify(format!(
                                "sweep {id}: queued {} more run(s)",
                                x.queued.len()
                            ));
                            self.runs.refresh(&self.state.selected, true);
                        }
                        Err(e) => self.error(format!("cannot add trials: {e:#}")),
                    }
                }
            }
        });
    }

    /// The sweep's comparison table (`squadlab export sweep:ID`'s rows) under
    /// `<store>/exports/`.
    pub fn export_sweep(&mut self, id: &str, format: Format) -> anyhow::Result<PathBuf> {
        let finished: Vec<RunEntry> = crate::sweep::runs(&self.runs.store, id)?
            .into_iter()
            .filter(|e| e.shown == crate::store::Shown::Is(crate::store::RunStatus::Finished))
            .collect();
        let refs = crate::report::ReferenceResults::builtin();
        let rows = crate::report::comparison_rows(
            &finished,
            &refs,
            &crate::report::TableOptions {
                group_seeds: true,
                include_references: true,
                baseline: None,
            },
        )?;
        let body = crate::report::render(&rows, format)?;
        let ext = match format {
            Format::Markdown => "md",
            Format::Csv => "csv",
            Format::Latex => "tex",
            Format::Json => "json",
        };
        let path = self.export_path(&format!("sweep-{id}"), ext);
        std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
        crate::fsutil::write_atomically(&path, body.as_bytes())?;
        Ok(path)
    }

    fn sweep_table(
        &mut self,
        ui: &mut egui::Ui,
        rows: &[PointRow],
        varying: &[String],
        shown: &[bool],
    ) {
        let mut order: Vec<usize> = (0..rows.len()).filter(|&i| shown[i]).collect();
        if let Some((key, descending)) = &self.sweeps.sort {
            sort_rows(&mut order, rows, key, *descending);
        }
        if order.len() < rows.len() {
            ui.weak(format!(
                "{} of {} points inside the brushes",
                order.len(),
                rows.len()
            ));
        }
        let mut columns: Vec<(String, SortKey)> = varying
            .iter()
            .map(|a| (a.clone(), SortKey::Axis(a.clone())))
            .collect();
        columns.extend([
            ("status".to_string(), SortKey::Status),
            ("EM".to_string(), SortKey::ExactMatch),
            ("F1 (95% CI)".to_string(), SortKey::F1),
            ("train time".to_string(), SortKey::Runtime),
        ]);
        let progress: HashMap<String, Option<f32>> = rows
            .iter()
            .flat_map(|r| r.runs.iter())
            .map(|r| {
                (
                    r.id.clone(),
                    self.runs.get(&r.id).and_then(|v| v.progress()),
                )
            })
            .collect();
        egui::ScrollArea::horizontal()
            .id_salt("sweep-table")
            .show(ui, |ui| {
                egui::Grid::new("sweep-table-grid")
                    .striped(true)
                    .num_columns(columns.len() + 1)
                    .show(ui, |ui| {
                        ui.label("");
                        for (title, key) in &columns {
                            let arrow = match &self.sweeps.sort {
                                Some((k, true)) if k == key => " (desc)",
                                Some((k, false)) if k == key => " (asc)",
                                _ => "",
                            };
                            if ui.button(format!("{title}{arrow}")).clicked() {
                                self.sweeps.sort = match &self.sweeps.sort {
                                    Some((k, d)) if k == key => Some((key.clone(), !d)),
                                    _ => Some((key.clone(), !matches!(key, SortKey::Axis(_)))),
                                };
                            }
                        }
                        ui.end_row();
                        for &i in &order {
                            let row = &rows[i];
                            match &row.vs_best {
                                VsBest::Best => {
                                    ui.colored_label(egui::Color32::GOLD, "best");
                                }
                                VsBest::NotSignificant(why) => {
                                    ui.label("n.s.").on_hover_text(format!(
                                        "no different from the best: {why}"
                                    ));
                                }
                                VsBest::Significant(why) => {
                                    ui.weak("worse").on_hover_text(why);
                                }
                                VsBest::Untested(why) => {
                                    ui.weak("").on_hover_text(why);
                                }
                            }
                            for axis in varying {
                                ui.monospace(row.point.get(axis).map_or("", String::as_str));
                            }
                            let running: Vec<String> = row
                                .runs
                                .iter()
                                .filter_map(|r| {
                                    progress
                                        .get(&r.id)
                                        .copied()
                                        .flatten()
                                        .map(|p| format!("{:.0}%", p * 100.0))
                                })
                                .collect();
                            let status = if running.is_empty() {
                                row.status()
                            } else {
                                format!("{} ({})", row.status(), running.join(", "))
                            };
                            ui.label(status);
                            let stat = |s: &Option<crate::report::Stat>| {
                                s.as_ref().map_or("–".to_string(), |s| s.show(2))
                            };
                            ui.monospace(stat(&row.exact_match));
                            let f1 = match &row.f1 {
                                Some(s) => match s.show_interval(2) {
                                    Some(ci) => format!("{} {ci}", s.show(2)),
                                    None => s.show(2),
                                },
                                None => "–".into(),
                            };
                            ui.monospace(f1);
                            ui.monospace(
                                row.train_runtime
                                    .as_ref()
                                    .map_or("–".into(), |s| super::widgets::duration(s.mean)),
                            );
                            ui.end_row();
                        }
                    });
            });
    }
}

/// Orders table rows by a column; rows without a value go last.
pub fn sort_rows(order: &mut [usize], rows: &[PointRow], key: &SortKey, descending: bool) {
    use crate::sweep::table::numeric;
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

/// F1 by value on each axis, over the finished runs with that value.
fn sweep_effects(ui: &mut egui::Ui, rows: &[PointRow], varying: &[String]) {
    ui.strong("F1 by axis value (mean ± sd over runs)");
    for effect in axis_effects(rows, varying) {
        egui::CollapsingHeader::new(&effect.axis)
            .default_open(true)
            .show(ui, |ui| {
                let best = effect
                    .values
                    .iter()
                    .map(|(_, s)| s.mean)
                    .fold(f64::MIN, f64::max);
                egui::Grid::new(("effect", &effect.axis))
                    .num_columns(3)
                    .show(ui, |ui| {
                        for (value, stat) in &effect.values {
                            ui.monospace(value);
                            ui.monospace(format!("{} (n={})", stat.show(2), stat.n));
                            // A bar, scaled to the best value's mean.
                            let width = 120.0 * (stat.mean / best.max(1e-9)).clamp(0.0, 1.0) as f32;
                            let (rect, _) = ui
                                .allocate_exact_size(egui::vec2(120.0, 10.0), egui::Sense::hover());
                            let bar = egui::Rect::from_min_size(
                                rect.min,
                                egui::vec2(width, rect.height()),
                            );
                            ui.painter()
                                .rect_filled(bar, 2.0, ui.visuals().selection.bg_fill);
                            ui.end_row();
                        }
                    });
            });
    }
}
