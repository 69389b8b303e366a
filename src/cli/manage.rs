//! `edit`, `rm`, `prune` and `import-predictions`: the store's explicit changes.

use super::args::{LabelArgs, StoreArgs};
use super::runs::bytes;
use super::Report;
use crate::data::Split;
use crate::eval::{load_predictions, score, EvalResults, PREDICTIONS_FILE, RESULTS_FILE};
use crate::store::{
    disk_use, md5_file, prune_checkpoints, relabel_run, remove_run, rfc3339, DataFile, Outcome,
    Prune, Relabel, RunEntry, RunKind, RunRecord, RunStatus,
};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct RmArgs {
    /// Runs to delete, with everything in their folders.
    #[arg(required = true)]
    runs: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Delete without asking.
    #[arg(long)]
    yes: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct EditArgs {
    run: String,
    #[command(flatten)]
    store: StoreArgs,
    /// A new name.
    #[arg(long)]
    name: Option<String>,
    /// Add a tag; repeat for several.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Remove a tag; repeat for several.
    #[arg(long = "untag")]
    untag: Vec<String>,
    /// Replace the notes.
    #[arg(long)]
    notes: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PruneArgs {
    run: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Keep the N newest checkpoints.
    #[arg(
        long,
        conflicts_with = "keep_best",
        required_unless_present = "keep_best"
    )]
    keep_last: Option<usize>,
    /// Keep the N best checkpoints: by the run's in-training evaluation
    /// (`metric_for_best_model`) when every checkpoint was evaluated at its
    /// step, else by the lowest training loss over their last 50 steps.
    #[arg(long)]
    keep_best: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ImportArgs {
    /// A predictions file: `{question id: answer}` as the official script reads.
    predictions: PathBuf,
    /// The run's name in listings.
    #[arg(long)]
    name: String,
    /// The SQuAD questions the predictions answer: a JSON path, `data:FILE` or `hub:rajpurkar/squad`.
    #[arg(long, default_value = "data:dev-v1.1.json")]
    data: String,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    labels: LabelArgs,
    #[arg(long)]
    pub json: bool,
}

pub fn rm(args: &RmArgs) -> Result<Report> {
    let store = args.store.open();
    let dirs = args
        .runs
        .iter()
        .map(|r| store.find_own(r))
        .collect::<Result<Vec<_>>>()?;
    let mut removed = Vec::new();
    for dir in &dirs {
        let entry = RunEntry::load(dir);
        let what = format!(
            "{} ({}, {}, {})",
            entry.id,
            entry.name(),
            entry.shown.as_str(),
            bytes(disk_use(dir))
        );
        if !args.yes && !confirm(&format!("delete run {what} and all its files?"))? {
            bail!("not deleted: {what} (answer y, or pass --yes)");
        }
        remove_run(dir)?;
        removed.push(entry.id);
    }
    Ok(Report {
        text: format!("deleted {}\n", removed.join(", ")),
        json: json!({ "deleted": removed }),
    })
}

/// Asks on stderr, reads a line from stdin; only `y` or `yes` agrees.
fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

/// Renames, tags or annotates a run, even while it trains.
pub fn edit(args: &EditArgs) -> Result<Report> {
    let change = Relabel {
        name: args.name.clone(),
        add_tags: args.tags.clone(),
        remove_tags: args.untag.clone(),
        notes: args.notes.clone(),
    };
    if change == Relabel::default() {
        bail!("nothing to change: give --name, --tag, --untag or --notes");
    }
    let dir = args.store.open().find(&args.run)?;
    let record = relabel_run(&dir, &change)?;
    Ok(Report {
        text: format!(
            "{}: name {:?}, tags [{}], notes {:?}\n",
            record.id,
            record.name,
            record.tags.join(", "),
            record.notes
        ),
        json: json!({"id": record.id, "name": record.name, "tags": record.tags, "notes": record.notes}),
    })
}

pub fn prune(args: &PruneArgs) -> Result<Report> {
    let dir = args.store.open().find_own(&args.run)?;
    let rule = match (args.keep_last, args.keep_best) {
        (Some(n), None) => Prune::KeepLast(n),
        (None, Some(n)) => Prune::KeepBest(n),
        _ => bail!("give one of --keep-last N or --keep-best N"),
    };
    let before = disk_use(&dir);
    let pruned = prune_checkpoints(&dir, rule)?;
    let freed = before.saturating_sub(disk_use(&dir));
    let steps: Vec<String> = pruned.deleted.iter().map(|(s, _)| s.to_string()).collect();
    let why = pruned
        .note
        .as_ref()
        .map_or(String::new(), |n| format!(" ({n})"));
    Ok(Report {
        text: if pruned.deleted.is_empty() {
            format!("nothing to prune (ranked by {}{why})\n", pruned.ranked_by)
        } else {
            format!(
                "deleted checkpoints at steps {} ({} freed); ranked by {}{why}\n",
                steps.join(", "),
                bytes(freed),
                pruned.ranked_by
            )
        },
        json: json!({
            "deleted": pruned.deleted.iter().map(|(s, p)| json!({"step": s, "path": p})).collect::<Vec<_>>(),
            "freed_bytes": freed,
            "ranked_by": pruned.ranked_by,
            "note": pruned.note,
        }),
    })
}

/// Scores another system's predictions and stores them as a read-only run.
pub fn import_predictions(args: &ImportArgs) -> Result<Report> {
    let data = super::inputs::load_data(
        &args.data,
        Split::Validation,
        None,
        false,
        crate::config::DEFAULT_MAX_CONTEXT_CHARS,
        true,
    )?;
    let data_path = PathBuf::from(&data.origin);
    let predictions = load_predictions(&args.predictions)?;
    // SQuAD 2.0 data is scored by its own rules: under v1.1's, every
    // unanswerable question would score 0.
    let (scores, squad_v2) = if data.is_v2() {
        let (scores, breakdown) = crate::eval::score_v2(
            &data,
            &predictions,
            None,
            crate::eval::DEFAULT_NA_PROB_THRESH,
        )
        .with_context(|| format!("scoring {}", args.predictions.display()))?;
        (scores, Some(breakdown))
    } else {
        (score(&data, &predictions), None)
    };
    if scores.total == scores.unanswered {
        bail!(
            "{}: none of its ids are questions of {}; is it for another dataset?",
            args.predictions.display(),
            data_path.display()
        );
    }
    let store = args.store.open();
    let write = |id: &str, dir: &Path| -> Result<()> {
        let bytes = std::fs::read(&args.predictions)
            .with_context(|| format!("cannot read {}", args.predictions.display()))?;
        crate::fsutil::write_atomically(&dir.join(PREDICTIONS_FILE), &bytes)?;
        EvalResults::from_scores(&scores).save(&dir.join(RESULTS_FILE))?;
        let now = rfc3339(std::time::SystemTime::now());
        RunRecord {
            id: id.to_string(),
            name: args.name.clone(),
            tags: args.labels.tags.clone(),
            notes: args.labels.notes.clone(),
            status: RunStatus::Finished,
            kind: RunKind::Imported {
                predictions: args.predictions.display().to_string(),
            },
            finished: Some(now),
            data: vec![
                DataFile {
                    split: "validation".into(),
                    path: data_path.display().to_string(),
                    md5: md5_file(&data_path).unwrap_or_default(),
                },
                DataFile {
                    split: "predictions".into(),
                    path: args.predictions.display().to_string(),
                    md5: md5_file(&args.predictions)?,
                },
            ],
            outcome: Outcome {
                exact_match: Some(scores.exact_match),
                f1: Some(scores.f1),
                eval_questions: Some(scores.total),
                squad_v2: squad_v2.clone(),
                ..Outcome::default()
            },
            ..RunRecord::default()
        }
        .save(dir)
    };
    let (id, dir) = store.create_run(write)?;
    if !scores.unknown_ids.is_empty() {
        eprintln!(
            "warning: {} prediction ids are not questions of {} and were ignored",
            scores.unknown_ids.len(),
            data_path.display()
        );
    }
    Ok(Report {
        text: format!(
            "imported {} as run {id}: EM {:.2}, F1 {:.2} over {} questions ({} unanswered)\n",
            args.name, scores.exact_match, scores.f1, scores.total, scores.unanswered
        ),
        json: json!({
            "run_id": id,
            "dir": dir,
            "exact_match": scores.exact_match,
            "f1": scores.f1,
            "total": scores.total,
            "unanswered": scores.unanswered,
            "unknown_ids": scores.unknown_ids.len(),
        }),
    })
}
