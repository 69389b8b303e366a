//! Sweeps: a base config and axes (grid, random, seeds), expanded into runs
//! queued in the store, where workers (`squadlab worker`), the app, or a
//! Slurm job array take them.
//!
//! A sweep lives in `<store>/sweeps/<id>/`: `sweep.ron` (the file as
//! started, its base config inlined) and `state.ron` (how many random points
//! were drawn). Its runs are ordinary runs whose record names the sweep and
//! the point, so re-expanding an edited file queues only the points no run
//! has yet, and `sweep add` draws more from the same seeded stream.

pub mod expand;
pub mod slurm;
pub mod spec;
pub mod table;

use crate::config::RunConfig;
use crate::fsutil::write_atomically;
use crate::store::{RunEntry, RunRecord, RunStatus, Shown, Store, SweepTag};
use anyhow::{anyhow, bail, Context, Result};
use expand::{apply, point_text, points, validate, Point};
use serde::{Deserialize, Serialize};
use spec::{Base, Sweep};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use spec::Draw;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct State {
    /// Random points drawn so far from the sweep's stream.
    drawn: usize,
    /// The Slurm job arrays written for it (job empty until submitted).
    slurm: Vec<slurm::ArrayJob>,
}

/// What an expansion queued and left out.
#[derive(Debug, Serialize)]
pub struct Expansion {
    pub sweep: String,
    pub queued: Vec<String>,
    /// Points that already had a run.
    pub existing: usize,
    /// Points over `run_cap`, not queued.
    pub over_cap: usize,
}

fn sweep_dir(store: &Store, id: &str) -> PathBuf {
    store.root.join("sweeps").join(id)
}

/// Expands `file` into queued runs: all its points the first time, the new
/// ones when an edited file is started again. Nothing is queued if any
/// axis or any point's config is bad.
pub fn start(store: &Store, file: &Path) -> Result<Expansion> {
    let sweep = load_file(file)?;
    let id = sweep.id();
    // A first start has no state yet; a damaged one is an error, not a reset.
    let mut state = if sweep_dir(store, &id).join("state.ron").exists() {
        load_state(store, &id)?
    } else {
        State::default()
    };
    state.drawn = state.drawn.max(sweep.trials);
    let expansion = queue_points(store, &sweep, &points(&sweep, 0, state.drawn)?)
        .map_err(|e| anyhow!("{}: {e:#}", file.display()))?;
    save(store, &sweep, &state)?;
    Ok(expansion)
}

/// A sweep file with its base config read, checked and inlined.
fn load_file(file: &Path) -> Result<Sweep> {
    let sweep = Sweep::load(file)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let sweep = sweep
        .inlined(dir)
        .with_context(|| format!("{}: the base config", file.display()))?;
    validate(&sweep, &sweep.base_configs(dir)?)
        .map_err(|e| anyhow!("{}: {e:#}", file.display()))?;
    Ok(sweep)
}

/// Draws `trials` more random points and queues them, while the sweep runs.
pub fn add(store: &Store, id: &str, trials: usize) -> Result<Expansion> {
    let sweep = load(store, id)?;
    if sweep.random.is_empty() {
        bail!("sweep {id} has no random axes to draw more points from");
    }
    let mut state = load_state(store, id)?;
    let to = state.drawn + trials;
    let expansion = queue_points(store, &sweep, &points(&sweep, state.drawn, to)?)?;
    state.drawn = to;
    save(store, &sweep, &state)?;
    Ok(expansion)
}

/// The sweep's runs in the store.
pub fn runs(store: &Store, id: &str) -> Result<Vec<RunEntry>> {
    Ok(store
        .list()?
        .into_iter()
        .filter(|e| {
            e.record
                .as_ref()
                .and_then(|r| r.sweep.as_ref())
                .is_some_and(|s| s.id == id)
        })
        .collect())
}

/// The sweeps in the store, by id.
pub fn list(store: &Store) -> Result<Vec<String>> {
    let dir = store.root.join("sweeps");
    let Ok(read) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut ids: Vec<String> = read
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("sweep.ron").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    Ok(ids)
}

/// A sweep as started.
pub fn load(store: &Store, id: &str) -> Result<Sweep> {
    let path = sweep_dir(store, id).join("sweep.ron");
    if !path.is_file() {
        bail!(
            "no sweep {id} in {} (squadlab sweep ls lists them)",
            store.root.display()
        );
    }
    Sweep::load(&path)
}

fn load_state(store: &Store, id: &str) -> Result<State> {
    let path = sweep_dir(store, id).join("state.ron");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    ron::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn save(store: &Store, sweep: &Sweep, state: &State) -> Result<()> {
    let dir = sweep_dir(store, &sweep.id());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let pretty = ron::ser::PrettyConfig::new().struct_names(true);
    write_atomically(
        &dir.join("sweep.ron"),
        ron::ser::to_string_pretty(sweep, pretty.clone())?.as_bytes(),
    )?;
    write_atomically(
        &dir.join("state.ron"),
        ron::ser::to_string_pretty(state, pretty)?.as_bytes(),
    )
}

/// New points with their configs, the points that already had a run, and
/// the points over the cap.
type Plan = (Vec<(Point, RunConfig)>, usize, usize);

/// The points of `candidates` no run of the sweep has yet, with their
/// configs (each built and validated), up to `run_cap` runs in all; and how
/// many already had a run, and how many the cap left out.
fn plan_points(store: &Store, sweep: &Sweep, candidates: &[Point]) -> Result<Plan> {
    if !matches!(sweep.base, Base::Inline(_) | Base::EachInline(_)) {
        bail!("the sweep's base config is not inlined");
    }
    let bases = sweep.base_configs(Path::new(""))?;
    let have: Vec<BTreeMap<String, String>> = runs(store, &sweep.id())?
        .into_iter()
        .filter_map(|e| e.record?.sweep.map(|s| s.point))
        .collect();
    let room = sweep
        .run_cap
        .map_or(usize::MAX, |cap| cap.saturating_sub(have.len()));
    let mut seen = have.clone();
    let mut fresh: Vec<(Point, RunConfig)> = Vec::new();
    let mut over_cap = 0;
    for point in candidates {
        let text = point_text(point);
        if seen.contains(&text) {
            continue;
        }
        seen.push(text);
        if fresh.len() == room {
            over_cap += 1;
            continue;
        }
        let config = apply(&bases, &sweep.name, point)?;
        config
            .validate()
            .map_err(|e| anyhow!("point {:?}: {e}", point_text(point)))?;
        fresh.push((point.clone(), config));
    }
    let existing = candidates.len() - fresh.len() - over_cap;
    Ok((fresh, existing, over_cap))
}

/// What starting a sweep file would do, without queueing anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub sweep: String,
    /// Points the file expands to, seeds included.
    pub points: usize,
    /// Of those, the ones a start would queue now.
    pub new: usize,
    pub existing: usize,
    pub over_cap: usize,
    /// Whether it has random axes (so `add` can draw more trials).
    pub random: bool,
}

/// Expands `file` as `start` would, and says how many runs it would queue.
pub fn preview(store: &Store, file: &Path) -> Result<Preview> {
    let sweep = load_file(file)?;
    let id = sweep.id();
    let drawn = if sweep_dir(store, &id).join("state.ron").exists() {
        load_state(store, &id)?.drawn.max(sweep.trials)
    } else {
        sweep.trials
    };
    let candidates = points(&sweep, 0, drawn)?;
    let (fresh, existing, over_cap) = plan_points(store, &sweep, &candidates)
        .map_err(|e| anyhow!("{}: {e:#}", file.display()))?;
    Ok(Preview {
        sweep: id,
        points: candidates.len(),
        new: fresh.len(),
        existing,
        over_cap,
        random: !sweep.random.is_empty(),
    })
}

/// Queues the points no run of the sweep has yet, up to `run_cap` runs in
/// all; every config is built and validated before the first is queued.
fn queue_points(store: &Store, sweep: &Sweep, candidates: &[Point]) -> Result<Expansion> {
    let id = sweep.id();
    let (fresh, existing, over_cap) = plan_points(store, sweep, candidates)?;
    let mut queued = Vec::new();
    for (point, config) in fresh {
        let record = |run_id: &str| RunRecord {
            id: run_id.to_string(),
            name: config.name.clone(),
            status: RunStatus::Queued,
            config: Some(config.clone()),
            sweep: Some(SweepTag {
                id: id.clone(),
                point: point_text(&point),
            }),
            ..RunRecord::default()
        };
        let (run_id, _) = store.create_run(|run_id, dir| record(run_id).save(dir))?;
        queued.push(run_id);
    }
    Ok(Expansion {
        sweep: id,
        queued,
        existing,
        over_cap,
    })
}

/// Counts by status (as listings show it) and the best finished run by F1.
pub fn status(store: &Store, id: &str) -> Result<(BTreeMap<String, usize>, Option<RunEntry>)> {
    load(store, id)?;
    let runs = runs(store, id)?;
    let mut counts = BTreeMap::new();
    for r in &runs {
        *counts.entry(r.shown.as_str().to_string()).or_insert(0) += 1;
    }
    let f1 = |e: &RunEntry| e.record.as_ref().and_then(|r| r.outcome.f1);
    let best = runs
        .into_iter()
        .filter(|e| e.shown == Shown::Is(RunStatus::Finished) && f1(e).is_some())
        .max_by(|a, b| {
            f1(a)
                .partial_cmp(&f1(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    Ok((counts, best))
}

/// Writes (and with `submit`, submits) a Slurm job array over the sweep's
/// queued runs: task i trains run i.
pub fn slurm_array(
    store: &Store,
    id: &str,
    options: &slurm::SlurmOptions,
    submit: bool,
) -> Result<slurm::ArrayJob> {
    let sweep = load(store, id)?;
    let mut state = load_state(store, id)?;
    let mut queued: Vec<String> = runs(store, id)?
        .into_iter()
        .filter(crate::store::queue::is_claimable)
        .map(|e| e.id)
        .collect();
    queued.sort();
    let text = slurm::script(&store.root, id, &queued, options)?;
    let path = sweep_dir(store, id).join(format!("slurm-{}.sbatch", state.slurm.len() + 1));
    write_atomically(&path, text.as_bytes())?;
    let job = if submit {
        slurm::submit(&path)?
    } else {
        String::new()
    };
    let array = slurm::ArrayJob {
        job,
        script: path,
        runs: queued,
    };
    state.slurm.push(array.clone());
    save(store, &sweep, &state)?;
    Ok(array)
}

/// Slurm's state of each run the sweep's submitted arrays hold (the latest
/// array's, for a run in several), by run id.
pub fn slurm_states(store: &Store, id: &str) -> Result<BTreeMap<String, String>> {
    let state = load_state(store, id)?;
    let mut out = BTreeMap::new();
    for array in state.slurm.iter().filter(|a| !a.job.is_empty()) {
        for (task, s) in slurm::task_states(&array.job) {
            if let Some(run) = array.runs.get(task) {
                out.insert(run.clone(), s);
            }
        }
    }
    Ok(out)
}
