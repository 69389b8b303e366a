//! The run store's consumer of the event stream. Every event worth keeping
//! becomes one line of `metrics.jsonl`, flushed as it comes, so a crash loses
//! at most the line being written. `run.ron` follows the run's status, and the
//! lock's heartbeat tells listings the writer is alive.

use super::lock::RunLock;
use super::record::{md5_file, BestOutcome, DataFile, RunRecord, RunStatus};
use super::stamps::rfc3339;
use super::{EVENTS_FILE, SUMMARY_FILE};
use crate::fsutil::write_atomically;
use crate::schema::{EvalKind, EventSink, StartInfo, TrainEvent};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub struct RunRecorder {
    dir: PathBuf,
    log: std::fs::File,
    record: RunRecord,
    lock: Option<RunLock>,
}

impl RunRecorder {
    /// Writes the run's record (keeping the labels on disk, which the user
    /// may have edited since `record` was read) and opens its event log for
    /// appending (a resumed run continues the same log). The caller holds
    /// the run's lock, which the recorder keeps until the run ends.
    pub fn open(dir: &Path, mut record: RunRecord, lock: RunLock) -> Result<Self> {
        crate::fsutil::remove_stale_temporaries(dir, 3);
        record.save_keeping_labels(dir)?;
        let path = dir.join(EVENTS_FILE);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            log,
            record,
            lock: Some(lock),
        })
    }

    pub fn record(&self) -> &RunRecord {
        &self.record
    }

    fn append(&mut self, event: &TrainEvent) -> Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        self.log
            .write_all(&line)
            .and_then(|()| self.log.flush())
            .with_context(|| format!("cannot append to {}", self.dir.join(EVENTS_FILE).display()))
    }

    fn started(&mut self, info: &StartInfo) {
        let r = &mut self.record;
        r.status = RunStatus::Running;
        r.status_detail = None;
        r.started.get_or_insert_with(|| rfc3339(SystemTime::now()));
        if info.resumed_from_step > 0 {
            r.resumed_from.push(info.resumed_from_step);
        }
        r.device = Some(info.device.clone());
        r.dtype = Some(info.dtype.clone());
        if info.dropout_generator.is_some() {
            r.dropout_generator = info.dropout_generator.clone();
        }
        if info.fused_kernels.is_some() {
            r.fused_kernels = info.fused_kernels.clone();
        }
        if info.family.is_some() {
            r.family = info.family;
        }
        r.outcome.total_steps = Some(info.total_steps);
        r.warmup_steps = Some(info.warmup_steps);
        r.outcome.global_step = Some(info.resumed_from_step);
        r.config = Some(info.config.clone());
        r.data = [("train", &info.train_data), ("validation", &info.eval_data)]
            .into_iter()
            .map(|(split, path)| DataFile {
                split: split.into(),
                path: path.clone(),
                // A hub dataset read from several files has no single checksum.
                md5: md5_file(Path::new(path)).unwrap_or_default(),
            })
            .collect();
    }

    /// Marks the run ended with `status`.
    fn ended(&mut self, status: RunStatus, detail: Option<String>) {
        self.record.status = status;
        self.record.status_detail = detail;
        self.record.finished = Some(rfc3339(SystemTime::now()));
    }
}

impl EventSink for RunRecorder {
    fn on_event(&mut self, event: &TrainEvent) -> Result<()> {
        // Status lines are transient progress text, not history; an unknown
        // event has nothing to write.
        if !matches!(event, TrainEvent::Status { .. } | TrainEvent::Unknown) {
            self.append(event)?;
        }
        let id = self.record.id.clone();
        let mut save = true;
        match event {
            TrainEvent::Started(info) => self.started(info),
            TrainEvent::Step(s) => {
                self.record.outcome.global_step = Some(s.step);
                save = false;
            }
            // Only the final evaluation gives the run its headline numbers.
            TrainEvent::Evaluated(e) if e.kind == EvalKind::InTraining => save = false,
            TrainEvent::Evaluated(e) => {
                self.record.outcome.exact_match = Some(e.exact_match);
                self.record.outcome.f1 = Some(e.f1);
                self.record.outcome.eval_questions = Some(e.total);
                self.record.outcome.squad_v2 = e.squad_v2.clone();
            }
            TrainEvent::Finished(s) => {
                write_atomically(&self.dir.join(SUMMARY_FILE), &serde_json::to_vec_pretty(s)?)?;
                let o = &mut self.record.outcome;
                o.global_step = Some(s.global_step);
                o.train_runtime = Some(s.train_runtime);
                o.train_samples_per_second = Some(s.train_samples_per_second);
                o.train_loss = Some(s.train_loss);
                o.best = s.best.as_ref().map(|b| BestOutcome {
                    step: b.step,
                    metric: b.metric,
                    value: b.value,
                    loaded_at_end: s.loaded_best,
                });
                self.ended(RunStatus::Finished, None);
            }
            TrainEvent::Diverged {
                step,
                loss,
                grad_norm,
                ..
            } => self.ended(
                RunStatus::Diverged,
                Some(format!("loss {loss}, grad-norm {grad_norm} at step {step}")),
            ),
            TrainEvent::Cancelled { step, checkpoint } => self.ended(
                RunStatus::Cancelled,
                Some(match checkpoint {
                    Some(_) => format!("at step {step}; continue with: squadlab resume {id}"),
                    None => format!("at step {step}"),
                }),
            ),
            TrainEvent::Failed { error } => self.ended(RunStatus::Failed, Some(error.clone())),
            TrainEvent::CheckpointSaved { .. } => {}
            TrainEvent::Status { .. }
            | TrainEvent::EpochEnd(_)
            | TrainEvent::Paused { .. }
            | TrainEvent::Resumed { .. }
            | TrainEvent::Warning { .. }
            | TrainEvent::System(_)
            | TrainEvent::Unknown => save = false,
        }
        if save {
            // Name, tags and notes belong to the user, who may edit them
            // (`squadlab edit`, the app) while the run trains.
            self.record.save_keeping_labels(&self.dir)?;
        }
        if event.is_terminal() {
            self.log.sync_all().ok();
            self.lock = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{relabel_run, Relabel};

    #[test]
    fn labels_edited_while_a_run_waits_survive_its_start() {
        // The app's job keeps the record it submitted; the user renames the
        // queued run in the sidebar before a device frees up.
        let dir = tempfile::tempdir().unwrap();
        let submitted = RunRecord {
            id: "r".into(),
            name: "as submitted".into(),
            status: RunStatus::Queued,
            ..RunRecord::default()
        };
        submitted.save(dir.path()).unwrap();
        let edit = Relabel {
            name: Some("renamed while queued".into()),
            add_tags: vec!["keep".into()],
            ..Relabel::default()
        };
        relabel_run(dir.path(), &edit).unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        let _recorder = RunRecorder::open(dir.path(), submitted, lock).unwrap();
        let saved = RunRecord::load(dir.path()).unwrap();
        assert_eq!(saved.name, "renamed while queued");
        assert_eq!(saved.tags, vec!["keep".to_string()]);
    }

    #[test]
    fn labels_edited_during_a_run_survive_the_recorders_writes() {
        let dir = tempfile::tempdir().unwrap();
        let record = RunRecord {
            id: "r".into(),
            name: "before".into(),
            tags: vec!["a".into()],
            ..RunRecord::default()
        };
        let mut recorder =
            RunRecorder::open(dir.path(), record, RunLock::acquire(dir.path()).unwrap()).unwrap();
        let edit = Relabel {
            name: Some("after".into()),
            add_tags: vec!["b".into()],
            remove_tags: vec!["a".into()],
            notes: Some("edited while live".into()),
        };
        relabel_run(dir.path(), &edit).unwrap();
        recorder
            .on_event(&TrainEvent::Failed {
                error: "boom".into(),
            })
            .unwrap();
        let saved = RunRecord::load(dir.path()).unwrap();
        assert_eq!(saved.status, RunStatus::Failed);
        assert_eq!(saved.status_detail.as_deref(), Some("boom"));
        assert_eq!(
            (saved.name.as_str(), saved.tags, saved.notes.as_str()),
            ("after", vec!["b".to_string()], "edited while live")
        );
        assert!(
            !dir.path().join(super::super::LOCK_FILE).exists(),
            "released at the end"
        );
    }

    #[test]
    fn only_the_final_evaluation_is_the_headline() {
        let dir = tempfile::tempdir().unwrap();
        let mut recorder = RunRecorder::open(
            dir.path(),
            RunRecord::default(),
            RunLock::acquire(dir.path()).unwrap(),
        )
        .unwrap();
        let eval = |f1: f64, kind| crate::schema::EvalSummary {
            exact_match: f1 - 10.0,
            f1,
            total: 5,
            windows: 5,
            seconds: 0.0,
            step: 3,
            epoch: 1.0,
            kind,
            squad_v2: None,
        };
        recorder
            .on_event(&TrainEvent::Evaluated(eval(50.0, EvalKind::Final)))
            .unwrap();
        recorder
            .on_event(&TrainEvent::Evaluated(eval(90.0, EvalKind::InTraining)))
            .unwrap();
        let outcome = RunRecord::load(dir.path()).unwrap().outcome;
        assert_eq!((outcome.exact_match, outcome.f1), (Some(40.0), Some(50.0)));
        let log = std::fs::read_to_string(dir.path().join(EVENTS_FILE)).unwrap();
        assert_eq!(log.lines().count(), 2, "both are in metrics.jsonl");
        assert!(log.contains(r#""kind":"in_training""#), "{log}");
    }

    #[test]
    fn concurrent_label_edits_and_status_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let record = RunRecord {
            id: "r".into(),
            ..RunRecord::default()
        };
        let mut recorder =
            RunRecorder::open(dir.path(), record, RunLock::acquire(dir.path()).unwrap()).unwrap();
        let path = dir.path().to_path_buf();
        let editor = std::thread::spawn(move || {
            for i in 0..150 {
                let edit = Relabel {
                    add_tags: vec![format!("t{i}")],
                    ..Relabel::default()
                };
                relabel_run(&path, &edit).unwrap();
            }
        });
        for i in 0..150 {
            let e = crate::schema::EvalSummary {
                exact_match: i as f64,
                f1: i as f64,
                total: i,
                windows: i,
                seconds: 0.0,
                step: i as u64,
                epoch: 0.0,
                kind: crate::schema::EvalKind::Final,
                squad_v2: None,
            };
            recorder.on_event(&TrainEvent::Evaluated(e)).unwrap();
        }
        editor.join().unwrap();
        recorder
            .on_event(&TrainEvent::Failed {
                error: "end".into(),
            })
            .unwrap();
        let saved = RunRecord::load(dir.path()).unwrap();
        assert_eq!(saved.status, RunStatus::Failed);
        assert_eq!(saved.outcome.exact_match, Some(149.0));
        assert_eq!(saved.tags.len(), 150, "every edit kept: {:?}", saved.tags);
    }
}
