//! The store as the app sees it: every run's record, re-read when it changes,
//! and the event logs of the runs being watched, followed as they grow.

use super::follow::Follower;
use squadlab_core::store::{RunEntry, RunStatus, Shown, Store, RECORD_FILE};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub struct RunView {
    pub entry: RunEntry,
    pub follower: Follower,
    record_mtime: Option<SystemTime>,
}

impl RunView {
    fn load(dir: &Path) -> Self {
        Self {
            entry: RunEntry::load_record(dir),
            follower: Follower::default(),
            record_mtime: mtime(&dir.join(RECORD_FILE)),
        }
    }

    pub fn id(&self) -> &str {
        &self.entry.id
    }

    pub fn label(&self) -> String {
        match self.entry.name() {
            "" => self.entry.id.clone(),
            name => name.to_string(),
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self.entry.shown, Shown::Is(s) if s.is_active())
    }

    /// Steps done out of all, 0 to 1, while the run has a plan.
    pub fn progress(&self) -> Option<f32> {
        let total = self
            .follower
            .series
            .started
            .as_ref()
            .map(|s| s.total_steps)
            .or_else(|| self.entry.record.as_ref()?.outcome.total_steps)?;
        let step = self.follower.series.last.as_ref().map_or(0, |s| s.step);
        (total > 0).then(|| (step as f32 / total as f32).min(1.0))
    }

    pub fn scores(&self) -> Option<(f64, f64)> {
        let o = &self.entry.record.as_ref()?.outcome;
        match (o.exact_match, o.f1) {
            (Some(em), Some(f1)) => Some((em, f1)),
            _ => self
                .follower
                .series
                .eval
                .as_ref()
                .map(|e| (e.exact_match, e.f1)),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.entry.shown == Shown::Is(RunStatus::Finished)
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Log bytes read per frame, over all runs: about 5,000 steps, parsed in
/// under 10 ms here.
const READ_PER_FRAME: u64 = 1 << 20;

/// How often the store is listed again, and watched logs read.
const RESCAN: Duration = Duration::from_millis(700);

pub struct Runs {
    pub store: Store,
    pub views: Vec<RunView>,
    /// Why the store could not be listed, if it could not.
    pub error: Option<String>,
    last_scan: Option<Instant>,
    /// Some watched log has more to read than one poll takes.
    pub catching_up: bool,
}

impl Runs {
    pub fn open(root: PathBuf) -> Self {
        let mut runs = Self {
            store: Store { root },
            views: Vec::new(),
            error: None,
            last_scan: None,
            catching_up: false,
        };
        runs.refresh(&[], true);
        runs
    }

    pub fn get(&self, id: &str) -> Option<&RunView> {
        self.views.iter().find(|v| v.entry.id == id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut RunView> {
        self.views.iter_mut().find(|v| v.entry.id == id)
    }

    /// Lists the store again (at most every [`RESCAN`] unless `force`), re-reads
    /// records that changed, and follows the logs of active and `watched` runs.
    pub fn refresh(&mut self, watched: &[String], force: bool) {
        if !force && self.last_scan.is_some_and(|t| t.elapsed() < RESCAN) {
            if self.catching_up {
                self.follow(watched);
            }
            return;
        }
        self.last_scan = Some(Instant::now());
        let dirs = match self.store.run_dirs() {
            Ok(d) => {
                self.error = None;
                d
            }
            Err(e) => {
                self.error = Some(format!("{e:#}"));
                return;
            }
        };
        let mut old: HashMap<PathBuf, RunView> = self
            .views
            .drain(..)
            .map(|v| (v.entry.dir.clone(), v))
            .collect();
        for dir in dirs {
            let view = match old.remove(&dir) {
                Some(mut v) => {
                    let now = mtime(&dir.join(RECORD_FILE));
                    // A live run's liveness is its heartbeat, not its record.
                    if now != v.record_mtime || v.is_active() {
                        v.entry = RunEntry::load_record(&dir);
                        v.record_mtime = now;
                    }
                    v
                }
                None => RunView::load(&dir),
            };
            self.views.push(view);
        }
        self.follow(watched);
    }

    /// Reads on in the logs of active and watched runs, within one frame's
    /// budget: the rest waits for the next frame.
    fn follow(&mut self, watched: &[String]) {
        self.catching_up = false;
        let mut budget = READ_PER_FRAME;
        for v in &mut self.views {
            if v.is_active() || watched.contains(&v.entry.id) {
                if budget == 0 {
                    self.catching_up = true;
                    continue;
                }
                let (read, more) = v.follower.poll(&v.entry.dir, budget);
                budget -= read.min(budget);
                self.catching_up |= more;
            }
        }
    }
}
