//! `run.ron`: what a run is and where it stands. Rewritten atomically at each
//! change of status, so a reader always sees a whole record.

use super::stamps::rfc3339;
use crate::config::RunConfig;
use crate::fsutil::{read_ron, write_ron};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const RECORD_FILE: &str = "run.ron";
/// Bumped when a change to `RunRecord` would mislead an older reader.
pub const RECORD_FORMAT: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Created, waiting for its trainer.
    Queued,
    Running,
    Finished,
    Failed,
    Cancelled,
    Diverged,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Diverged => "diverged",
        }
    }

    /// Whether a live process should be holding the run's lock.
    pub fn is_active(self) -> bool {
        matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

/// How a run came to be.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RunKind {
    /// Trained (and evaluated) by squadlab.
    Trained,
    /// Another system's predictions, scored on import; read-only.
    Imported { predictions: String },
}

/// What produced the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Versions {
    pub squadlab: String,
    pub candle: String,
    /// The commit the binary was built from; `-dirty` with uncommitted changes.
    pub git_sha: String,
}

impl Default for Versions {
    fn default() -> Self {
        Self {
            squadlab: env!("CARGO_PKG_VERSION").into(),
            candle: env!("SQUADLAB_CANDLE_VERSION").into(),
            git_sha: env!("SQUADLAB_GIT_SHA").into(),
        }
    }
}

/// A data file the run read, with its MD5 to tell versions of SQuAD apart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataFile {
    pub split: String,
    pub path: String,
    pub md5: String,
}

/// The headline numbers, copied here so listings need not open bigger files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Outcome {
    pub global_step: Option<u64>,
    pub total_steps: Option<u64>,
    pub train_runtime: Option<f64>,
    pub train_samples_per_second: Option<f64>,
    pub train_loss: Option<f64>,
    pub exact_match: Option<f64>,
    pub f1: Option<f64>,
    pub eval_questions: Option<usize>,
    /// The best in-training evaluation: its step, metric and value (on the
    /// in-training questions), and whether the final model is its weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<BestOutcome>,
    /// SQuAD 2.0 runs: HasAns/NoAns EM/F1 and the best null thresholds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub squad_v2: Option<crate::schema::V2Breakdown>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestOutcome {
    pub step: u64,
    pub metric: crate::config::BestMetric,
    pub value: f64,
    pub loaded_at_end: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunRecord {
    pub format_version: u32,
    pub id: String,
    /// Free text.
    pub name: String,
    pub tags: Vec<String>,
    pub notes: String,
    pub status: RunStatus,
    /// Why a run failed, diverged or was cancelled.
    pub status_detail: Option<String>,
    pub kind: RunKind,
    /// RFC 3339 UTC times.
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// Steps this run was resumed from, in order.
    pub resumed_from: Vec<u64>,
    pub device: Option<String>,
    pub dtype: Option<String>,
    /// What drew the dropout masks (`rng::DropoutGenerator`'s name); none
    /// before the run started or in records from before it was kept.
    #[serde(default)]
    pub dropout_generator: Option<String>,
    /// The fused kernels the run's step ran (`StartInfo::fused_kernels`);
    /// none before the run started or in records from before it was kept.
    #[serde(default)]
    pub fused_kernels: Option<Vec<String>>,
    /// The model's family; none before the run started, and in records
    /// from before squadlab trained more than BERT (those are BERT runs).
    #[serde(default)]
    pub family: Option<crate::family::Family>,
    pub versions: Versions,
    pub data: Vec<DataFile>,
    pub outcome: Outcome,
    /// The config as run; none for imported predictions.
    pub config: Option<RunConfig>,
    /// The warmup steps the trainer derived from the config (Hugging Face's
    /// `ceil(warmup_ratio × total steps)`); none before the run started, and
    /// in records from before squadlab kept it (see `warmup_steps_as_run`).
    pub warmup_steps: Option<u64>,
    /// The sweep this run is a point of; set when the sweep queues it, and
    /// not a label: `edit` cannot remove it.
    pub sweep: Option<SweepTag>,
}

/// A run's place in a sweep: the sweep's id and the axis values of its point
/// (each as RON text, e.g. `learning_rate: "3e-5"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepTag {
    pub id: String,
    pub point: std::collections::BTreeMap<String, String>,
}

impl RunRecord {
    /// "2.0" for a SQuAD 2.0 run (its config, or its v2 scores for an
    /// import), else "1.1".
    pub fn squad_version(&self) -> &'static str {
        let v2 = self
            .config
            .as_ref()
            .is_some_and(|c| c.version_2_with_negative)
            || self.outcome.squad_v2.is_some();
        if v2 {
            crate::data::SQUAD_V2
        } else {
            crate::data::SQUAD_V1
        }
    }
}

impl SweepTag {
    /// The seed axis: it folds runs into a point instead of telling points apart.
    pub const SEED_AXIS: &'static str = "seed";

    /// `id [axis=value, …]`: the point, seed left out.
    pub fn point_label(&self) -> String {
        let point: Vec<String> = self
            .point
            .iter()
            .filter(|(axis, _)| *axis != Self::SEED_AXIS)
            .map(|(axis, value)| format!("{axis}={value}"))
            .collect();
        format!("{} [{}]", self.id, point.join(", "))
    }
}

impl Default for RunRecord {
    fn default() -> Self {
        Self {
            format_version: RECORD_FORMAT,
            id: String::new(),
            name: String::new(),
            tags: Vec::new(),
            notes: String::new(),
            status: RunStatus::Queued,
            status_detail: None,
            kind: RunKind::Trained,
            created: rfc3339(std::time::SystemTime::now()),
            started: None,
            finished: None,
            resumed_from: Vec::new(),
            device: None,
            dtype: None,
            dropout_generator: None,
            fused_kernels: None,
            family: None,
            versions: Versions::default(),
            data: Vec::new(),
            outcome: Outcome::default(),
            config: None,
            warmup_steps: None,
            sweep: None,
        }
    }
}

impl RunRecord {
    /// Writes the record as it is, labels included: for a run folder no
    /// other process can see yet (a new run, an import). A run in a shared
    /// store is written by `save_keeping_labels`, `update` or `relabel_run`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_ron(&dir.join(RECORD_FILE), self, 3)
    }

    /// Writes this record (a status change: started, queued again, ended)
    /// under the record lock, keeping the name, tags and notes on disk, which
    /// belong to the user and may have been edited since this copy was read
    /// (`squadlab edit`, the app's sidebar) while the run was queued,
    /// running or finished.
    pub fn save_keeping_labels(&mut self, dir: &Path) -> Result<()> {
        let _guard = lock_record(dir)?;
        if let Ok(on_disk) = RunRecord::load(dir) {
            self.name = on_disk.name;
            self.tags = on_disk.tags;
            self.notes = on_disk.notes;
        }
        self.save(dir)
    }

    /// Reads the run's record, changes it and writes it back, under the
    /// record lock: nothing another process wrote in between is lost.
    pub fn update(dir: &Path, change: impl FnOnce(&mut RunRecord)) -> Result<RunRecord> {
        let _guard = lock_record(dir)?;
        let mut record = RunRecord::load(dir)?;
        change(&mut record);
        record.save(dir)?;
        Ok(record)
    }

    /// Reads a run's record; one from a newer squadlab is refused, not guessed at.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(RECORD_FILE);
        if !path.is_file() {
            bail!(
                "no {RECORD_FILE}: a half-created run folder, or not a run ({})",
                dir.display()
            );
        }
        let record: Self = read_ron(&path)?;
        if record.format_version > RECORD_FORMAT {
            bail!(
                "{}: format {} comes from a newer squadlab (this one reads up to {RECORD_FORMAT})",
                path.display(),
                record.format_version
            );
        }
        Ok(record)
    }

    /// Applies a user's edit of the labels; the rest of the record is the run's.
    pub fn relabel(&mut self, edit: &Relabel) {
        if let Some(name) = &edit.name {
            self.name = name.clone();
        }
        for tag in &edit.add_tags {
            if !self.tags.contains(tag) {
                self.tags.push(tag.clone());
            }
        }
        self.tags.retain(|t| !edit.remove_tags.contains(t));
        if let Some(notes) = &edit.notes {
            self.notes = notes.clone();
        }
    }

    /// The warmup steps this run's schedule used: as recorded, else (a run
    /// from before squadlab recorded them, which floored the ratio) derived
    /// by the old rule from its total steps; none when neither is known.
    pub fn warmup_steps_as_run(&self) -> Option<u64> {
        self.warmup_steps.or_else(|| {
            let config = self.config.as_ref()?;
            let total = self.outcome.total_steps?;
            Some(config.legacy_warmup_steps_for(total))
        })
    }

    /// The model the run fine-tuned, or what the import was called.
    pub fn model(&self) -> String {
        match (&self.config, &self.kind) {
            (Some(c), _) => c.model.as_str().to_string(),
            (None, RunKind::Imported { .. }) => "imported".into(),
            (None, RunKind::Trained) => "?".into(),
        }
    }
}

/// A change to a run's name, tags or notes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Relabel {
    pub name: Option<String>,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
    pub notes: Option<String>,
}

/// Held while `run.ron` is read, changed and written back, so a label edit
/// and the recorder's status update (in this process or another) never
/// interleave and undo each other: the run folder's lock
/// (`exclusive::folder_lock`), which also covers every change of `run.lock`.
pub(crate) struct RecordGuard {
    _dir: std::fs::File,
}

pub(crate) fn lock_record(dir: &Path) -> Result<RecordGuard> {
    Ok(RecordGuard {
        _dir: super::exclusive::folder_lock(dir)?,
    })
}

/// Rewrites a run's labels in `run.ron`; a live recorder keeps them.
pub fn relabel_run(dir: &Path, edit: &Relabel) -> Result<RunRecord> {
    let _guard = lock_record(dir)?;
    let mut record = RunRecord::load(dir)?;
    record.relabel(edit);
    record.save(dir)?;
    Ok(record)
}

/// The MD5 of a file, hex.
pub fn md5_file(path: &Path) -> Result<String> {
    use md5::{Digest, Md5};
    use std::io::Read;
    let mut file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
