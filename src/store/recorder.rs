//! The run store's consumer of the event stream: every event becomes one line
//! of `metrics.jsonl`, flushed as it comes, so a crash loses at most the line
//! being written; the final summary also goes to `summary.json`.

use super::EVENTS_FILE;
use crate::fsutil::write_atomically;
use crate::train::{EventSink, TrainEvent};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct RunRecorder {
    dir: PathBuf,
    log: std::fs::File,
}

impl RunRecorder {
    /// Appends to the run's event log (a resumed run continues the same log).
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(EVENTS_FILE);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            log,
        })
    }
}

impl EventSink for RunRecorder {
    fn on_event(&mut self, event: &TrainEvent) -> Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        self.log
            .write_all(&line)
            .and_then(|()| self.log.flush())
            .with_context(|| {
                format!("cannot append to {}", self.dir.join(EVENTS_FILE).display())
            })?;
        if let TrainEvent::Finished(summary) = event {
            write_atomically(
                &self.dir.join("summary.json"),
                &serde_json::to_vec_pretty(summary)?,
            )?;
        }
        if event.is_terminal() {
            self.log.sync_all().ok();
        }
        Ok(())
    }
}
