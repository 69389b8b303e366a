//! The live view's evaluation plot: EM and F1 of in-training evaluations
//! against step, one colour per run, with the final evaluation as a diamond
//! and the best evaluation ringed.

use super::follow::Series;
use super::runs::Runs;
use super::widgets::{hovered, series_color};
use egui_plot::{Line, MarkerShape, Plot, PlotPoints, Points};
use squadlab_core::train::EvalSummary;

/// Whether any of these runs has evaluated during training.
pub fn has_evals(runs: &Runs, ids: &[String]) -> bool {
    ids.iter().any(|id| {
        runs.get(id)
            .is_some_and(|v| !v.follower.series.evals.is_empty())
    })
}

/// The plot of these runs' evaluations; `name` gives each run's legend name.
pub fn eval_plot(
    ui: &mut egui::Ui,
    runs: &Runs,
    ids: &[String],
    name: impl Fn(&str) -> String,
    height: f32,
) {
    let mut lines = Vec::new();
    let mut points = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(view) = runs.get(id) else {
            continue;
        };
        let s = &view.follower.series;
        if s.evals.is_empty() {
            continue;
        }
        let name = name(id);
        let color = series_color(i);
        let f1: Vec<[f64; 2]> = s.evals.iter().map(|e| [e.step as f64, e.f1]).collect();
        let em: Vec<[f64; 2]> = s
            .evals
            .iter()
            .map(|e| [e.step as f64, e.exact_match])
            .collect();
        lines.push(
            Line::new(format!("{name} F1"), PlotPoints::from(f1.clone()))
                .color(color)
                .width(1.5),
        );
        lines.push(
            Line::new(format!("{name} EM"), PlotPoints::from(em))
                .color(color.gamma_multiply(0.6))
                .style(egui_plot::LineStyle::dashed_loose()),
        );
        points.push(
            Points::new("", PlotPoints::from(f1))
                .color(color)
                .radius(2.5)
                .allow_hover(false),
        );
        if let Some(best) = best_eval(s) {
            points.push(
                Points::new("", vec![[best.step as f64, best.f1]])
                    .shape(MarkerShape::Circle)
                    .filled(false)
                    .radius(6.0)
                    .color(color)
                    .allow_hover(false),
            );
        }
        if let Some(fin) = &s.eval {
            points.push(
                Points::new(format!("{name} final F1"), vec![[fin.step as f64, fin.f1]])
                    .shape(MarkerShape::Diamond)
                    .radius(5.0)
                    .color(color),
            );
        }
    }
    ui.label(egui::RichText::new("F1 (solid) and EM (dashed) of the evaluations during training; ring: best, diamond: final F1").strong());
    // No legend: it would cover the points; the colours are the loss
    // plot's, and hovering names each curve.
    Plot::new("live-eval")
        .height(height)
        .include_y(0.0)
        .link_axis(egui::Id::unique("live-x"), [true, false])
        .link_cursor(egui::Id::unique("live-x"), [true, false])
        .x_axis_label("step")
        .label_formatter(|hover| {
            let (name, p) = hovered(hover);
            Some(format!("{name}\nstep {:.0}\n{:.2}", p.x, p.y))
        })
        .show(ui, |plot_ui| {
            for line in lines {
                plot_ui.line(line);
            }
            for p in points {
                plot_ui.points(p);
            }
        });
}

/// The best in-training evaluation by the run's `metric_for_best_model`;
/// the first of equals, as the trainer chooses.
pub fn best_eval(s: &Series) -> Option<&EvalSummary> {
    let (metric, greater) = s
        .started
        .as_ref()
        .map_or((Default::default(), true), |st| st.config.best_metric());
    let value = |e: &EvalSummary| metric.of(e.exact_match, e.f1);
    s.evals
        .iter()
        .filter(|e| !value(e).is_nan())
        .reduce(|a, b| {
            let better = if greater {
                value(b) > value(a)
            } else {
                value(b) < value(a)
            };
            if better {
                b
            } else {
                a
            }
        })
}
