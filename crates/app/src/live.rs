//! The live view: loss, grad-norm and learning rate of the selected runs
//! against step, overlaid, smoothed, with epoch markers, beside each run's
//! speed, progress, device and scores.

use super::context::{AppContext, Request, View};
use super::curves::{decimate, Ema, Envelope};
use super::eval_plot::{best_eval, eval_plot, has_evals};
use super::follow::Series;
use super::state::Tab;
use super::system_plot::{has_samples, system_height, system_plots, SYSTEM_PLOT_HEIGHT};
use super::widgets::{duration, hovered, series_color};
use egui_plot::{Legend, Line, Plot, PlotPoints, VLine};
use squadlab_core::store::{holder, hostname, Holder};
use std::collections::HashMap;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Metric {
    Loss,
    GradNorm,
    LearningRate,
}

impl Metric {
    const ALL: [Metric; 3] = [Metric::Loss, Metric::GradNorm, Metric::LearningRate];

    fn title(self) -> &'static str {
        match self {
            Metric::Loss => "loss",
            Metric::GradNorm => "grad-norm",
            Metric::LearningRate => "learning rate",
        }
    }

    /// Whether the smoothing slider applies. The learning rate is the
    /// schedule the trainer used: smoothed, it would draw rates it never used.
    fn is_smoothed(self) -> bool {
        self != Metric::LearningRate
    }

    fn values(self, s: &Series) -> &[f64] {
        match self {
            Metric::Loss => &s.loss,
            Metric::GradNorm => &s.grad_norm,
            Metric::LearningRate => &s.learning_rate,
        }
    }
}

/// What a drawn curve depends on: while none of it changes, the last frame's
/// points are drawn again without touching the data.
#[derive(Clone, Copy, PartialEq)]
struct DrawKey {
    version: u64,
    weight: u32,
    range: (u64, u64),
    buckets: usize,
    log: bool,
}

/// One curve: run id, metric, smoothed or raw.
type CurveId = (String, Metric, bool);

/// Smoothed curves, recomputed only when a run's data or the smoothing
/// changes, and the points last drawn for each curve.
#[derive(Default)]
pub struct LiveView {
    /// Per curve: the series' rewrite count and the EMA, extended as steps arrive.
    smooth: HashMap<(String, Metric), (u64, Ema)>,
    drawn: HashMap<CurveId, (DrawKey, Vec<[f64; 2]>)>,
    /// Whole-series envelopes for plots that follow the data, per curve,
    /// with the rewrite count and weight they were built for.
    envelopes: HashMap<CurveId, (u64, u32, usize, Envelope)>,
    /// Each plot's visible x range last frame (everything while it follows
    /// the data): only that range is decimated.
    visible: HashMap<Metric, (f64, f64)>,
    /// Where each plot was drawn, for exporting the plots as PNG.
    pub plots_rect: Option<egui::Rect>,
}

impl LiveView {
    fn smoothed(&mut self, id: &str, metric: Metric, s: &Series, weight: f32) -> &[f64] {
        let weight = f64::from(weight);
        let key = (id.to_string(), metric);
        let entry = self
            .smooth
            .entry(key)
            .or_insert((u64::MAX, Ema::new(weight)));
        let values = metric.values(s);
        let stale =
            entry.0 != s.rewrites || entry.1.weight() != weight || entry.1.out.len() > values.len();
        if stale {
            *entry = (s.rewrites, Ema::new(weight));
        }
        let done = entry.1.out.len();
        entry.1.extend(&values[done..]);
        &entry.1.out
    }

    /// A run's named curve on a plot: the EMA at `weight` where the metric is
    /// smoothed, else the series as logged.
    #[allow(clippy::too_many_arguments)]
    fn named_curve(
        &mut self,
        id: &str,
        metric: Metric,
        s: &Series,
        weight: f32,
        range: (f64, f64),
        buckets: usize,
        log: bool,
    ) -> Vec<[f64; 2]> {
        let smoothed = metric.is_smoothed() && weight > 0.0;
        self.drawn(id, metric, s, smoothed, weight, range, buckets, log)
    }

    /// The points of one curve as drawn: the raw series or its EMA, within
    /// `range`, decimated to `buckets` pixel columns.
    #[allow(clippy::too_many_arguments)]
    fn drawn(
        &mut self,
        id: &str,
        metric: Metric,
        s: &Series,
        smoothed: bool,
        weight: f32,
        range: (f64, f64),
        buckets: usize,
        log: bool,
    ) -> Vec<[f64; 2]> {
        let key = DrawKey {
            version: s.version,
            weight: if smoothed { weight.to_bits() } else { 0 },
            range: (range.0.to_bits(), range.1.to_bits()),
            buckets,
            log,
        };
        let slot = (id.to_string(), metric, smoothed);
        if let Some((k, points)) = self.drawn.get(&slot) {
            if *k == key {
                return points.clone();
            }
        }
        let following = range == (f64::MIN, f64::MAX);
        let mut envelope = self.envelopes.remove(&slot);
        let points = {
            let ys = if smoothed {
                self.smoothed(id, metric, s, weight)
            } else {
                metric.values(s)
            };
            if following {
                let built_for = (s.rewrites, key.weight, buckets);
                let e = match &mut envelope {
                    Some((r, w, b, e)) if (*r, *w, *b) == built_for => e,
                    other => {
                        &mut other
                            .insert((built_for.0, built_for.1, built_for.2, Envelope::default()))
                            .3
                    }
                };
                e.update(ys, buckets);
                to_axis(e.points(&s.step, ys), log)
            } else {
                to_axis(decimate(&s.step, ys, range, buckets), log)
            }
        };
        if let Some(e) = envelope {
            self.envelopes.insert(slot.clone(), e);
        }
        self.drawn.insert(slot, (key, points.clone()));
        points
    }
}

/// A tick label: plain for everyday magnitudes, scientific for learning rates.
fn tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if (1e-2..1e5).contains(&v.abs()) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.1e}")
    }
}

/// A hovered value: four significant digits.
fn value_text(v: f64) -> String {
    if (1e-2..1e5).contains(&v.abs()) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// Plotted y: log10 for a log axis (non-positive values are dropped).
/// A diverged run's NaN or infinite losses are left out of the drawing (the
/// run's status says it diverged); they would wreck the axes.
fn to_axis(points: Vec<[f64; 2]>, log: bool) -> Vec<[f64; 2]> {
    points
        .into_iter()
        .filter(|p| p[1].is_finite() && (!log || p[1] > 0.0))
        .map(|p| if log { [p[0], p[1].log10()] } else { p })
        .collect()
}

impl View for LiveView {
    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>) {
        let ids = cx.state.selected.clone();
        if ids.is_empty() {
            if cx.runs.views.is_empty() {
                ui.label("This store has no runs yet.");
                ui.label("Start one from a preset (minilm-300q.ron trains in about ten minutes on a CPU), or open another store.");
                if ui.button("New run (Ctrl+N)").clicked() {
                    cx.request(Request::Show(Tab::NewRun));
                }
            } else {
                ui.weak("Select one or more runs in the sidebar (Ctrl+click adds more), or start one under New run (Ctrl+N).");
            }
            return;
        }
        ui.horizontal(|ui| {
            ui.label("Smoothing");
            ui.add(egui::Slider::new(&mut cx.state.smoothing, 0.0..=0.999));
            ui.checkbox(&mut cx.state.show_raw, "raw (faint)");
            ui.checkbox(&mut cx.state.log_loss, "log-scale loss");
            ui.checkbox(&mut cx.state.every_point, "every point")
                .on_hover_text("Draw every logged point instead of the extremes of each pixel column: exact, and slow on long runs");
            if ui.button("Save plots as PNG…").clicked() {
                cx.save_png(ui.ctx(), self.plots_rect, "plots");
            }
            if ui
                .button("Export to TensorBoard")
                .on_hover_text("Event files of the selected runs, for TensorBoard, wandb sync, Aim or the Hub")
                .clicked()
            {
                match export_tensorboard(cx) {
                    Ok(dir) => cx.notify(format!(
                        "wrote the runs' event files; view them with: tensorboard --logdir {}",
                        dir.display()
                    )),
                    Err(e) => cx.error(format!("TensorBoard export failed: {e:#}")),
                }
            }
        });
        egui::Panel::right("run-stats")
            .resizable(true)
            .default_size(260.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    for (i, id) in ids.iter().enumerate() {
                        self.run_stats(ui, cx, i, id);
                        ui.separator();
                    }
                })
            });
        let plots = if has_evals(cx.runs, &ids) { 4.0 } else { 3.0 };
        let system_id = ui.make_persistent_id("live-system");
        let system = system_height(ui.ctx(), system_id, cx.runs, &ids);
        // Each plot's title and x axis take about 40 points.
        let height = ((ui.available_height() - system - plots * 40.0) / plots).max(120.0);
        let top = ui.cursor().min;
        for metric in Metric::ALL {
            self.metric_plot(ui, cx, metric, &ids, height);
        }
        if plots > 3.0 {
            let name = |id: &str| cx.series_name(id);
            eval_plot(ui, cx.runs, &ids, name, height);
        }
        if has_samples(cx.runs, &ids) {
            egui::CollapsingHeader::new("System")
                .id_salt("live-system")
                .show(ui, |ui| {
                    let name = |id: &str| cx.series_name(id);
                    system_plots(ui, cx.runs, &ids, name, SYSTEM_PLOT_HEIGHT);
                });
        }
        self.plots_rect = Some(egui::Rect::from_min_max(top, ui.min_rect().max));
    }
}

impl LiveView {
    fn metric_plot(
        &mut self,
        ui: &mut egui::Ui,
        cx: &mut AppContext<'_>,
        metric: Metric,
        ids: &[String],
        height: f32,
    ) {
        let log = metric == Metric::Loss && cx.state.log_loss;
        let weight = cx.state.smoothing;
        let show_raw = cx.state.show_raw;
        let range = self
            .visible
            .get(&metric)
            .copied()
            .unwrap_or((f64::MIN, f64::MAX));
        let buckets = if cx.state.every_point {
            usize::MAX / 4
        } else {
            (ui.available_width() as usize).clamp(100, 4000)
        };
        let mut lines = Vec::new();
        let mut epochs = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let Some(view) = cx.runs.get(id) else {
                continue;
            };
            let s = &view.follower.series;
            if s.is_empty() {
                continue;
            }
            let name = cx.series_name(id);
            let color = series_color(i);
            let smoothed = metric.is_smoothed() && weight > 0.0;
            if show_raw && smoothed {
                let raw = self.drawn(id, metric, s, false, weight, range, buckets, log);
                // Unnamed: the raw curve stays out of the legend and the hover.
                lines.push(
                    Line::new("", PlotPoints::from(raw))
                        .color(color.gamma_multiply(0.25))
                        .allow_hover(false),
                );
            }
            let drawn = self.named_curve(id, metric, s, weight, range, buckets, log);
            lines.push(
                Line::new(name, PlotPoints::from(drawn))
                    .color(color)
                    .width(1.5),
            );
            epochs.extend(s.epochs.iter().map(|e| (e.step as f64, color)));
        }
        ui.label(egui::RichText::new(metric.title()).strong());
        let plot = Plot::new(("live", metric as u8))
            .height(height)
            .legend(Legend::default())
            .link_axis(egui::Id::unique("live-x"), [true, false])
            .link_cursor(egui::Id::unique("live-x"), [true, false])
            .x_axis_label("step")
            .label_formatter(move |hover| {
                let (name, p) = hovered(hover);
                let y = if log { 10f64.powf(p.y) } else { p.y };
                Some(format!("{name}\nstep {:.0}\n{}", p.x, value_text(y)))
            })
            .y_axis_formatter(move |mark, _| {
                tick(if log {
                    10f64.powf(mark.value)
                } else {
                    mark.value
                })
            });
        let response = plot.show(ui, |plot_ui| {
            let following = plot_ui.auto_bounds().x;
            for line in lines {
                plot_ui.line(line);
            }
            for (step, color) in epochs {
                plot_ui.vline(
                    VLine::new("", step)
                        .color(color.gamma_multiply(0.5))
                        .style(egui_plot::LineStyle::dashed_loose()),
                );
            }
            following
        });
        // While the plot follows the data, all of it is in view; once zoomed
        // or panned, only the visible range is decimated.
        let b = response.transform.bounds();
        let visible = if response.inner {
            (f64::MIN, f64::MAX)
        } else {
            (b.min()[0], b.max()[0])
        };
        self.visible.insert(metric, visible);
    }

    fn run_stats(&self, ui: &mut egui::Ui, cx: &mut AppContext<'_>, index: usize, id: &str) {
        let Some(view) = cx.runs.get(id) else {
            return;
        };
        let s = &view.follower.series;
        ui.colored_label(
            series_color(index),
            egui::RichText::new(cx.series_name(id)).strong(),
        );
        ui.colored_label(
            super::widgets::status_color(view.entry.shown),
            view.entry.shown.as_str(),
        );
        if let Some(job) = cx.jobs.get(id) {
            ui.weak(&job.status);
        }
        egui::Grid::new(("stats", id))
            .num_columns(2)
            .show(ui, |ui| {
                let mut row = |k: &str, v: String| {
                    ui.label(k);
                    ui.monospace(v);
                    ui.end_row();
                };
                if let Some(start) = &s.started {
                    row("device", format!("{} {}", start.device, start.dtype));
                    if let Some(generator) = &start.dropout_generator {
                        row("dropout masks", generator.clone());
                    }
                    if let Some(kernels) = &start.fused_kernels {
                        // What the self-check trusted; the rest ran on candle's generic ops.
                        let fused = match kernels.len() {
                            0 => "none (candle's generic ops)".to_string(),
                            n => {
                                format!("{n} of {}", squadlab_core::model::fused::Kernel::ALL.len())
                            }
                        };
                        row("fused kernels", fused);
                    }
                    row(
                        "parameters",
                        format!("{:.1} M", start.parameters as f64 / 1e6),
                    );
                }
                if let Some(last) = &s.last {
                    let total = s.started.as_ref().map_or(0, |st| st.total_steps);
                    row("step", format!("{} / {total}", last.step));
                    row("epoch", format!("{:.2}", last.epoch));
                    row("samples/s", format!("{:.1}", last.samples_per_second));
                    row("elapsed", duration(last.elapsed_seconds));
                    if view.is_active() {
                        let from = s.started.as_ref().map_or(0, |st| st.resumed_from_step);
                        let done = last.step.saturating_sub(from).max(1) as f64;
                        let eta =
                            last.elapsed_seconds / done * total.saturating_sub(last.step) as f64;
                        row("ETA", duration(eta));
                    }
                    row("loss", format!("{:.4}", last.loss));
                }
                if view.is_active() {
                    if let Some(rss) = writer_memory(&view.entry.dir) {
                        row("memory", rss);
                    }
                }
                if let Some(best) = best_eval(s) {
                    row(
                        "best F1",
                        format!("{:.2} (step {}, {} q)", best.f1, best.step, best.total),
                    );
                }
                if let Some(e) = &s.eval {
                    row("EM", format!("{:.2}", e.exact_match));
                    row("F1", format!("{:.2}", e.f1));
                    row("questions", e.total.to_string());
                } else if let Some((em, f1)) = view.scores() {
                    row("EM", format!("{em:.2}"));
                    row("F1", format!("{f1:.2}"));
                }
            });
        if s.paused {
            ui.colored_label(ui.visuals().warn_fg_color, "paused");
        }
        for p in &view.follower.problems {
            ui.colored_label(ui.visuals().warn_fg_color, p);
        }
    }
}

/// Exports the selected runs' metrics as TensorBoard event files, one
/// folder per run under `<store>/exports/tensorboard/`; returns that folder.
fn export_tensorboard(cx: &AppContext<'_>) -> anyhow::Result<std::path::PathBuf> {
    let root = cx.runs.store.root.join("exports").join("tensorboard");
    for id in &cx.state.selected {
        let Some(view) = cx.runs.get(id) else {
            continue;
        };
        squadlab_core::report::tensorboard::export_run_dir(&view.entry.dir, &root.join(id))?;
    }
    Ok(root)
}

/// Resident memory of the process writing a run, when it runs on this host.
fn writer_memory(dir: &std::path::Path) -> Option<String> {
    let Holder::Alive(info) = holder(dir) else {
        return None;
    };
    if info.host != hostname() {
        return Some(format!("(on {})", info.host));
    }
    let bytes = squadlab_core::train::system::rss_bytes(&format!("/proc/{}/status", info.pid))?;
    Some(format!("{:.2} GiB RSS", bytes as f64 / (1u64 << 30) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use squadlab_core::train::{StepLog, TrainEvent};

    fn series(steps: u64) -> Series {
        let mut s = Series::default();
        for step in 1..=steps {
            // A warmup to step 10, then a linear decay: a kink smoothing rounds off.
            let lr = if step <= 10 {
                1e-4 * step as f64 / 10.0
            } else {
                1e-4 * (steps - step) as f64 / (steps - 10) as f64
            };
            s.push(&TrainEvent::Step(StepLog {
                step,
                epoch: 0.0,
                loss: if step % 2 == 0 { 1.0 } else { 3.0 },
                grad_norm: 1.0,
                learning_rate: lr,
                samples_per_second: 1.0,
                elapsed_seconds: step as f64,
            }));
        }
        s
    }

    fn named_line(metric: Metric, s: &Series, weight: f32) -> Vec<[f64; 2]> {
        let everything = (f64::MIN, f64::MAX);
        LiveView::default().named_curve("run", metric, s, weight, everything, usize::MAX / 4, false)
    }

    #[test]
    fn the_learning_rate_is_drawn_as_scheduled_while_loss_is_smoothed() {
        let s = series(40);
        let lr = named_line(Metric::LearningRate, &s, 0.9);
        assert_eq!(lr.len(), 40);
        for (point, (&step, &rate)) in lr.iter().zip(s.step.iter().zip(&s.learning_rate)) {
            assert_eq!(*point, [step, rate]);
        }
        // The loss under the same slider is smoothed: it no longer swings
        // between 1 and 3.
        let loss = named_line(Metric::Loss, &s, 0.9);
        let last = loss.last().unwrap()[1];
        assert!(last > 1.5 && last < 2.5, "smoothed loss {last}");
    }
}
