//! The scripted screenshots of the README (`squadlab gui --screenshots DIR`), taken from
//! real runs once their data has loaded.

use super::capture::{capture, Capture};
use super::state::Tab;
use std::path::PathBuf;

pub(super) struct ShotScript {
    dir: PathBuf,
    stages: Vec<(Tab, String)>,
    stage: usize,
    frames: u32,
    waiting: Option<Capture>,
}

const STAGES: [(Tab, &str); 4] = [
    (Tab::Live, "live-view.png"),
    (Tab::Results, "results.png"),
    (Tab::Predictions, "predictions.png"),
    (Tab::NewRun, "new-run.png"),
];

impl ShotScript {
    /// Captures `views` (tab, file name) into `dir`; none given, the README's four.
    pub fn new(dir: PathBuf, views: Vec<(Tab, String)>) -> Self {
        let stages = if views.is_empty() {
            STAGES.iter().map(|&(t, f)| (t, f.to_string())).collect()
        } else {
            views
        };
        Self {
            dir,
            stages,
            stage: 0,
            frames: 0,
            waiting: None,
        }
    }
}

impl ShotScript {
    /// The view to show now; None once every view is captured.
    pub fn tab(&self) -> Option<Tab> {
        self.stages.get(self.stage).map(|(tab, _)| *tab)
    }

    /// Steps the script after a frame of the view [`ShotScript::tab`] named:
    /// each view is given time to load and lay out (`settled`: its data is
    /// in, its tests done), captured, and the window is closed after the last.
    pub fn step(&mut self, ctx: &egui::Context, settled: bool) {
        ctx.request_repaint();
        if let Some(rx) = &self.waiting {
            match rx.try_recv() {
                Ok(Ok(path)) => {
                    eprintln!("wrote {}", path.display());
                    self.waiting = None;
                    self.stage += 1;
                    self.frames = 0;
                }
                Ok(Err(e)) => {
                    eprintln!("error: screenshot failed: {e}");
                    std::process::exit(1);
                }
                Err(_) => {}
            }
            return;
        }
        let Some((_, file)) = self.stages.get(self.stage) else {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        };
        self.frames += 1;
        // A view that never settles is captured as it is after 2000 frames.
        if !settled && self.frames < 2000 {
            return;
        }
        if self.frames > 20 {
            self.waiting = Some(capture(ctx, None, self.dir.join(file)));
        }
    }
}

/// `VIEW=FILE` of `--screenshot`: a view (live, results, predictions,
/// analysis, playground, new-run, sweeps) and the PNG file it is saved as.
pub fn parse_view(spec: &str) -> Result<(Tab, String), String> {
    let (view, file) = spec.split_once('=').ok_or_else(|| {
        format!("--screenshot {spec:?}: expected VIEW=FILE, as live=live-view.png")
    })?;
    let tab = match view {
        "live" => Tab::Live,
        "results" => Tab::Results,
        "predictions" => Tab::Predictions,
        "analysis" => Tab::Analysis,
        "playground" => Tab::Playground,
        "new-run" => Tab::NewRun,
        "sweeps" => Tab::Sweeps,
        other => {
            return Err(format!(
                "--screenshot: unknown view {other:?}; expected live, results, predictions, analysis, playground, new-run or sweeps"
            ))
        }
    };
    Ok((tab, file.to_string()))
}
