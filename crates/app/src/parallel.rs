//! The Sweeps view's parallel-coordinates plot: one vertical axis per swept
//! field plus F1, one line per run coloured by its F1. Numeric axes are
//! linear, or logarithmic when their values span a factor of 10 or more;
//! text and boolean axes space their values evenly. Dragging along an axis
//! brushes a range, and the table keeps the points with a run inside every
//! brush; a click on an axis clears its brush, a double-click clears all.

use egui::{Color32, Pos2};
use egui_plot::{Line, Plot, PlotPoint, PlotPoints, PlotTransform, Polygon, Text, VLine};
use squadlab_core::sweep::table::{numeric, PointRow, PointRun};
use std::collections::BTreeMap;

/// The F1 axis's name among the brushes.
pub const F1_AXIS: &str = "f1";

#[derive(Default)]
pub struct PlotState {
    /// Last frame's mapping from plot units to the screen.
    pub transform: Option<PlotTransform>,
    /// The axis being brushed and where the drag started, in plot units.
    drag: Option<(String, f64)>,
    /// Every run's heights, kept while the rows they came from are unchanged.
    layout: Option<Layout>,
}

/// The axes and each run's height on them, for one state of the sweep.
struct Layout {
    rows_hash: u64,
    scales: Vec<(String, Scale)>,
    /// (row index, run id, height per axis, F1 colour position).
    runs: Vec<(usize, String, Vec<Option<f64>>)>,
}

impl PlotState {
    /// Lays the runs out again when the rows changed (`rows_hash`).
    pub fn update(&mut self, rows_hash: u64, rows: &[PointRow], varying: &[String]) {
        if self
            .layout
            .as_ref()
            .is_some_and(|l| l.rows_hash == rows_hash)
        {
            return;
        }
        let scales = scales(rows, varying);
        let runs = rows
            .iter()
            .enumerate()
            .flat_map(|(i, row)| {
                let scales = &scales;
                row.runs
                    .iter()
                    .map(move |run| (i, run.id.clone(), run_positions(row, run, scales)))
            })
            .collect();
        self.layout = Some(Layout {
            rows_hash,
            scales,
            runs,
        });
    }

    /// Whether each of `n` rows has a run inside every brush.
    pub fn passing(&self, n: usize, brushes: &BTreeMap<String, (f64, f64)>) -> Vec<bool> {
        let Some(layout) = &self.layout else {
            return vec![true; n];
        };
        if brushes.is_empty() {
            return vec![true; n];
        }
        let mut pass = vec![false; n];
        for (row, _, at) in &layout.runs {
            let inside =
                layout
                    .scales
                    .iter()
                    .zip(at)
                    .all(|((axis, _), y)| match brushes.get(axis) {
                        Some(&(lo, hi)) => y.is_some_and(|y| (lo..=hi).contains(&y)),
                        None => true,
                    });
            pass[*row] |= inside;
        }
        pass
    }
}

impl PlotState {
    /// Where a value at `y` (0–1) on axis `index` is on the screen, as last drawn.
    pub fn screen_pos(&self, index: usize, y: f64) -> Option<Pos2> {
        Some(
            self.transform?
                .position_from_point(&PlotPoint::new(index as f64, y)),
        )
    }
}

/// How an axis maps values to 0–1.
enum Scale {
    Linear(f64, f64),
    Log(f64, f64),
    Categories(Vec<String>),
}

impl Scale {
    fn of(values: &[&str]) -> Scale {
        let nums: Option<Vec<f64>> = values.iter().map(|v| numeric(v)).collect();
        match nums {
            Some(n) if !n.is_empty() => {
                let lo = n.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = n.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if lo > 0.0 && hi / lo >= 10.0 {
                    Scale::Log(lo.ln(), hi.ln())
                } else {
                    Scale::Linear(lo, hi)
                }
            }
            _ => {
                let mut cats: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                cats.sort();
                cats.dedup();
                Scale::Categories(cats)
            }
        }
    }

    /// A number's height on a numeric axis.
    fn position_of(&self, v: f64) -> Option<f64> {
        let unit = |v: f64, lo: f64, hi: f64| if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
        match self {
            Scale::Linear(lo, hi) => Some(unit(v, *lo, *hi)),
            Scale::Log(lo, hi) => Some(unit(v.ln(), *lo, *hi)),
            Scale::Categories(_) => None,
        }
    }

    fn position(&self, value: &str) -> Option<f64> {
        match self {
            Scale::Linear(..) | Scale::Log(..) => self.position_of(numeric(value)?),
            Scale::Categories(c) => {
                let i = c.iter().position(|x| x == value)?;
                Some(if c.len() > 1 {
                    i as f64 / (c.len() - 1) as f64
                } else {
                    0.5
                })
            }
        }
    }

    /// The labels at the bottom and top of the axis.
    fn ends(&self) -> (String, String) {
        match self {
            Scale::Linear(lo, hi) => (short(*lo), short(*hi)),
            Scale::Log(lo, hi) => (format!("{} (log)", short(lo.exp())), short(hi.exp())),
            Scale::Categories(c) => (
                c.first().cloned().unwrap_or_default(),
                c.last().cloned().unwrap_or_default(),
            ),
        }
    }
}

fn short(v: f64) -> String {
    if v != 0.0 && (v.abs() < 1e-2 || v.abs() >= 1e4) {
        format!("{v:.2e}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The axes' names (swept fields, then F1) and scales.
fn scales(rows: &[PointRow], varying: &[String]) -> Vec<(String, Scale)> {
    let mut out: Vec<(String, Scale)> = varying
        .iter()
        .map(|axis| {
            let values: Vec<&str> = rows
                .iter()
                .filter_map(|r| r.point.get(axis).map(String::as_str))
                .collect();
            (axis.clone(), Scale::of(&values))
        })
        .collect();
    let f1: Vec<String> = rows
        .iter()
        .flat_map(|r| r.runs.iter())
        .filter(|r| r.is_finished())
        .filter_map(|r| r.f1.map(|f| f.to_string()))
        .collect();
    let f1: Vec<&str> = f1.iter().map(String::as_str).collect();
    let scale = match Scale::of(&f1) {
        Scale::Log(lo, hi) => Scale::Linear(lo.exp(), hi.exp()),
        other => other,
    };
    out.push((F1_AXIS.to_string(), scale));
    out
}

/// A run's height on each axis (None: no value there, as F1 before it finishes).
fn run_positions(row: &PointRow, run: &PointRun, scales: &[(String, Scale)]) -> Vec<Option<f64>> {
    scales
        .iter()
        .map(|(axis, scale)| {
            if axis == F1_AXIS {
                run.is_finished()
                    .then(|| scale.position(&run.f1?.to_string()))
                    .flatten()
            } else {
                scale.position(row.point.get(axis)?)
            }
        })
        .collect()
}

/// Viridis-like: low F1 dark blue-purple, high bright yellow.
fn f1_color(t: f64) -> Color32 {
    let stops = [
        (68.0, 1.0, 84.0),
        (33.0, 145.0, 140.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * 2.0;
    let i = (t as usize).min(1);
    let f = t - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f) as u8;
    Color32::from_rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl PlotState {
    /// Draws the plot with `brushes` shaded on their axes; drags along an
    /// axis brush it, a double click clears every brush.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        brushes: &mut BTreeMap<String, (f64, f64)>,
        height: f32,
    ) {
        let Some(layout) = self.layout.as_ref() else {
            return;
        };
        // Axis names and end labels, so the layout's borrow ends before brushing.
        let axes: Vec<(String, (String, String))> = layout
            .scales
            .iter()
            .map(|(a, s)| (a.clone(), s.ends()))
            .collect();
        let k = axes.len();
        let weak = ui.visuals().weak_text_color().gamma_multiply(0.6);
        let mut lines = Vec::with_capacity(layout.runs.len());
        for (_, id, at) in &layout.runs {
            let points: Vec<[f64; 2]> = at
                .iter()
                .enumerate()
                .filter_map(|(i, y)| Some([i as f64, (*y)?]))
                .collect();
            let color = at.last().copied().flatten().map_or(weak, f1_color);
            lines.push(
                Line::new(id.as_str(), PlotPoints::from(points))
                    .color(color)
                    .width(1.5),
            );
        }
        let shaded = brushes.clone();
        let axis_color = ui.visuals().text_color();
        let response = Plot::new("sweep-parallel")
            .height(height)
            .show_axes(false)
            .show_grid(false)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .allow_boxed_zoom(false)
            .allow_double_click_reset(false)
            .include_x(-0.35)
            .include_x(k as f64 - 0.65)
            .include_y(-0.14)
            .include_y(1.14)
            .label_formatter(|hover| match hover {
                egui_plot::HoverPosition::NearDataPoint { plot_name, .. } => {
                    Some(plot_name.to_string())
                }
                egui_plot::HoverPosition::Elsewhere { .. } => None,
            })
            .show(ui, |pui| {
                for (i, (axis, (lo, hi))) in axes.iter().enumerate() {
                    let x = i as f64;
                    pui.vline(VLine::new("", x).color(axis_color.gamma_multiply(0.6)));
                    let (lo, hi) = (lo.clone(), hi.clone());
                    pui.text(Text::new(
                        "",
                        PlotPoint::new(x, 1.10),
                        egui::RichText::new(axis).strong(),
                    ));
                    pui.text(Text::new("", PlotPoint::new(x, 1.03), hi));
                    pui.text(Text::new("", PlotPoint::new(x, -0.05), lo));
                    if let Some(&(b0, b1)) = shaded.get(axis) {
                        let w = 0.06;
                        pui.polygon(
                            Polygon::new(
                                "",
                                PlotPoints::from(vec![
                                    [x - w, b0],
                                    [x + w, b0],
                                    [x + w, b1],
                                    [x - w, b1],
                                ]),
                            )
                            .fill_color(Color32::from_rgba_unmultiplied(120, 170, 255, 70))
                            .allow_hover(false),
                        );
                    }
                }
                for line in lines {
                    pui.line(line);
                }
            });
        self.transform = Some(response.transform);
        let names: Vec<String> = axes.into_iter().map(|(a, _)| a).collect();
        self.brush(brushes, &response.response, &response.transform, &names);
    }

    /// Turns drags along an axis into brushes.
    fn brush(
        &mut self,
        brushes: &mut BTreeMap<String, (f64, f64)>,
        response: &egui::Response,
        transform: &PlotTransform,
        axes: &[String],
    ) {
        if response.double_clicked() {
            brushes.clear();
            self.drag = None;
            return;
        }
        let at = |pos: Pos2| transform.value_from_position(pos);
        if response.drag_started() {
            let origin = response.ctx.input(|i| i.pointer.press_origin());
            if let Some(p) = origin.map(at) {
                let i = p.x.round();
                if (p.x - i).abs() < 0.3 && i >= 0.0 && (i as usize) < axes.len() {
                    self.drag = Some((axes[i as usize].clone(), p.y.clamp(0.0, 1.0)));
                }
            }
        }
        let Some((axis, y0)) = self.drag.clone() else {
            return;
        };
        if let Some(p) = response.interact_pointer_pos().map(at) {
            let y = p.y.clamp(0.0, 1.0);
            if (y - y0).abs() > 0.01 {
                brushes.insert(axis.clone(), (y0.min(y), y0.max(y)));
            }
        }
        if response.drag_stopped() {
            let moved = brushes.get(&axis).is_some_and(|(a, b)| b - a > 0.01);
            if !moved {
                brushes.remove(&axis);
            }
            self.drag = None;
        }
    }
}
