//! The desktop app (eframe + egui_plot): watch runs live, launch new ones,
//! read results against the paper, browse every prediction. It is one more
//! consumer of the trainer's event stream and a reader of the run store; all
//! it does, the CLI can do too.

mod analysis;
mod analysis_chart;
mod app;
mod browse;
mod capture;
mod close;
mod context;
mod curves;
mod eval_plot;
mod follow;
mod jobs;
mod live;
mod memory_line;
mod new_run;
mod parallel;
mod playground;
mod png;
mod predictions;
mod predictions_data;
mod results;
mod runs;
mod shots;
mod sidebar;
mod spans;
mod state;
mod sweep_table;
mod sweeps;
mod system_plot;
mod widgets;

pub use analysis::AnalysisView;
pub use app::{AppOptions, SquadlabApp};
pub use context::{AppContext, Notice, Request, View};
pub use follow::{Follower, Series};
pub use jobs::{Job, JobState, Jobs};
pub use live::LiveView;
pub use memory_line::{
    tone as memory_tone, Locator, MemoryProbe, Planned, Tone as MemoryTone, SETTLE as MEMORY_SETTLE,
};
pub use new_run::{DataMode, NewRunForm};
pub use playground::Playground;
pub use predictions::{filter_questions, Category, Filter, PredictionsView, Sort};
pub use predictions_data::{PredictionSet, Question};
pub use results::PairTest;
pub use results::ResultsView;
pub use runs::{RunView, Runs};
pub use shots::parse_view as parse_screenshot_view;
pub use sidebar::RunsSidebar;
pub use state::{Tab, UiState};
pub use sweeps::{SortKey, SweepsView};

/// Opens the app window and runs until it is closed.
pub fn run(options: AppOptions) -> anyhow::Result<()> {
    let scripted = options.screenshots.is_some();
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("squadlab")
            .with_inner_size([1400.0, 880.0]),
        // Scripted screenshots start from a clean state, not the user's.
        persist_window: !scripted,
        ..Default::default()
    };
    eframe::run_native(
        "squadlab",
        native,
        Box::new(move |cc| {
            if scripted {
                return Ok(Box::new(SquadlabApp::with_state(
                    UiState::default(),
                    options,
                )));
            }
            Ok(Box::new(SquadlabApp::new(cc, options)))
        }),
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot open the window: {e}\n(on a machine without a display, use the commands: squadlab --help)"
        )
    })
}
