//! Window captures: "Save plots as PNG" on the live view, and the scripted
//! screenshots of the README (`squadlab gui --screenshots DIR`), taken from
//! real runs once their data has loaded.

use super::app::SquadlabApp;
use super::png::save_png;
use super::predictions::Category;
use super::state::Tab;
use crossbeam_channel::{bounded, Receiver};
use std::path::PathBuf;

pub type Capture = Receiver<Result<PathBuf, String>>;

/// Asks the window for a capture of `region` (whole window if None), saved to `path`.
fn capture(ctx: &egui::Context, region: Option<egui::Rect>, path: PathBuf) -> Capture {
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

impl SquadlabApp {
    /// Saves `region` of the window as `<store>/exports/<what>-<time>.png`.
    pub(super) fn save_png(&mut self, ctx: &egui::Context, region: Option<egui::Rect>, what: &str) {
        let path = self.export_path(what, "png");
        self.captures.push(capture(ctx, region, path));
    }

    /// Reports finished captures.
    pub(super) fn poll_captures(&mut self) {
        let mut done = Vec::new();
        self.captures.retain(|rx| match rx.try_recv() {
            Ok(r) => {
                done.push(r);
                false
            }
            Err(_) => true,
        });
        for r in done {
            match r {
                Ok(p) => self.notify(format!("wrote {}", p.display())),
                Err(e) => self.error(format!("cannot save the PNG: {e}")),
            }
        }
    }

    /// Steps the screenshot script: each view is shown, given time to load
    /// and lay out, captured, and the app quits after the last.
    pub(super) fn run_shots(&mut self, ctx: &egui::Context) {
        let Some(mut script) = self.shots.take() else {
            return;
        };
        ctx.request_repaint();
        if let Some(rx) = &script.waiting {
            match rx.try_recv() {
                Ok(Ok(path)) => {
                    eprintln!("wrote {}", path.display());
                    script.waiting = None;
                    script.stage += 1;
                    script.frames = 0;
                }
                Ok(Err(e)) => {
                    eprintln!("error: screenshot failed: {e}");
                    std::process::exit(1);
                }
                Err(_) => {}
            }
            self.shots = Some(script);
            return;
        }
        let Some((tab, file)) = script.stages.get(script.stage).cloned() else {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        };
        self.state.tab = tab;
        script.frames += 1;
        if tab == Tab::Predictions {
            // Wait for the predictions to load, if there are any to load.
            let scored = self
                .primary()
                .and_then(|id| self.runs.get(id))
                .is_some_and(|v| v.entry.is_scored());
            let waiting = self.predictions.is_loading()
                || (scored && self.predictions.set.is_none() && self.predictions.error.is_none());
            if waiting && script.frames < 2000 {
                self.shots = Some(script);
                return;
            }
            if self.predictions.set.is_some() && self.predictions.selected.is_none() {
                // A partly right answer shows both highlights at once.
                self.predictions.filter.category = Category::Partial;
                self.predictions.selected = self.predictions.shown().get(2).copied();
                self.predictions.filter.category = Category::All;
            }
        }
        if tab == Tab::Results && script.frames < 2000 {
            // Wait for the paired tests against the base run.
            let testing = self
                .results
                .tests
                .values()
                .any(|t| matches!(t, super::results::PairTest::Running(_)));
            if testing || script.frames < 5 {
                self.shots = Some(script);
                return;
            }
        }
        if tab == Tab::Sweeps && self.sweeps.is_testing() && script.frames < 2000 {
            self.shots = Some(script);
            return;
        }
        if script.frames > 20 {
            script.waiting = Some(capture(ctx, None, script.dir.join(&file)));
        }
        self.shots = Some(script);
    }
}

/// `VIEW=FILE` of `--screenshot`: a view (live, results, predictions,
/// playground, new-run) and the PNG file it is saved as.
pub fn parse_view(spec: &str) -> Result<(Tab, String), String> {
    let (view, file) = spec.split_once('=').ok_or_else(|| {
        format!("--screenshot {spec:?}: expected VIEW=FILE, as live=live-view.png")
    })?;
    let tab = match view {
        "live" => Tab::Live,
        "results" => Tab::Results,
        "predictions" => Tab::Predictions,
        "playground" => Tab::Playground,
        "new-run" => Tab::NewRun,
        "sweeps" => Tab::Sweeps,
        other => {
            return Err(format!(
                "--screenshot: unknown view {other:?}; expected live, results, predictions, playground, new-run or sweeps"
            ))
        }
    };
    Ok((tab, file.to_string()))
}
