//! A passage with its answer spans marked: the gold answers, the predicted
//! one, and where they overlap. The predictions browser and the playground
//! draw passages this way.

use egui::text::LayoutJob;
use egui::{Color32, TextFormat};

pub const GOLD: Color32 = Color32::from_rgb(150, 220, 150);
pub const PREDICTED: Color32 = Color32::from_rgb(150, 190, 255);
/// Where gold and predicted overlap.
pub const BOTH: Color32 = Color32::from_rgb(120, 210, 210);

/// The context with gold spans and the predicted span in different colours
/// (character offsets, end exclusive).
pub fn highlighted(
    context: &str,
    golds: &[(usize, usize)],
    predicted: Option<(usize, usize)>,
    ui: &egui::Ui,
) -> LayoutJob {
    let base = TextFormat {
        font_id: egui::TextStyle::Body.resolve(ui.style()),
        color: ui.visuals().text_color(),
        ..Default::default()
    };
    let class = |c: usize| {
        let gold = golds.iter().any(|&(s, e)| s <= c && c < e);
        let pred = predicted.is_some_and(|(s, e)| s <= c && c < e);
        match (gold, pred) {
            (true, true) => Some(BOTH),
            (true, false) => Some(GOLD),
            (false, true) => Some(PREDICTED),
            (false, false) => None,
        }
    };
    let mut job = LayoutJob::default();
    job.wrap.max_width = ui.available_width();
    let mut run_start = 0;
    let mut run_class = None;
    let bytes: Vec<usize> = context
        .char_indices()
        .map(|(b, _)| b)
        .chain([context.len()])
        .collect();
    for (c, _) in context.chars().enumerate() {
        let k = class(c);
        if c == 0 {
            run_class = k;
        } else if k != run_class {
            append(
                &mut job,
                &context[bytes[run_start]..bytes[c]],
                run_class,
                &base,
            );
            run_start = c;
            run_class = k;
        }
    }
    append(
        &mut job,
        &context[bytes[run_start.min(bytes.len() - 1)]..],
        run_class,
        &base,
    );
    job
}

fn append(job: &mut LayoutJob, text: &str, class: Option<Color32>, base: &TextFormat) {
    let mut format = base.clone();
    if let Some(bg) = class {
        format.background = bg;
        format.color = Color32::BLACK;
    }
    job.append(text, 0.0, format);
}
