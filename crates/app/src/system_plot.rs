//! The live view's System row: what each selected run's training process
//! costs over time, as its sampler logged it (CPU %, resident memory, and on
//! CUDA each GPU's utilisation, memory, power and temperature). The x axis is
//! minutes since the process started the run.

use super::runs::Runs;
use super::widgets::{hovered, series_color};
use egui_plot::{Legend, Line, Plot, PlotPoints};
use squadlab_core::train::{GpuUsage, SystemSample};

/// A sample's values on one plot: (the GPU's index, or None for the
/// process, value).
type Values = Vec<(Option<u32>, f64)>;

/// One plot of the row: its title and how a sample gives its values (one
/// per GPU for the GPU plots).
struct Panel {
    title: &'static str,
    values: fn(&SystemSample) -> Values,
}

fn gpu_values(s: &SystemSample, value: fn(&GpuUsage) -> Option<f64>) -> Values {
    s.gpus
        .iter()
        .filter_map(|g| Some((Some(g.index), value(g)?)))
        .collect()
}

const PANELS: [Panel; 6] = [
    Panel {
        title: "CPU % (100 = one core)",
        values: |s| s.cpu_percent.map(|v| (None, v)).into_iter().collect(),
    },
    Panel {
        title: "memory (RSS, GiB)",
        values: |s| {
            s.rss_bytes
                .map(|b| (None, b as f64 / (1u64 << 30) as f64))
                .into_iter()
                .collect()
        },
    },
    Panel {
        title: "GPU utilisation %",
        values: |s| gpu_values(s, |g| g.utilization_percent),
    },
    Panel {
        title: "GPU memory used (GiB)",
        values: |s| gpu_values(s, |g| g.memory_used_mib.map(|m| m / 1024.0)),
    },
    Panel {
        title: "GPU power (W)",
        values: |s| gpu_values(s, |g| g.power_watts),
    },
    Panel {
        title: "GPU temperature (°C)",
        values: |s| gpu_values(s, |g| g.temperature_c),
    },
];

/// Each system plot's height, without its title and axis.
pub const SYSTEM_PLOT_HEIGHT: f32 = 130.0;

/// The room the System row takes: its header, and its plots while open.
pub fn system_height(ctx: &egui::Context, id: egui::Id, runs: &Runs, ids: &[String]) -> f32 {
    if !has_samples(runs, ids) {
        return 0.0;
    }
    let open = egui::collapsing_header::CollapsingState::load(ctx, id).is_some_and(|s| s.is_open());
    if !open {
        return 24.0;
    }
    let rows = if any_gpu(runs, ids) { 3.0 } else { 1.0 };
    24.0 + rows * (SYSTEM_PLOT_HEIGHT + 40.0)
}

fn any_gpu(runs: &Runs, ids: &[String]) -> bool {
    ids.iter().any(|id| {
        runs.get(id)
            .is_some_and(|v| v.follower.series.system.iter().any(|s| !s.gpus.is_empty()))
    })
}

/// Whether any of these runs has logged a system sample.
pub fn has_samples(runs: &Runs, ids: &[String]) -> bool {
    ids.iter().any(|id| {
        runs.get(id)
            .is_some_and(|v| !v.follower.series.system.is_empty())
    })
}

/// The row's plots, two to a line; the GPU plots only where a run sampled a GPU.
pub fn system_plots(
    ui: &mut egui::Ui,
    runs: &Runs,
    ids: &[String],
    name: impl Fn(&str) -> String,
    height: f32,
) {
    let panels: Vec<&Panel> = PANELS
        .iter()
        .take(if any_gpu(runs, ids) { 6 } else { 2 })
        .collect();
    for pair in panels.chunks(2) {
        ui.columns(pair.len(), |columns| {
            for (ui, panel) in columns.iter_mut().zip(pair) {
                panel_plot(ui, panel, runs, ids, &name, height);
            }
        });
    }
}

fn panel_plot(
    ui: &mut egui::Ui,
    panel: &Panel,
    runs: &Runs,
    ids: &[String],
    name: &impl Fn(&str) -> String,
    height: f32,
) {
    let mut lines = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(view) = runs.get(id) else {
            continue;
        };
        let mut by_gpu: std::collections::BTreeMap<Option<u32>, Vec<[f64; 2]>> = Default::default();
        for s in &view.follower.series.system {
            for (gpu, v) in (panel.values)(s) {
                by_gpu
                    .entry(gpu)
                    .or_default()
                    .push([s.elapsed_seconds / 60.0, v]);
            }
        }
        for (gpu, points) in by_gpu {
            let label = match gpu {
                Some(g) => format!("{} gpu{g}", name(id)),
                None => name(id),
            };
            lines.push(Line::new(label, PlotPoints::from(points)).color(series_color(i)));
        }
    }
    ui.label(egui::RichText::new(panel.title).strong());
    Plot::new(("system", panel.title))
        .height(height)
        .legend(Legend::default())
        .include_y(0.0)
        .x_axis_label("minutes")
        .label_formatter(|hover| {
            let (name, p) = hovered(hover);
            Some(format!("{name}\n{:.1} min\n{:.1}", p.x, p.y))
        })
        .show(ui, |plot_ui| {
            for line in lines {
                plot_ui.line(line);
            }
        });
}
