//! What a view is given each frame instead of the app: the store's runs, the
//! selection and the remembered settings, the app's training jobs, the
//! notices, window captures, and a list of requests for what only the app
//! may do (switch tabs, open the file chooser, fill in the New run form).
//! Views import this file and never the app or each other, so a change to
//! one view touches no other (as rerun's viewer context, egui_demo_lib's
//! views).

use super::browse::Browser;
use super::capture::Captures;
use super::jobs::Jobs;
use super::runs::Runs;
use super::state::{Tab, UiState};
use squadlab_core::config::RunConfig;
use squadlab_core::report::Dimension;
use std::path::PathBuf;

/// One view of the app: it owns its state and draws itself from the context.
pub trait View {
    fn ui(&mut self, ui: &mut egui::Ui, cx: &mut AppContext<'_>);

    /// Takes in what worker threads have answered; called every frame,
    /// whichever tab is shown.
    fn poll(&mut self) {}

    /// A worker thread is busy for this view: frames keep coming until it
    /// answers, or its result would wait for a mouse move.
    fn is_waiting(&self) -> bool {
        false
    }

    /// Whether the view has settled for a scripted screenshot (its data
    /// loaded, its tests done); it may choose what to show meanwhile.
    fn settle_for_screenshot(&mut self, _cx: &AppContext<'_>) -> bool {
        !self.is_waiting()
    }
}

pub struct Notice {
    pub text: String,
    pub error: bool,
}

impl Notice {
    pub fn info(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            error: false,
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            error: true,
        }
    }
}

/// What the app asks of itself on a view's behalf, done after the frame's
/// views have drawn.
pub enum Request {
    Show(Tab),
    /// Open the file chooser; what is chosen goes to the view it is for.
    Browse(Box<Browser>),
    /// Re-read the store now; runs scored again since are tested again.
    RereadStore,
    /// Fill in the New run form from a config and show it.
    NewRunFrom {
        config: Box<RunConfig>,
        origin: String,
    },
    /// Show the predictions browser on `run`'s questions in one bucket of
    /// a breakdown.
    ShowBucket {
        run: String,
        dimension: Dimension,
        bucket: String,
    },
}

pub struct AppContext<'a> {
    pub runs: &'a mut Runs,
    /// The selection (`state.selected`) and the settings saved between
    /// sessions.
    pub state: &'a mut UiState,
    pub jobs: &'a mut Jobs,
    pub notices: &'a mut Vec<Notice>,
    pub captures: &'a mut Captures,
    pub requests: &'a mut Vec<Request>,
    /// CPU threads a run started from the app trains with (the New run
    /// form's setting): resumed and adopted runs use it too.
    pub threads: usize,
}

impl AppContext<'_> {
    pub fn notify(&mut self, text: impl Into<String>) {
        self.notices.push(Notice::info(text));
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.notices.push(Notice::error(text));
    }

    pub fn request(&mut self, request: Request) {
        self.requests.push(request);
    }

    /// The run whose details the single-run views show: the last one selected.
    pub fn primary(&self) -> Option<&str> {
        self.state.selected.last().map(String::as_str)
    }

    /// Selects a run; with `add`, toggles it in a multi-selection.
    pub fn select(&mut self, id: String, add: bool) {
        select(self.state, self.runs, id, add);
    }

    /// A new file `<store>/exports/<what>-<UTC time>.<ext>` for an export.
    pub fn export_path(&self, what: &str, ext: &str) -> PathBuf {
        export_path(self.runs, what, ext)
    }

    /// Saves `region` of the window (all of it if None) as
    /// `<store>/exports/<what>-<time>.png`; a notice says when it is written.
    pub fn save_png(&mut self, ctx: &egui::Context, region: Option<egui::Rect>, what: &str) {
        let path = self.export_path(what, "png");
        self.captures.start(ctx, region, path);
    }

    /// A run's name in legends: its label, with its id when another selected
    /// run has the same label (legend entries of one name merge).
    pub fn series_name(&self, id: &str) -> String {
        series_name(self.runs, &self.state.selected, id)
    }
}

pub fn select(state: &mut UiState, runs: &mut Runs, id: String, add: bool) {
    let selected = &mut state.selected;
    if add {
        if let Some(i) = selected.iter().position(|s| *s == id) {
            selected.remove(i);
        } else {
            selected.push(id);
        }
    } else {
        *selected = vec![id];
    }
    runs.refresh(&state.selected, true);
}

pub fn export_path(runs: &Runs, what: &str, ext: &str) -> PathBuf {
    let stamp = squadlab_core::store::utc_stamp(std::time::SystemTime::now());
    let file = format!("{what}-{stamp}.{ext}");
    runs.store.root.join("exports").join(file)
}

pub fn series_name(runs: &Runs, selected: &[String], id: &str) -> String {
    let label = |id: &str| runs.get(id).map_or(id.to_string(), |v| v.label());
    let mine = label(id);
    let clash = selected.iter().filter(|o| label(o) == mine).count() > 1;
    if clash {
        format!("{mine} ({id})")
    } else {
        mine
    }
}
