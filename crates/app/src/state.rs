//! What the app remembers between sessions. Panel sizes are egui's own memory,
//! saved with it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tab {
    Live,
    Results,
    Predictions,
    Analysis,
    Playground,
    NewRun,
    Sweeps,
}

impl Tab {
    pub const ALL: [Tab; 7] = [
        Tab::Live,
        Tab::Results,
        Tab::Predictions,
        Tab::Analysis,
        Tab::Playground,
        Tab::NewRun,
        Tab::Sweeps,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Live => "Live",
            Tab::Results => "Results",
            Tab::Predictions => "Predictions",
            Tab::Analysis => "Analysis",
            Tab::Playground => "Playground",
            Tab::NewRun => "New run",
            Tab::Sweeps => "Sweeps",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct UiState {
    /// The store last opened; None: `$SQUADLAB_HOME`, else `experiments/`.
    pub store: Option<PathBuf>,
    pub selected: Vec<String>,
    pub tab: Tab,
    /// EMA weight of the smoothed curves, 0 (raw) to 0.999.
    pub smoothing: f32,
    pub show_raw: bool,
    pub log_loss: bool,
    /// Draw every point instead of about two per pixel column (slow on long runs).
    pub every_point: bool,
    pub filter: String,
    /// Also train the runs other processes queued in the store (the CLI's
    /// `train --queue`, a sweep), as a worker would.
    pub train_store_queue: bool,
}

impl Default for UiState {
    fn default() -> Self {
        Self {
            store: None,
            selected: Vec::new(),
            tab: Tab::Live,
            smoothing: 0.9,
            show_raw: true,
            log_loss: false,
            every_point: false,
            filter: String::new(),
            train_store_queue: false,
        }
    }
}

pub const STATE_KEY: &str = "squadlab-ui";
