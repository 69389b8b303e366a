//! Following a run's `metrics.jsonl` as it grows, whoever writes it: this app,
//! `squadlab train` in a terminal, or a server whose store is mounted here.
//! Only the bytes added since the last look are read; a long log seen for the
//! first time is read on a loader thread, and drawn as it arrives.

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use squadlab_core::store::EVENTS_FILE;
use squadlab_core::train::{
    EpochLog, EvalKind, EvalSummary, StartInfo, StepLog, SystemSample, TrainEvent,
};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A run's history as columns, ready to plot.
#[derive(Default)]
pub struct Series {
    pub step: Vec<f64>,
    pub loss: Vec<f64>,
    pub grad_norm: Vec<f64>,
    pub learning_rate: Vec<f64>,
    pub epochs: Vec<EpochLog>,
    pub last: Option<StepLog>,
    pub started: Option<StartInfo>,
    /// The final evaluation.
    pub eval: Option<EvalSummary>,
    /// Evaluations during training, by step.
    pub evals: Vec<EvalSummary>,
    /// What the training process cost, as sampled.
    pub system: Vec<SystemSample>,
    pub paused: bool,
    /// Bumped on every change, so derived curves know when to recompute.
    pub version: u64,
    /// Bumped when logged steps are replaced (a resumed run), so derived
    /// curves know they cannot just be extended.
    pub rewrites: u64,
}

impl Series {
    pub fn push(&mut self, event: &TrainEvent) {
        self.version += 1;
        match event {
            TrainEvent::Step(s) => self.push_step(s),
            TrainEvent::EpochEnd(e) => {
                self.epochs.retain(|old| old.step < e.step);
                self.epochs.push(e.clone());
            }
            TrainEvent::Started(info) => {
                self.started = Some((**info).clone());
                self.paused = false;
            }
            TrainEvent::Evaluated(e) if e.kind == EvalKind::InTraining => {
                self.evals.retain(|old| old.step < e.step);
                self.evals.push(e.clone());
            }
            TrainEvent::Evaluated(e) => self.eval = Some(e.clone()),
            TrainEvent::Finished(s) => self.eval = s.eval.clone().or(self.eval.take()),
            TrainEvent::System(sample) => self.system.push(sample.clone()),
            TrainEvent::Paused { .. } => self.paused = true,
            TrainEvent::Resumed { .. } => self.paused = false,
            _ => {}
        }
    }

    /// A resumed run logs the steps after its checkpoint again: the new entry
    /// replaces the old from that step on, as the run's history continued.
    fn push_step(&mut self, s: &StepLog) {
        let x = s.step as f64;
        let keep = self.step.partition_point(|&old| old < x);
        if keep < self.step.len() {
            self.rewrites += 1;
        }
        // Evaluations of the steps logged again are made again too.
        self.evals.retain(|e| e.step < s.step);
        for column in [
            &mut self.step,
            &mut self.loss,
            &mut self.grad_norm,
            &mut self.learning_rate,
        ] {
            column.truncate(keep);
        }
        self.step.push(x);
        self.loss.push(s.loss);
        self.grad_norm.push(s.grad_norm);
        self.learning_rate.push(s.learning_rate);
        self.last = Some(s.clone());
    }

    pub fn len(&self) -> usize {
        self.step.len()
    }

    pub fn is_empty(&self) -> bool {
        self.step.is_empty()
    }
}

/// Where reading stopped in one run's event log.
#[derive(Default)]
struct Reader {
    offset: u64,
    /// The start of a line still being written.
    partial: Vec<u8>,
    line: usize,
}

/// What one read of a log found, to be applied to a [`Follower`].
#[derive(Default)]
struct Batch {
    events: Vec<TrainEvent>,
    problems: Vec<String>,
    /// The log shrank (rewritten or replaced) and was read from the start.
    restarted: bool,
    read: u64,
    more: bool,
}

impl Reader {
    /// Reads and parses what was appended since the last call, at most
    /// `budget` bytes of it.
    fn read(&mut self, dir: &Path, budget: u64) -> Batch {
        let mut batch = Batch::default();
        let path = dir.join(EVENTS_FILE);
        let Ok(mut file) = std::fs::File::open(&path) else {
            return batch;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            *self = Self::default();
            batch.restarted = true;
        }
        if len == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return batch;
        }
        let mut added = Vec::new();
        if let Err(e) = file
            .take((len - self.offset).min(budget))
            .read_to_end(&mut added)
        {
            batch
                .problems
                .push(format!("cannot read {}: {e}", path.display()));
            return batch;
        }
        self.offset += added.len() as u64;
        self.partial.extend_from_slice(&added);
        (batch.read, batch.more) = (added.len() as u64, self.offset < len);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return batch;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in complete.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            self.line += 1;
            match serde_json::from_slice::<TrainEvent>(line) {
                Ok(event) => batch.events.push(event),
                Err(e) => batch.problems.push(format!(
                    "{EVENTS_FILE}:{}: unreadable line ignored: {e}",
                    self.line
                )),
            }
        }
        batch
    }
}

/// A log at least this long is read on a loader thread, so parsing it never
/// holds up a frame; shorter ones are read on the UI thread.
const BACKGROUND_FROM: u64 = 1 << 20;

/// Bytes a loader reads before handing what it parsed to the UI.
const LOADER_CHUNK: u64 = 1 << 20;

enum Loaded {
    Batch(Batch),
    /// Caught up: the follower reads on from here itself.
    Done(Reader),
}

/// Long logs waiting to be read: served in turn by a few threads, leaving a
/// core for the UI (on a two-core laptop, one thread).
fn loader_queue() -> &'static crossbeam_channel::Sender<(PathBuf, Sender<Loaded>)> {
    static QUEUE: OnceLock<crossbeam_channel::Sender<(PathBuf, Sender<Loaded>)>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<(PathBuf, Sender<Loaded>)>();
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        for i in 0..(cores - 1).clamp(1, 4) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("squadlab-log-loader-{i}"))
                .spawn(move || {
                    for (dir, reply) in rx {
                        load(&dir, &reply);
                    }
                })
                .expect("cannot start a log loader thread");
        }
        tx
    })
}

/// Reads a whole log in chunks, sending each as it is parsed; stops early
/// when its follower is gone.
fn load(dir: &Path, reply: &Sender<Loaded>) {
    let mut reader = Reader::default();
    loop {
        let batch = reader.read(dir, LOADER_CHUNK);
        let more = batch.more;
        if reply.send(Loaded::Batch(batch)).is_err() {
            return;
        }
        if !more {
            break;
        }
    }
    reply.send(Loaded::Done(reader)).ok();
}

/// One run's event log as read so far.
#[derive(Default)]
pub struct Follower {
    reader: Reader,
    pub series: Series,
    /// Lines that could not be read; shown on the run, never fatal.
    pub problems: Vec<String>,
    /// A long log being read by a loader thread.
    loading: Option<Receiver<Loaded>>,
}

impl Follower {
    /// Reads what was appended since the last call, at most `budget` bytes
    /// of it so a long log loads over a few frames instead of freezing one;
    /// returns the bytes read and whether more is waiting. A log that shrank
    /// (rewritten or replaced) is read again from the start. A long log
    /// not yet read is handed to a loader thread, and what it has parsed so
    /// far is taken here each call.
    pub fn poll(&mut self, dir: &Path, budget: u64) -> (u64, bool) {
        if self.loading.is_none() && self.reader.offset == 0 {
            let len = std::fs::metadata(dir.join(EVENTS_FILE)).map_or(0, |m| m.len());
            if len >= BACKGROUND_FROM {
                let (tx, rx) = crossbeam_channel::unbounded();
                loader_queue().send((dir.to_path_buf(), tx)).ok();
                self.loading = Some(rx);
            }
        }
        if let Some(rx) = self.loading.take() {
            loop {
                match rx.try_recv() {
                    Ok(Loaded::Batch(batch)) => self.apply(batch),
                    Ok(Loaded::Done(reader)) => {
                        self.reader = reader;
                        break;
                    }
                    Err(TryRecvError::Empty) => {
                        self.loading = Some(rx);
                        return (0, true);
                    }
                    // The loader died: read again, here.
                    Err(TryRecvError::Disconnected) => {
                        self.reader = Reader::default();
                        self.restart();
                        break;
                    }
                }
            }
        }
        let batch = self.reader.read(dir, budget);
        let read = (batch.read, batch.more);
        self.apply(batch);
        read
    }

    fn apply(&mut self, batch: Batch) {
        if batch.restarted {
            self.restart();
        }
        for event in &batch.events {
            self.series.push(event);
        }
        for problem in batch.problems {
            // An unreadable file is said once, however often it is polled.
            if !problem.starts_with("cannot read ") || !self.problems.contains(&problem) {
                self.problems.push(problem);
            }
        }
    }

    /// Forgets what was read (the reader has started over by itself);
    /// counters move on, so curves derived from the old log are redrawn.
    fn restart(&mut self) {
        let (version, rewrites) = (self.series.version, self.series.rewrites);
        let reader = std::mem::take(&mut self.reader);
        *self = Self::default();
        self.reader = reader;
        self.series.version = version + 1;
        self.series.rewrites = rewrites + 1;
    }

    /// Whether a loader thread is still reading this log.
    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use squadlab_core::train::StepLog;
    use std::io::Write;

    fn step(step: u64, loss: f64) -> String {
        let e = TrainEvent::Step(StepLog {
            step,
            epoch: 0.0,
            loss,
            grad_norm: 1.0,
            learning_rate: 1e-5,
            samples_per_second: 1.0,
            elapsed_seconds: 1.0,
        });
        serde_json::to_string(&e).unwrap() + "\n"
    }

    #[test]
    fn follows_a_growing_log_in_small_reads_as_one_read_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EVENTS_FILE);
        let text: String = (1..=500).map(|s| step(s, s as f64)).collect();
        // Written with the last line cut in half, as a live writer leaves it.
        let cut = text.len() - 40;
        std::fs::write(&path, &text[..cut]).unwrap();
        let mut f = Follower::default();
        let mut polls = 0;
        while f.poll(dir.path(), 1000).1 {
            polls += 1;
        }
        assert!(polls > 10, "{polls}");
        assert_eq!(f.series.len(), 499, "the cut line waits");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&text.as_bytes()[cut..])
            .unwrap();
        f.poll(dir.path(), u64::MAX);
        assert_eq!(f.series.len(), 500);
        assert_eq!(
            f.series.loss,
            (1..=500).map(|s| s as f64).collect::<Vec<_>>()
        );
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        // A resumed run logs steps again from its checkpoint: they replace the old ones.
        let rewrites = f.series.rewrites;
        let again: String = (401..=450).map(|s| step(s, -(s as f64))).collect();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(again.as_bytes())
            .unwrap();
        f.poll(dir.path(), u64::MAX);
        assert_eq!(f.series.len(), 450);
        assert_eq!(f.series.loss[449], -450.0);
        assert!(f.series.rewrites > rewrites);
        // A log replaced by a shorter one is read again from the start.
        let version = f.series.version;
        std::fs::write(&path, step(1, 7.0)).unwrap();
        f.poll(dir.path(), u64::MAX);
        assert_eq!(f.series.loss, vec![7.0]);
        assert!(
            f.series.version > version,
            "curves derived from the old log are redrawn"
        );
    }

    #[test]
    fn a_long_log_loads_on_a_loader_thread_then_is_followed_here() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EVENTS_FILE);
        let n = 20_000;
        let mut text: String = (1..=n).map(|s| step(s, s as f64)).collect();
        assert!(text.len() as u64 > 2 * BACKGROUND_FROM);
        text += "not json\n";
        // The writer is mid-line.
        let next = step(n + 1, 0.5);
        text += &next[..10];
        std::fs::write(&path, &text).unwrap();
        let mut f = Follower::default();
        let start = std::time::Instant::now();
        let mut polls = 0;
        while f.poll(dir.path(), 1000).1 {
            assert!(start.elapsed().as_secs() < 60, "loading hangs");
            polls += 1;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(polls > 0 && !f.is_loading());
        assert_eq!(f.series.len(), n as usize);
        assert_eq!(f.series.loss[n as usize - 1], n as f64);
        assert_eq!(
            f.problems,
            [format!(
                "{EVENTS_FILE}:{}: unreadable line ignored: expected ident at line 1 column 2",
                n + 1
            )]
        );
        // The rest of the cut line arrives and is read here, where the loader stopped.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&next.as_bytes()[10..])
            .unwrap();
        assert_eq!(
            f.poll(dir.path(), u64::MAX),
            ((next.len() - 10) as u64, false)
        );
        assert_eq!(f.series.len(), n as usize + 1);
        assert_eq!(f.series.loss.last(), Some(&0.5));
    }
}
