//! The Analysis view's chart: one group of bars per bucket, the runs side by
//! side in it, each bar with its 95% interval as a whisker and a star over
//! a run whose difference from the first run is significant there. Which
//! bar a click lands on is worked out from the plot position.

use super::widgets::{series_color, slot_label};
use egui::Color32;
use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoint, PlotPoints, Text};
use squadlab_core::report::{Breakdown, BucketRow};

/// F1 or EM: which score the bars show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Score {
    #[default]
    F1,
    ExactMatch,
}

impl Score {
    pub fn name(self) -> &'static str {
        match self {
            Score::F1 => "F1",
            Score::ExactMatch => "EM",
        }
    }

    fn of(self, row: &BucketRow) -> (f64, [f64; 2]) {
        match self {
            Score::F1 => (row.f1, row.f1_interval),
            Score::ExactMatch => (row.exact_match, row.exact_match_interval),
        }
    }
}

/// A run's colour: the one it has in the app's other plots.
pub fn run_color(i: usize) -> Color32 {
    series_color(i)
}

/// The part of a bucket's slot the bars fill, the rest a gap between buckets.
const GROUP_WIDTH: f64 = 0.8;

/// The centre of run `run`'s bar (of `runs`) in bucket slot `bucket`.
pub fn bar_x(bucket: usize, run: usize, runs: usize) -> f64 {
    let width = GROUP_WIDTH / runs as f64;
    bucket as f64 - GROUP_WIDTH / 2.0 + width * (run as f64 + 0.5)
}

/// The (bucket slot, run) whose bar stands at plot position `x`, if any.
pub fn bar_at(x: f64, buckets: usize, runs: usize) -> Option<(usize, usize)> {
    let slot = x.round();
    if runs == 0 || slot < 0.0 || slot >= buckets as f64 {
        return None;
    }
    let within = x - (slot - GROUP_WIDTH / 2.0);
    if !(0.0..GROUP_WIDTH).contains(&within) {
        return None;
    }
    let run = ((within / (GROUP_WIDTH / runs as f64)) as usize).min(runs - 1);
    Some((slot as usize, run))
}

/// The buckets any run has, in the dimension's order.
pub fn chart_buckets(b: &Breakdown) -> Vec<&'static str> {
    b.dimension
        .buckets()
        .iter()
        .copied()
        .filter(|bucket| {
            b.runs
                .iter()
                .any(|r| r.rows.iter().any(|x| x.bucket == *bucket))
        })
        .collect()
}

/// Whether run `run` (after the first) differs significantly from the first
/// run in `bucket`.
pub fn significant(b: &Breakdown, run: usize, bucket: &str) -> bool {
    let Some(run) = b.runs.get(run) else {
        return false;
    };
    b.comparisons
        .iter()
        .filter(|c| c.run_id == run.run_id)
        .flat_map(|c| &c.rows)
        .any(|r| r.bucket == bucket && r.significant)
}

/// Draws the chart; returns where it was drawn and the (run index, bucket)
/// of a bar clicked this frame.
pub fn breakdown_chart(
    ui: &mut egui::Ui,
    b: &Breakdown,
    names: &[String],
    score: Score,
    height: f32,
) -> (egui::Rect, Option<(usize, String)>) {
    let buckets = chart_buckets(b);
    let whisker_color = ui.visuals().strong_text_color();
    let runs = b.runs.len();
    let width = GROUP_WIDTH / runs.max(1) as f64;
    let labels: Vec<String> = buckets
        .iter()
        .map(|bucket| {
            let n = b.runs[0].rows.iter().find(|r| r.bucket == *bucket);
            match n {
                Some(r) => format!("{bucket}\n{} q", r.count),
                None => bucket.to_string(),
            }
        })
        .collect();
    let response = Plot::new(("analysis-chart", b.by))
        .height(height)
        .legend(Legend::default())
        .include_y(0.0)
        // Room above 100 for the stars and the legend.
        .include_y(118.0)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .show_x(false)
        .y_axis_label(format!("{} (%)", score.name()))
        .x_grid_spacer(egui_plot::uniform_grid_spacer(|_| [1.0, 1.0, 1.0]))
        .x_axis_formatter(move |mark, _| slot_label(&labels, mark))
        .show(ui, |plot_ui| {
            for (j, run) in b.runs.iter().enumerate() {
                let color = run_color(j);
                let mut bars = Vec::new();
                for (i, bucket) in buckets.iter().enumerate() {
                    let Some(row) = run.rows.iter().find(|r| r.bucket == *bucket) else {
                        continue;
                    };
                    let (value, [lo, hi]) = score.of(row);
                    let x = bar_x(i, j, runs);
                    bars.push(
                        Bar::new(x, value)
                            .width(width * 0.92)
                            .name(format!(
                                "{bucket}: {value:.1} [{lo:.1}, {hi:.1}], {} q",
                                row.count
                            ))
                            .fill(color.gamma_multiply(0.75)),
                    );
                    let whisker = vec![[x, lo], [x, hi]];
                    plot_ui.line(
                        Line::new("", PlotPoints::from(whisker))
                            .color(whisker_color)
                            .width(1.5),
                    );
                    for y in [lo, hi] {
                        let cap = vec![[x - width * 0.2, y], [x + width * 0.2, y]];
                        plot_ui.line(
                            Line::new("", PlotPoints::from(cap))
                                .color(whisker_color)
                                .width(1.5),
                        );
                    }
                    if j > 0 && significant(b, j, bucket) {
                        plot_ui.text(
                            Text::new(
                                "",
                                PlotPoint::new(x, hi + 2.0),
                                egui::RichText::new("*").size(20.0).strong(),
                            )
                            .anchor(egui::Align2::CENTER_BOTTOM)
                            .color(color),
                        );
                    }
                }
                let name = names.get(j).cloned().unwrap_or_else(|| run.run_id.clone());
                plot_ui.bar_chart(BarChart::new(name, bars).color(color));
            }
        });
    let clicked = response
        .response
        .clicked()
        .then(|| response.response.interact_pointer_pos())
        .flatten()
        .map(|pos| response.transform.value_from_position(pos))
        .and_then(|p| bar_at(p.x, buckets.len(), runs))
        .map(|(bucket, run)| (run, buckets[bucket].to_string()));
    (response.response.rect, clicked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_click_finds_the_bar_under_it() {
        for runs in 1..=4 {
            for bucket in 0..6 {
                for run in 0..runs {
                    let x = bar_x(bucket, run, runs);
                    assert_eq!(bar_at(x, 6, runs), Some((bucket, run)));
                }
            }
        }
        // The gap between two buckets, and outside the chart.
        assert_eq!(bar_at(0.5, 6, 2), None);
        assert_eq!(bar_at(-0.6, 6, 2), None);
        assert_eq!(bar_at(6.0, 6, 2), None);
    }
}
