//! Window captures saved as PNG: "Save plots as PNG" and the other exports of
//! the views, and the scripted screenshots of the README.

use super::png::save_png;
use crossbeam_channel::{bounded, Receiver};
use std::path::PathBuf;

/// A capture under way: the file written, or why not.
pub type Capture = Receiver<Result<PathBuf, String>>;

/// Asks the window for a capture of `region` (whole window if None), saved to `path`.
pub fn capture(ctx: &egui::Context, region: Option<egui::Rect>, path: PathBuf) -> Capture {
    let (tx, rx) = bounded(1);
    let ppp = ctx.pixels_per_point();
    ctx.request_screenshot(move |image| {
        let result = save_png(&image, region, ppp, &path)
            .map(|()| path)
            .map_err(|e| format!("{e:#}"));
        let _ = tx.send(result);
    });
    ctx.request_repaint();
    rx
}

/// The captures the views asked for that have not been written yet.
#[derive(Default)]
pub struct Captures {
    waiting: Vec<Capture>,
}

impl Captures {
    pub fn start(&mut self, ctx: &egui::Context, region: Option<egui::Rect>, path: PathBuf) {
        self.waiting.push(capture(ctx, region, path));
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// The captures finished since the last call: each file, or why it failed.
    pub fn finished(&mut self) -> Vec<Result<PathBuf, String>> {
        let mut done = Vec::new();
        self.waiting.retain(|rx| match rx.try_recv() {
            Ok(r) => {
                done.push(r);
                false
            }
            Err(_) => true,
        });
        done
    }
}
