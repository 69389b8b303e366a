//! The app: one frame drains the runs' events, re-reads the store when due,
//! and draws the sidebar and the current tab. Nothing here blocks: training,
//! loading predictions and answering questions all run on other threads.
//!
//! Each view owns its state and draws from an [`AppContext`] (context.rs);
//! this file alone knows them all. What a view asks of the app (another
//! tab, the file chooser, a config for the New run form) comes back as a
//! [`Request`], done after the views have drawn.

use super::analysis::AnalysisView;
use super::browse::{Browser, Purpose};
use super::capture::Captures;
use super::close::Closing;
use super::context::{self, AppContext, Notice, Request, View};
use super::jobs::Jobs;
use super::live::LiveView;
use super::new_run::NewRunForm;
use super::playground::Playground;
use super::predictions::{Category, PredictionsView};
use super::results::ResultsView;
use super::runs::Runs;
use super::shots::ShotScript;
use super::sidebar::{filter_id, RunsSidebar};
use super::state::{Tab, UiState, STATE_KEY};
use super::sweeps::SweepsView;
use squadlab_core::report::{Dimension, Row};
use squadlab_core::store::store_root;
use squadlab_core::sweep::table::PointRow;
use std::path::PathBuf;
use std::time::Duration;

/// How the app was started.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Open this store instead of the one remembered.
    pub store: Option<PathBuf>,
    /// Select these runs (ids, names or prefixes) on start.
    pub select: Vec<String>,
    /// Save screenshots of the main views into this folder, then quit.
    pub screenshots: Option<PathBuf>,
    /// Only these views, under these file names (default: the README's set).
    pub screenshot_views: Vec<(Tab, String)>,
}

/// The tabs' views, each with its own state.
#[derive(Default)]
struct Views {
    live: LiveView,
    results: ResultsView,
    predictions: PredictionsView,
    analysis: AnalysisView,
    playground: Playground,
    new_run: NewRunForm,
    sweeps: SweepsView,
    sidebar: RunsSidebar,
}

impl Views {
    fn tab(&mut self, tab: Tab) -> &mut dyn View {
        match tab {
            Tab::Live => &mut self.live,
            Tab::Results => &mut self.results,
            Tab::Predictions => &mut self.predictions,
            Tab::Analysis => &mut self.analysis,
            Tab::Playground => &mut self.playground,
            Tab::NewRun => &mut self.new_run,
            Tab::Sweeps => &mut self.sweeps,
        }
    }

    fn all(&mut self) -> [&mut dyn View; 8] {
        [
            &mut self.live,
            &mut self.results,
            &mut self.predictions,
            &mut self.analysis,
            &mut self.playground,
            &mut self.new_run,
            &mut self.sweeps,
            &mut self.sidebar,
        ]
    }

    /// Whether any view waits on a worker thread (predictions loading, a
    /// question being answered, the sweep's tests against the best).
    fn any_waiting(&self) -> bool {
        let views: [&dyn View; 8] = [
            &self.live,
            &self.results,
            &self.predictions,
            &self.analysis,
            &self.playground,
            &self.new_run,
            &self.sweeps,
            &self.sidebar,
        ];
        views.iter().any(|v| v.is_waiting())
    }
}

/// Which view a frame draws into: a tab's, or the runs sidebar.
#[derive(Clone, Copy)]
enum Pane {
    Tab(Tab),
    Sidebar,
}

pub struct SquadlabApp {
    state: UiState,
    runs: Runs,
    jobs: Jobs,
    /// When the store's queue was last looked at for runs to take.
    adopted_at: std::time::Instant,
    views: Views,
    notices: Vec<Notice>,
    requests: Vec<Request>,
    captures: Captures,
    browser: Option<Browser>,
    closing: Closing,
    shots: Option<ShotScript>,
    /// Scripted runs leave the user's saved state alone.
    persist: bool,
}

impl SquadlabApp {
    /// The app as eframe starts it, with the state saved last time.
    pub fn new(cc: &eframe::CreationContext<'_>, options: AppOptions) -> Self {
        let state = cc
            .storage
            .and_then(|s| eframe::get_value::<UiState>(s, STATE_KEY))
            .unwrap_or_default();
        Self::with_state(state, options)
    }

    pub fn with_state(mut state: UiState, options: AppOptions) -> Self {
        // --store, then $SQUADLAB_HOME, then the store open last time.
        let given = options.store.clone().or_else(|| {
            std::env::var_os(squadlab_core::store::HOME_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        if given.is_some() {
            state.store = given;
        }
        let root = store_root(state.store.as_deref());
        let runs = Runs::open(root);
        if !options.select.is_empty() {
            state.selected = options
                .select
                .iter()
                .filter_map(|spec| runs.store.find(spec).ok())
                .filter_map(|dir| Some(dir.file_name()?.to_string_lossy().into_owned()))
                .collect();
        }
        let mut app = Self {
            state,
            runs,
            jobs: Jobs::default(),
            adopted_at: std::time::Instant::now(),
            views: Views::default(),
            notices: Vec::new(),
            requests: Vec::new(),
            captures: Captures::default(),
            browser: None,
            closing: Closing::No,
            shots: options
                .screenshots
                .clone()
                .map(|dir| ShotScript::new(dir, options.screenshot_views.clone())),
            persist: options.screenshots.is_none(),
        };
        app.runs.refresh(&app.state.selected, true);
        app
    }

    /// Runs `draw` on one view with the context made from the app's other
    /// parts, then does what the view asked for.
    fn with_view<R>(
        &mut self,
        pane: Pane,
        draw: impl FnOnce(&mut dyn View, &mut AppContext<'_>) -> R,
    ) -> R {
        let threads = self.views.new_run.threads;
        let view: &mut dyn View = match pane {
            Pane::Tab(tab) => self.views.tab(tab),
            Pane::Sidebar => &mut self.views.sidebar,
        };
        let mut cx = AppContext {
            runs: &mut self.runs,
            state: &mut self.state,
            jobs: &mut self.jobs,
            notices: &mut self.notices,
            captures: &mut self.captures,
            requests: &mut self.requests,
            threads,
        };
        let out = draw(view, &mut cx);
        self.handle_requests();
        out
    }

    fn handle_requests(&mut self) {
        for request in std::mem::take(&mut self.requests) {
            match request {
                Request::Show(tab) => self.state.tab = tab,
                Request::Browse(browser) => self.browser = Some(*browser),
                Request::RereadStore => self.reread_store(),
                Request::NewRunFrom { config, origin } => {
                    self.views.new_run.load_config(*config, origin);
                    self.state.tab = Tab::NewRun;
                }
                Request::ShowBucket {
                    run,
                    dimension,
                    bucket,
                } => self.show_bucket(run, dimension, bucket),
            }
        }
    }

    pub fn notify(&mut self, text: impl Into<String>) {
        self.notices.push(Notice::info(text));
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.notices.push(Notice::error(text));
    }

    pub fn notices(&self) -> &[Notice] {
        &self.notices
    }

    /// Switches to another store folder.
    pub fn open_store(&mut self, root: PathBuf) {
        self.state.store = Some(root.clone());
        self.state.selected.clear();
        self.runs = Runs::open(root);
        self.views.predictions = PredictionsView::default();
        self.views.live = LiveView::default();
    }

    /// The run whose details the single-run views show: the last one selected.
    pub fn primary(&self) -> Option<&str> {
        self.state.selected.last().map(String::as_str)
    }

    /// Selects a run; with `add`, toggles it in a multi-selection.
    pub fn select(&mut self, id: String, add: bool) {
        context::select(&mut self.state, &mut self.runs, id, add);
    }

    pub fn selected(&self) -> &[String] {
        &self.state.selected
    }

    pub fn tab(&self) -> Tab {
        self.state.tab
    }

    pub fn show(&mut self, tab: Tab) {
        self.state.tab = tab;
    }

    /// The settings saved between sessions.
    pub fn ui_state(&self) -> &UiState {
        &self.state
    }

    pub fn ui_state_mut(&mut self) -> &mut UiState {
        &mut self.state
    }

    pub fn runs(&self) -> &Runs {
        &self.runs
    }

    pub fn runs_mut(&mut self) -> &mut Runs {
        &mut self.runs
    }

    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    pub fn live(&self) -> &LiveView {
        &self.views.live
    }

    pub fn results(&self) -> &ResultsView {
        &self.views.results
    }

    pub fn results_mut(&mut self) -> &mut ResultsView {
        &mut self.views.results
    }

    pub fn predictions(&self) -> &PredictionsView {
        &self.views.predictions
    }

    pub fn predictions_mut(&mut self) -> &mut PredictionsView {
        &mut self.views.predictions
    }

    pub fn analysis(&self) -> &AnalysisView {
        &self.views.analysis
    }

    pub fn analysis_mut(&mut self) -> &mut AnalysisView {
        &mut self.views.analysis
    }

    pub fn playground(&self) -> &Playground {
        &self.views.playground
    }

    pub fn playground_mut(&mut self) -> &mut Playground {
        &mut self.views.playground
    }

    pub fn new_run(&self) -> &NewRunForm {
        &self.views.new_run
    }

    pub fn new_run_mut(&mut self) -> &mut NewRunForm {
        &mut self.views.new_run
    }

    pub fn sweeps(&self) -> &SweepsView {
        &self.views.sweeps
    }

    pub fn sweeps_mut(&mut self) -> &mut SweepsView {
        &mut self.views.sweeps
    }

    /// The Results view's rows for the selected runs.
    pub fn result_rows(&self) -> anyhow::Result<Vec<Row>> {
        self.views.results.rows(&self.runs, &self.state.selected)
    }

    /// The Sweeps view's rows for the sweep it shows.
    pub fn sweep_rows(&mut self) -> Vec<PointRow> {
        self.views.sweeps.rows(&self.runs)
    }

    /// Opens a sweep file in the Sweeps view, as its chooser would.
    pub fn open_sweep_file(&mut self, path: PathBuf) {
        self.views.sweeps.open_file(&self.runs.store, path);
    }

    /// One frame's work that draws nothing: events in, store re-read.
    pub fn tick(&mut self, ctx: &egui::Context) {
        if self.jobs.store_root != self.runs.store.root {
            self.jobs.store_root = self.runs.store.root.clone();
        }
        if self.state.train_store_queue && self.adopted_at.elapsed() > Duration::from_secs(2) {
            self.adopted_at = std::time::Instant::now();
            let threads = Some(self.views.new_run.threads);
            for id in self.jobs.adopt(&self.runs.store, threads) {
                self.notify(format!("taking queued run {id} from the store"));
            }
        }
        let changed = self.jobs.poll(ctx);
        self.runs.refresh(&self.state.selected, !changed.is_empty());
        for view in self.views.all() {
            view.poll();
        }
        for done in self.captures.finished() {
            match done {
                Ok(p) => self.notify(format!("wrote {}", p.display())),
                Err(e) => self.error(format!("cannot save the PNG: {e}")),
            }
        }
    }

    /// Asks for the next frame when something will change without input.
    /// Worker threads answer through channels polled each frame: while any is
    /// busy frames keep coming, or its result would wait for a mouse move.
    /// Called after the views, which may have just started one.
    fn schedule_repaint(&self, ctx: &egui::Context) {
        let waiting = self.views.any_waiting() || !self.captures.is_empty();
        if self.runs.catching_up {
            ctx.request_repaint();
        } else if waiting {
            ctx.request_repaint_after(Duration::from_millis(50));
        } else if self.runs.views.iter().any(|v| v.is_active()) || self.jobs.active() > 0 {
            ctx.request_repaint_after(Duration::from_millis(250));
        }
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.heading("squadlab");
            ui.separator();
            for tab in Tab::ALL {
                let shortcut = format!("Ctrl+{}", tab as usize + 1);
                if ui
                    .selectable_label(self.state.tab == tab, tab.title())
                    .on_hover_text(shortcut)
                    .clicked()
                {
                    self.state.tab = tab;
                }
            }
            ui.separator();
            ui.label("Store:");
            ui.monospace(self.runs.store.root.display().to_string());
            if ui.button("Open store…").clicked() {
                self.browser = Some(Browser::folder(Purpose::Store, &self.runs.store.root));
            }
        });
    }

    fn notice_lines(&mut self, ui: &mut egui::Ui) {
        let mut dismissed = None;
        for (i, notice) in self.notices.iter().enumerate().rev().take(4) {
            ui.horizontal(|ui| {
                let color = if notice.error {
                    ui.visuals().error_fg_color
                } else {
                    ui.visuals().text_color()
                };
                if ui.small_button("x").clicked() {
                    dismissed = Some(i);
                }
                ui.colored_label(color, &notice.text);
            });
        }
        if let Some(i) = dismissed {
            self.notices.remove(i);
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) {
        use egui::{Key, Modifiers};
        let pressed = |key| ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, key));
        let keys = [
            Key::Num1,
            Key::Num2,
            Key::Num3,
            Key::Num4,
            Key::Num5,
            Key::Num6,
            Key::Num7,
        ];
        for (tab, key) in Tab::ALL.into_iter().zip(keys) {
            if pressed(key) {
                self.state.tab = tab;
            }
        }
        if pressed(Key::N) {
            self.state.tab = Tab::NewRun;
        }
        if pressed(Key::F) {
            ctx.memory_mut(|m| m.request_focus(filter_id()));
        }
        if pressed(Key::R) {
            self.reread_store();
        }
    }

    /// Re-reads the store on request; a run scored again since is tested again.
    fn reread_store(&mut self) {
        self.runs.refresh(&self.state.selected, true);
        self.views.results.clear_tests();
        self.views.analysis.clear();
    }

    /// The predictions browser on `run`'s questions of one bucket: the run
    /// becomes the one the single-run views show (the others stay selected).
    fn show_bucket(&mut self, run: String, dimension: Dimension, bucket: String) {
        let selected = &mut self.state.selected;
        selected.retain(|id| *id != run);
        selected.push(run);
        self.runs.refresh(&self.state.selected, true);
        let filter = &mut self.views.predictions.filter;
        // Only the bucket: what the bar counted.
        filter.bucket = Some((dimension, bucket));
        filter.category = Category::All;
        filter.title = None;
        filter.search.clear();
        self.views.predictions.selected = None;
        self.state.tab = Tab::Predictions;
    }

    /// The file chooser, while open; what it chose goes to the view it is for.
    fn browser_window(&mut self, ctx: &egui::Context) {
        let Some(browser) = &mut self.browser else {
            return;
        };
        let purpose = browser.purpose();
        let Some(outcome) = browser.window(ctx) else {
            return;
        };
        self.browser = None;
        let Some(path) = outcome else {
            return;
        };
        match purpose {
            Purpose::Store => self.open_store(path),
            Purpose::SweepFile => self.views.sweeps.open_file(&self.runs.store, path),
            other => self.views.new_run.chose_path(other, path),
        }
    }

    /// Steps the screenshot script: shows its view and captures it once the
    /// view has settled.
    fn run_shots(&mut self, ctx: &egui::Context) {
        let Some(mut script) = self.shots.take() else {
            return;
        };
        let settled = match script.tab() {
            Some(tab) => {
                self.state.tab = tab;
                self.with_view(Pane::Tab(tab), |view, cx| view.settle_for_screenshot(cx))
            }
            None => true,
        };
        script.step(ctx, settled);
        self.shots = Some(script);
    }
}

impl eframe::App for SquadlabApp {
    /// Runs before every frame, and also while the window is hidden or
    /// minimised whenever a run's thread asks for a repaint: events are drained
    /// and queued runs started even when nothing is drawn.
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.tick(ctx);
        self.closing.handle(ctx, &self.jobs);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.shortcuts(&ctx);
        egui::Panel::top("top")
            .frame(egui::Frame::side_top_panel(ui.style()))
            .show(ui, |ui| self.top_bar(ui));
        if !self.notices.is_empty() {
            egui::Panel::bottom("notices")
                .frame(egui::Frame::side_top_panel(ui.style()))
                .show(ui, |ui| self.notice_lines(ui));
        }
        egui::Panel::left("runs")
            .resizable(true)
            .default_size(340.0)
            .frame(egui::Frame::side_top_panel(ui.style()))
            .show(ui, |ui| {
                self.with_view(Pane::Sidebar, |view, cx| view.ui(ui, cx));
            });
        let tab = self.state.tab;
        egui::CentralPanel::default()
            .frame(egui::Frame::central_panel(ui.style()))
            .show(ui, |ui| {
                self.with_view(Pane::Tab(tab), |view, cx| view.ui(ui, cx));
            });
        self.browser_window(&ctx);
        self.closing.dialog(&ctx, &mut self.jobs);
        self.run_shots(&ctx);
        self.schedule_repaint(&ctx);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if !self.persist {
            return;
        }
        eframe::set_value(storage, STATE_KEY, &self.state);
    }
}
