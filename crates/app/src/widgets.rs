//! Small pieces several views share.

use egui::Color32;
use squadlab_core::store::{RunStatus, Shown};

pub fn status_color(shown: Shown) -> Color32 {
    match shown {
        Shown::Is(RunStatus::Running) => Color32::from_rgb(80, 150, 255),
        Shown::Is(RunStatus::Queued) => Color32::GRAY,
        Shown::Is(RunStatus::Finished) => Color32::from_rgb(60, 180, 90),
        Shown::Is(RunStatus::Failed) => Color32::from_rgb(230, 70, 70),
        Shown::Is(RunStatus::Cancelled) => Color32::from_rgb(230, 150, 40),
        Shown::Is(RunStatus::Diverged) => Color32::from_rgb(200, 80, 200),
        Shown::Interrupted => Color32::from_rgb(220, 200, 40),
        Shown::Damaged => Color32::from_rgb(170, 40, 40),
    }
}

/// A run's colour in plots, stable across frames.
pub fn series_color(index: usize) -> Color32 {
    const PALETTE: [Color32; 8] = [
        Color32::from_rgb(31, 119, 180),
        Color32::from_rgb(255, 127, 14),
        Color32::from_rgb(44, 160, 44),
        Color32::from_rgb(214, 39, 40),
        Color32::from_rgb(148, 103, 189),
        Color32::from_rgb(140, 86, 75),
        Color32::from_rgb(227, 119, 194),
        Color32::from_rgb(23, 190, 207),
    ];
    PALETTE[index % PALETTE.len()]
}

/// "3 min ago", "2 h ago", "5 d ago".
pub fn age(created: &str) -> String {
    let Some(then) = squadlab_core::store::parse_rfc3339(created) else {
        return String::new();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let s = (now - then).max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// "1 h 02 min", "4 min 10 s".
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

/// The curve a plot's pointer is near (its name; empty when none) and the
/// point under it.
pub fn hovered<'a>(hover: &egui_plot::HoverPosition<'a>) -> (&'a str, egui_plot::PlotPoint) {
    match hover {
        egui_plot::HoverPosition::NearDataPoint {
            plot_name,
            position,
            ..
        } => (plot_name, *position),
        egui_plot::HoverPosition::Elsewhere { position } => ("", *position),
    }
}

/// An axis labelled at whole numbers only, with `labels[i]` at i: the
/// slots of a bar chart (Results' runs, Analysis' buckets).
pub fn slot_label(labels: &[String], mark: egui_plot::GridMark) -> String {
    let i = mark.value.round();
    if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// The export buttons the table views share; the format clicked, if any.
pub fn export_buttons(ui: &mut egui::Ui) -> Option<squadlab_core::report::Format> {
    use squadlab_core::report::Format;
    let mut chosen = None;
    for (label, format) in [
        ("Export Markdown", Format::Markdown),
        ("Export CSV", Format::Csv),
        ("Export LaTeX", Format::Latex),
    ] {
        if ui.button(label).clicked() {
            chosen = Some(format);
        }
    }
    chosen
}
