//! The app: one frame drains the runs' events, re-reads the store when due,
//! and draws the sidebar and the current tab. Nothing here blocks: training,
//! loading predictions and answering questions all run on other threads.

use super::browse::Browser;
use super::jobs::Jobs;
use super::live::LiveCache;
use super::new_run::NewRunForm;
use super::playground::Playground;
use super::predictions::PredictionsView;
use super::results::ResultsView;
use super::runs::Runs;
use super::shots::ShotScript;
use super::sidebar::SidebarState;
use super::state::{Tab, UiState, STATE_KEY};
use squadlab_core::store::store_root;
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

pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// What closing the window does while runs train.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Closing {
    No,
    Asking,
    /// Runs were asked to stop with a checkpoint; close when they have.
    AfterCancel,
    /// Close when the runs end by themselves.
    AfterRuns,
}

pub struct SquadlabApp {
    pub state: UiState,
    pub runs: Runs,
    pub jobs: Jobs,
    /// When the store's queue was last looked at for runs to take.
    adopted_at: std::time::Instant,
    pub new_run: NewRunForm,
    pub predictions: PredictionsView,
    pub results: ResultsView,
    pub playground: Playground,
    pub sweeps: super::sweeps::SweepsView,
    pub notices: Vec<Notice>,
    pub(super) sidebar: SidebarState,
    pub(super) live: LiveCache,
    pub(super) browser: Option<Browser>,
    pub(super) closing: Closing,
    pub(super) shots: Option<ShotScript>,
    pub(super) captures: Vec<super::shots::Capture>,
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
            new_run: NewRunForm::new(),
            state,
            runs,
            jobs: Jobs::default(),
            adopted_at: std::time::Instant::now(),
            predictions: PredictionsView::default(),
            results: ResultsView::default(),
            playground: Playground::default(),
            sweeps: Default::default(),
            notices: Vec::new(),
            sidebar: SidebarState::default(),
            live: LiveCache::default(),
            browser: None,
            closing: Closing::No,
            shots: options
                .screenshots
                .clone()
                .map(|dir| ShotScript::new(dir, options.screenshot_views.clone())),
            captures: Vec::new(),
            persist: options.screenshots.is_none(),
        };
        app.runs.refresh(&app.state.selected, true);
        app
    }

    pub fn notify(&mut self, text: impl Into<String>) {
        self.notices.push(Notice {
            text: text.into(),
            error: false,
        });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.notices.push(Notice {
            text: text.into(),
            error: true,
        });
    }

    /// Switches to another store folder.
    pub fn open_store(&mut self, root: PathBuf) {
        self.state.store = Some(root.clone());
        self.state.selected.clear();
        self.runs = Runs::open(root);
        self.predictions = PredictionsView::default();
        self.live = LiveCache::default();
    }

    /// A new file `<store>/exports/<what>-<UTC time>.<ext>` for an export.
    pub fn export_path(&self, what: &str, ext: &str) -> PathBuf {
        let stamp = squadlab_core::store::utc_stamp(std::time::SystemTime::now());
        let file = format!("{what}-{stamp}.{ext}");
        self.runs.store.root.join("exports").join(file)
    }

    /// Exports the selected runs' metrics as TensorBoard event files, one
    /// folder per run under `<store>/exports/tensorboard/`; returns that folder.
    pub fn export_tensorboard(&mut self) -> anyhow::Result<PathBuf> {
        let root = self.runs.store.root.join("exports").join("tensorboard");
        for id in self.state.selected.clone() {
            let Some(view) = self.runs.get(&id) else {
                continue;
            };
            let dir = view.entry.dir.clone();
            squadlab_core::report::tensorboard::export_run_dir(&dir, &root.join(&id))?;
        }
        Ok(root)
    }

    /// The run whose details the single-run views show: the last one selected.
    pub fn primary(&self) -> Option<&str> {
        self.state.selected.last().map(String::as_str)
    }

    /// One frame's work that draws nothing: events in, store re-read.
    pub fn tick(&mut self, ctx: &egui::Context) {
        if self.jobs.store_root != self.runs.store.root {
            self.jobs.store_root = self.runs.store.root.clone();
        }
        if self.state.train_store_queue && self.adopted_at.elapsed() > Duration::from_secs(2) {
            self.adopted_at = std::time::Instant::now();
            let threads = Some(self.new_run.threads);
            for id in self.jobs.adopt(&self.runs.store, threads) {
                self.notify(format!("taking queued run {id} from the store"));
            }
        }
        let changed = self.jobs.poll(ctx);
        self.runs.refresh(&self.state.selected, !changed.is_empty());
        self.predictions.poll();
        self.playground.poll();
        self.poll_captures();
    }

    /// Asks for the next frame when something will change without input.
    /// Worker threads answer through channels polled each frame: while any is
    /// busy frames keep coming, or its result would wait for a mouse move.
    /// Called after the views, which may have just started one.
    fn schedule_repaint(&self, ctx: &egui::Context) {
        let waiting =
            self.predictions.is_loading() || self.playground.is_busy() || !self.captures.is_empty();
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
                self.browser = Some(Browser::folder(
                    super::browse::Purpose::Store,
                    &self.runs.store.root,
                ));
            }
        });
    }

    fn notices(&mut self, ui: &mut egui::Ui) {
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
            ctx.memory_mut(|m| m.request_focus(super::sidebar::filter_id()));
        }
        if pressed(Key::R) {
            self.reread_store();
        }
    }

    /// Re-reads the store on request; a run scored again since is tested again.
    pub(super) fn reread_store(&mut self) {
        self.runs.refresh(&self.state.selected, true);
        self.results.tests.clear();
    }
}

impl eframe::App for SquadlabApp {
    /// Runs before every frame, and also while the window is hidden or
    /// minimised whenever a run's thread asks for a repaint: events are drained
    /// and queued runs started even when nothing is drawn.
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.tick(ctx);
        self.handle_close(ctx);
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
                .show(ui, |ui| self.notices(ui));
        }
        egui::Panel::left("runs")
            .resizable(true)
            .default_size(340.0)
            .frame(egui::Frame::side_top_panel(ui.style()))
            .show(ui, |ui| self.sidebar(ui));
        egui::CentralPanel::default()
            .frame(egui::Frame::central_panel(ui.style()))
            .show(ui, |ui| match self.state.tab {
                Tab::Live => self.live_view(ui),
                Tab::Results => self.results_view(ui),
                Tab::Predictions => self.predictions_view(ui),
                Tab::Playground => self.playground_view(ui),
                Tab::NewRun => self.new_run_view(ui),
                Tab::Sweeps => self.sweeps_view(ui),
            });
        self.browser_window(&ctx);
        self.close_dialog(&ctx);
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
