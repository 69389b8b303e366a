//! `squadlab runs` and `squadlab show`: what the store holds.

use super::args::StoreArgs;
use super::Report;
use crate::report::aligned;
use crate::store::{disk_use, read_metrics, RunEntry, RunKind};
use crate::train::TrainEvent;
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use std::path::Path;

#[derive(Args)]
pub struct RunsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Only runs with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Only runs with this status (running, finished, interrupted, damaged, …).
    #[arg(long)]
    status: Option<String>,
    /// Only runs whose id, name, model or notes contain this text (any case).
    #[arg(long)]
    search: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ShowArgs {
    /// The run: its id (or a unique prefix), name, folder, or `latest`.
    run: String,
    #[command(flatten)]
    store: StoreArgs,
    /// How many of the last steps to print.
    #[arg(long, default_value_t = 5)]
    last: usize,
    #[arg(long)]
    pub json: bool,
}

impl RunsArgs {
    fn keeps(&self, e: &RunEntry) -> bool {
        let r = e.record.as_ref();
        let tagged = self
            .tag
            .as_ref()
            .is_none_or(|t| r.is_some_and(|r| r.tags.contains(t)));
        let status = self.status.as_ref().is_none_or(|s| s == e.shown.as_str());
        let found = self.search.as_ref().is_none_or(|needle| {
            let needle = needle.to_lowercase();
            let mut hay = e.id.clone();
            if let Some(r) = r {
                hay += &format!(" {} {} {}", r.name, r.model(), r.notes);
            }
            hay.to_lowercase().contains(&needle)
        });
        tagged && status && found
    }
}

pub fn runs(args: &RunsArgs) -> Result<Report> {
    let store = args.store.open();
    let entries: Vec<RunEntry> = store
        .list()?
        .into_iter()
        .filter(|e| args.keeps(e))
        .collect();
    if entries.is_empty() {
        let filtered = args.tag.is_some() || args.status.is_some() || args.search.is_some();
        return Ok(Report {
            text: format!(
                "no runs{} in {}\n",
                if filtered { " match" } else { "" },
                store.runs_dir().display()
            ),
            json: json!([]),
        });
    }
    let header = [
        "ID", "NAME", "STATUS", "MODEL", "STEPS", "EM", "F1", "RUNTIME", "STARTED", "DISK",
    ];
    let mut rows = Vec::new();
    let mut notes = String::new();
    let mut json_rows = Vec::new();
    for e in &entries {
        let r = e.record.as_ref();
        let o = r.map(|r| &r.outcome);
        let step = e
            .last_step
            .as_ref()
            .map(|s| s.step)
            .or(o.and_then(|o| o.global_step));
        let total = o.and_then(|o| o.total_steps);
        let runtime = o
            .and_then(|o| o.train_runtime)
            .or(e.last_step.as_ref().map(|s| s.elapsed_seconds));
        let started = r.map(|r| r.started.clone().unwrap_or_else(|| r.created.clone()));
        let disk = disk_use(&e.dir);
        rows.push([
            e.id.clone(),
            e.name().to_string(),
            e.shown.as_str().to_string(),
            r.map_or_else(String::new, |r| short_model(&r.model())),
            match (step, total) {
                (Some(s), Some(t)) => format!("{s}/{t}"),
                (Some(s), None) => s.to_string(),
                _ => "-".into(),
            },
            fmt_opt(o.and_then(|o| o.exact_match), 2),
            fmt_opt(o.and_then(|o| o.f1), 2),
            runtime.map_or_else(|| "-".into(), duration),
            started.clone().unwrap_or_else(|| "-".into()),
            bytes(disk),
        ]);
        for p in &e.problems {
            notes += &format!("  {}: {p}\n", e.id);
        }
        json_rows.push(json!({
            "id": e.id,
            "dir": e.dir,
            "name": e.name(),
            "status": e.shown.as_str(),
            "problems": e.problems,
            "model": r.map(|r| r.model()),
            "family": r.and_then(|r| r.family).map(|f| f.label()),
            "step": step,
            "total_steps": total,
            "exact_match": o.and_then(|o| o.exact_match),
            "f1": o.and_then(|o| o.f1),
            "train_runtime": runtime,
            "started": started,
            "disk_bytes": disk,
            "tags": r.map(|r| r.tags.clone()),
        }));
    }
    let mut text = aligned(&header, &rows);
    if !notes.is_empty() {
        text += "\nproblems:\n";
        text += &notes;
    }
    Ok(Report {
        text,
        json: json!(json_rows),
    })
}

pub fn show(args: &ShowArgs) -> Result<Report> {
    let dir = args.store.open().find(&args.run)?;
    let entry = RunEntry::load(&dir);
    let metrics = read_metrics(&dir);
    let steps = metrics.steps();
    let last: Vec<_> = steps.iter().rev().take(args.last).rev().cloned().collect();
    let summary = metrics.events.iter().rev().find_map(|e| match e {
        TrainEvent::Finished(s) => Some(s.as_ref().clone()),
        _ => None,
    });
    let files = files_of(&dir)?;
    let mut text = format!(
        "run {}  [{}]\nfolder: {}\n",
        entry.id,
        entry.shown.as_str(),
        dir.display()
    );
    for p in &entry.problems {
        text += &format!("problem: {p}\n");
    }
    if let Some(r) = &entry.record {
        text += &format!("name: {}\n", r.name);
        if !r.tags.is_empty() {
            text += &format!("tags: {}\n", r.tags.join(", "));
        }
        if !r.notes.is_empty() {
            text += &format!("notes: {}\n", r.notes);
        }
        if let Some(d) = &r.status_detail {
            text += &format!("status detail: {d}\n");
        }
        if let RunKind::Imported { predictions } = &r.kind {
            text += &format!("imported from: {predictions}\n");
        }
        text += &format!(
            "created: {}\nstarted: {}\nfinished: {}\n",
            r.created,
            r.started.as_deref().unwrap_or("-"),
            r.finished.as_deref().unwrap_or("-")
        );
        if !r.resumed_from.is_empty() {
            let steps: Vec<String> = r.resumed_from.iter().map(u64::to_string).collect();
            text += &format!("resumed from steps: {}\n", steps.join(", "));
        }
        text += &format!(
            "device: {} ({}), dropout masks: {}, fused kernels: {}\nversions: squadlab {}, candle {}, git {}\n",
            r.device.as_deref().unwrap_or("-"),
            r.dtype.as_deref().unwrap_or("-"),
            r.dropout_generator.as_deref().unwrap_or("-"),
            match &r.fused_kernels {
                Some(k) if k.is_empty() => "none".to_string(),
                Some(k) => k.join(", "),
                None => "-".to_string(),
            },
            r.versions.squadlab,
            r.versions.candle,
            r.versions.git_sha
        );
        if let Some(family) = r.family {
            text += &format!("family: {family}\n");
        }
        for d in &r.data {
            text += &format!("data {}: {} (md5 {})\n", d.split, d.path, d.md5);
        }
        let o = &r.outcome;
        text += &format!(
            "\nresults: EM {}  F1 {}  ({} questions)\n",
            fmt_opt(o.exact_match, 2),
            fmt_opt(o.f1, 2),
            o.eval_questions
                .map_or_else(|| "-".into(), |n| n.to_string())
        );
        if let Some(c) = &r.config {
            text += &format!("\nconfig:\n{}\n", c.to_ron());
        }
    }
    if let Some(s) = &summary {
        text += "\nsummary:\n";
        for line in s.describe().lines() {
            text += &format!("  {line}\n");
        }
    }
    if !last.is_empty() {
        text += &format!("\nlast {} of {} steps:\n", last.len(), steps.len());
        text += &aligned(
            &["STEP", "EPOCH", "LOSS", "GRAD-NORM", "LR", "SAMPLES/S"],
            &last
                .iter()
                .map(|s| {
                    [
                        s.step.to_string(),
                        format!("{:.3}", s.epoch),
                        format!("{:.4}", s.loss),
                        format!("{:.4}", s.grad_norm),
                        format!("{:.3e}", s.learning_rate),
                        format!("{:.2}", s.samples_per_second),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    text += "\nfiles:\n";
    for (name, size) in &files {
        text += &format!("  {name:<40} {}\n", bytes(*size));
    }
    Ok(Report {
        text,
        json: json!({
            "id": entry.id,
            "dir": dir,
            "status": entry.shown.as_str(),
            "problems": entry.problems,
            "record": entry.record,
            "summary": summary,
            "last_steps": last,
            "files": files.iter().map(|(n, s)| json!({"path": n, "bytes": s})).collect::<Vec<_>>(),
        }),
    })
}

/// Top-level files and folders (checkpoints one level down) with their sizes.
fn files_of(dir: &Path) -> Result<Vec<(String, u64)>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        bail!("cannot read {}", dir.display());
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "checkpoints" {
            if let Ok(ckpts) = std::fs::read_dir(e.path()) {
                for c in ckpts.flatten() {
                    out.push((
                        format!("checkpoints/{}/", c.file_name().to_string_lossy()),
                        disk_use(&c.path()),
                    ));
                }
            }
            continue;
        }
        let slash = if e.path().is_dir() { "/" } else { "" };
        out.push((format!("{name}{slash}"), disk_use(&e.path())));
    }
    out.sort();
    Ok(out)
}

pub(super) fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

/// `1h02m`, `3m20s` or `12.3s`.
pub(super) fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    }
}

pub(super) fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// A hub id as is; a local path by its last two folders.
fn short_model(model: &str) -> String {
    let path = Path::new(model);
    if !(path.is_absolute() || model.starts_with('.')) {
        return model.to_string();
    }
    let parts: Vec<String> = path
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}
