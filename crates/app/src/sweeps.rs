//! The Sweeps view: a study at a glance. The sweep's points as a sortable
//! table (seeds folded, the best marked, the points no different from it
//! marked too), a parallel-coordinates plot whose brushes filter the table,
//! F1 by value on each axis, and launching a sweep file into the store's queue.

use super::browse::{Browser, Purpose};
use super::context::{AppContext, Request, View};
use super::parallel::PlotState;
use super::runs::Runs;
pub use super::sweep_table::SortKey;
use super::sweep_table::SweepTable;
use crossbeam_channel::{bounded, Receiver};
use squadlab_core::report::Format;
use squadlab_core::store::{RunEntry, Store};
use squadlab_core::sweep::table::{
    axes, axis_effects, point_rows, test_against_best, PointRow, VsBest,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Room for the table's header and brush note.
const ROW_GAP: f32 = 24.0;

type Verdicts = HashMap<BTreeMap<String, String>, VsBest>;
/// The finished runs a table was built from: (id, F1 bits).
type Finished = Vec<(String, u64)>;

#[derive(Default)]
pub struct SweepsView {
    /// The sweep shown.
    pub selected: Option<String>,
    /// A sweep file opened to start, and what starting it would do.
    pub file: Option<PathBuf>,
    pub preview: Option<Result<squadlab_core::sweep::Preview, String>>,
    table: SweepTable,
    /// Brushed ranges per plot axis (swept fields and `f1`), in the axis's
    /// 0–1 plot units; a run passes when it lies inside every one.
    pub brushes: BTreeMap<String, (f64, f64)>,
    pub trials_to_add: usize,
    /// The tests against the best, for the finished runs they were run on.
    tests: Option<(Finished, Verdicts)>,
    testing: Option<(Finished, Receiver<Verdicts>)>,
    plot: PlotState,
    /// The points as last built, and a hash of the runs they were built from:
    /// rebuilt only when a run changes, not every frame.
    rows: Option<(u64, Vec<PointRow>)>,
    /// The store's sweeps (id, has random axes), read again every few seconds.
    listing: Option<(std::time::Instant, Vec<(String, bool)>)>,
}

impl SweepsView {
    /// Reads a sweep file and previews its expansion.
    pub fn open_file(&mut self, store: &Store, path: PathBuf) {
        self.preview =
            Some(squadlab_core::sweep::preview(store, &path).map_err(|e| format!("{e:#}")));
        self.file = Some(path);
    }

    /// The store's sweeps and whether each has random axes; read from disk
    /// at most every 2 s.
    pub fn listing(&mut self, store: &Store) -> Vec<(String, bool)> {
        let stale = self
            .listing
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() > std::time::Duration::from_secs(2));
        if stale {
            let ids = squadlab_core::sweep::list(store).unwrap_or_default();
            let found = ids
                .into_iter()
                .map(|id| {
                    let random =
                        squadlab_core::sweep::load(store, &id).is_ok_and(|s| !s.random.is_empty());
                    (id, random)
                })
                .collect();
            self.listing = Some((std::time::Instant::now(), found));
        }
        self.listing
            .as_ref()
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
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

/// A hash of what the sweep's rows are built from: each run's id, status,
/// scores and last step.
fn runs_hash(runs: &Runs, sweep: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sweep.hash(&mut h);
    for v in &runs.views {
        let Some(r) = v.entry.record.as_ref() else {
            continue;
        };
        if r.sweep.as_ref().is_none_or(|s| s.id != sweep) {
            continue;
        }
        v.entry.id.hash(&mut h);
        v.entry.shown.as_str().hash(&mut h);
        let o = &r.outcome;
        for x in [o.f1, o.exact_match, o.train_runtime] {
            x.map(f64::to_bits).hash(&mut h);
        }
        o.global_step.hash(&mut h);
        v.follower.series.last.as_ref().map(|s| s.step).hash(&mut h);
    }
    h.finish()
}

/// The finished runs behind a table, as (id, F1 bits): the tests rerun when it changes.
fn finished_signature(rows: &[PointRow]) -> Finished {
    rows.iter()
        .flat_map(|r| r.runs.iter())
        .filter(|r| r.is_finished())
        .map(|r| (r.id.clone(), r.f1.unwrap_or_default().to_bits()))
        .collect()
}

/// The shown sweep's runs, as the store listing has them now.
fn sweep_entries(runs: &Runs, id: &str) -> Vec<RunEntry> {
    runs.views
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

impl SweepsView {
    /// The shown sweep's points with the latest tests against the best,
    /// starting the tests in the background when the finished runs changed.
    pub fn rows(&mut self, runs: &Runs) -> Vec<PointRow> {
        let Some(id) = self.selected.clone() else {
            return Vec::new();
        };
        let state = runs_hash(runs, &id);
        let mut rows = match &self.rows {
            Some((h, rows)) if *h == state => rows.clone(),
            _ => {
                let rows = point_rows(&sweep_entries(runs, &id));
                self.rows = Some((state, rows.clone()));
                rows
            }
        };
        let signature = finished_signature(&rows);
        let sv = &mut *self;
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
}

impl View for SweepsView {
    fn is_waiting(&self) -> bool {
        self.is_testing()
    }

    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        let listing = self.listing(&cx.runs.store);
        let ids: Vec<String> = listing.iter().map(|(id, _)| id.clone()).collect();
        if self.selected.as_ref().is_none_or(|s| !ids.contains(s)) {
            self.selected = ids.last().cloned();
        }
        self.sweep_launcher(ui, cx, &ids);
        ui.separator();
        let Some(id) = self.selected.clone() else {
            ui.weak("No sweeps in this store yet: open a sweep file above (experiments/sweeps/ has examples).");
            return;
        };
        let rows = self.rows(cx.runs);
        let (varying, fixed) = axes(&rows);
        let random = listing.iter().any(|(s, r)| *s == id && *r);
        self.sweep_summary(ui, cx, &id, &rows, &fixed, random);
        let rows_hash = self.rows.as_ref().map_or(0, |(h, _)| *h);
        self.plot.update(rows_hash, &rows, &varying);
        let shown = self.plot.passing(rows.len(), &self.brushes);
        ui.horizontal(|ui| {
            ui.weak("Drag along an axis to brush a range; the table keeps the points with a run inside every brush.");
            if !self.brushes.is_empty() && ui.button("Clear brushes").clicked() {
                self.brushes.clear();
            }
        });
        let height = (ui.available_height() * 0.4).clamp(180.0, 360.0);
        self.plot.show(ui, &mut self.brushes, height);
        let table_height = (ui.available_height() * 0.6 - 2.0 * ROW_GAP).max(80.0);
        self.table
            .show(ui, cx.runs, &rows, &varying, &shown, table_height);
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("sweep-effects")
            .show(ui, |ui| sweep_effects(ui, &rows, &varying));
    }
}

impl SweepsView {
    fn sweep_launcher(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>, ids: &[String]) {
        ui.horizontal(|ui| {
            ui.label("Sweep");
            egui::ComboBox::from_id_salt("sweep")
                .selected_text(self.selected.clone().unwrap_or_else(|| "none".into()))
                .show_ui(ui, |ui| {
                    for id in ids {
                        ui.selectable_value(&mut self.selected, Some(id.clone()), id);
                    }
                });
            if ui.button("Open sweep file…").clicked() {
                cx.request(Request::Browse(Box::new(Browser::file(
                    Purpose::SweepFile,
                    Path::new("experiments/sweeps"),
                ))));
            }
            ui.checkbox(&mut cx.state.train_store_queue, "train queued runs here")
                .on_hover_text("This app takes the store's queued runs, one per device, as `squadlab worker` does");
        });
        let Some(file) = self.file.clone() else {
            return;
        };
        ui.horizontal(|ui| {
            ui.monospace(file.display().to_string());
            match &self.preview {
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
                        self.start_sweep_file(cx, &file);
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
    pub fn start_sweep_file(&mut self, cx: &mut AppContext<'_>, file: &Path) {
        match squadlab_core::sweep::start(&cx.runs.store, file) {
            Ok(x) => {
                cx.notify(format!(
                    "sweep {}: queued {} run(s){}",
                    x.sweep,
                    x.queued.len(),
                    if cx.state.train_store_queue {
                        ""
                    } else {
                        "; tick \"train queued runs here\" or start `squadlab worker`"
                    }
                ));
                self.selected = Some(x.sweep);
                self.listing = None;
                self.open_file(&cx.runs.store, file.to_path_buf());
                cx.runs.refresh(&cx.state.selected, true);
            }
            Err(e) => cx.error(format!("cannot start the sweep: {e:#}")),
        }
    }

    fn sweep_summary(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut AppContext<'_>,
        id: &str,
        rows: &[PointRow],
        fixed: &[(String, String)],
        random: bool,
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
            if self.is_testing() {
                ui.spinner();
                ui.weak("testing against the best…");
            }
            for (label, format) in [
                ("Export Markdown", Format::Markdown),
                ("Export CSV", Format::Csv),
                ("Export LaTeX", Format::Latex),
            ] {
                if ui.button(label).clicked() {
                    match self.export_sweep(cx, id, format) {
                        Ok(p) => cx.notify(format!("wrote {}", p.display())),
                        Err(e) => cx.error(format!("export failed: {e:#}")),
                    }
                }
            }
            if random {
                ui.separator();
                ui.add(
                    egui::DragValue::new(&mut self.trials_to_add)
                        .range(1..=1000)
                        .prefix("trials: "),
                );
                if ui.button("Add trials").clicked() {
                    let n = self.trials_to_add.max(1);
                    match squadlab_core::sweep::add(&cx.runs.store, id, n) {
                        Ok(x) => {
                            cx.notify(format!("sweep {id}: queued {} more run(s)", x.queued.len()));
                            cx.runs.refresh(&cx.state.selected, true);
                        }
                        Err(e) => cx.error(format!("cannot add trials: {e:#}")),
                    }
                }
            }
        });
    }

    /// The sweep's comparison table (`squadlab export sweep:ID`'s rows) under
    /// `<store>/exports/`.
    pub fn export_sweep(
        &mut self,
        cx: &AppContext<'_>,
        id: &str,
        format: Format,
    ) -> anyhow::Result<PathBuf> {
        let finished: Vec<RunEntry> = squadlab_core::sweep::runs(&cx.runs.store, id)?
            .into_iter()
            .filter(|e| {
                e.shown
                    == squadlab_core::store::Shown::Is(squadlab_core::store::RunStatus::Finished)
            })
            .collect();
        let refs = squadlab_core::report::ReferenceResults::builtin();
        let rows = squadlab_core::report::comparison_rows(
            &finished,
            &refs,
            &squadlab_core::report::TableOptions {
                group_seeds: true,
                include_references: true,
                baseline: None,
            },
        )?;
        let body = squadlab_core::report::render(&rows, format)?;
        let ext = match format {
            Format::Markdown => "md",
            Format::Csv => "csv",
            Format::Latex => "tex",
            Format::Json => "json",
        };
        let path = cx.export_path(&format!("sweep-{id}"), ext);
        std::fs::create_dir_all(path.parent().unwrap_or(&path))?;
        squadlab_core::fsutil::write_atomically(&path, body.as_bytes())?;
        Ok(path)
    }
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
