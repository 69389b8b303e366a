//! `compare`, `diff`, `export` and `export-metrics`: runs side by side, against
//! each other and against the published results.

use super::args::{BootstrapArgs, StoreArgs};
use super::Report;
use crate::report::significance::{show_p, McNemarMethod, PairedTests};
use crate::report::{
    aligned, comparison_rows, diff_runs, differing_keys, render, render_steps, text, Format,
    ReferenceResults, Row, TableOptions,
};
use crate::store::{read_metrics, RunEntry, Store};
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct CompareArgs {
    /// Runs: ids (or unique prefixes), names, folders, `latest`, or
    /// `sweep:ID` for every finished run of a sweep.
    #[arg(required = true)]
    runs: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// Show every run on its own row instead of folding seed groups into mean ± std.
    #[arg(long)]
    no_group: bool,
    /// Measure deltas from this reference row (e.g. paper-base) for every run.
    #[arg(long)]
    baseline: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DiffArgs {
    run_a: String,
    run_b: String,
    #[command(flatten)]
    store: StoreArgs,
    /// Flipped questions listed per direction (all of them with --json).
    #[arg(long, default_value_t = 20)]
    limit: usize,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    #[arg(required = true)]
    runs: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
    /// md, csv, tex or json.
    #[arg(long, default_value = "md")]
    format: Format,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    no_group: bool,
    /// Leave out the published rows.
    #[arg(long)]
    no_references: bool,
    #[arg(long)]
    baseline: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExportMetricsArgs {
    run: String,
    #[command(flatten)]
    store: StoreArgs,
    /// csv, jsonl, or tensorboard (an event file written into the folder --out).
    #[arg(long, default_value = "csv")]
    format: String,
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// The runs `specs` name; `sweep:ID` names every finished run of a sweep.
fn load_runs(store: &Store, specs: &[String]) -> Result<Vec<RunEntry>> {
    let mut entries = Vec::new();
    for spec in specs {
        if let Some(id) = spec.strip_prefix("sweep:") {
            crate::sweep::load(store, id)?;
            let mut finished: Vec<RunEntry> = crate::sweep::runs(store, id)?
                .into_iter()
                .filter(|e| e.shown == crate::store::Shown::Is(crate::store::RunStatus::Finished))
                .collect();
            if finished.is_empty() {
                bail!("sweep {id} has no finished run yet (squadlab sweep status {id})");
            }
            finished.sort_by(|a, b| a.id.cmp(&b.id));
            entries.extend(finished);
            continue;
        }
        let entry = RunEntry::load(&store.find(spec)?);
        if entry.record.is_none() {
            bail!("run {} is damaged: {}", entry.id, entry.problems.join("; "));
        }
        entries.push(entry);
    }
    Ok(entries)
}

pub fn compare(args: &CompareArgs) -> Result<Report> {
    let entries = load_runs(&args.store.open(), &args.runs)?;
    let configs: Vec<_> = entries
        .iter()
        .map(|e| e.record.as_ref().and_then(|r| r.config.as_ref()))
        .collect();
    let diffs = differing_keys(&configs);
    let rows = comparison_rows(
        &entries,
        &ReferenceResults::builtin(),
        &TableOptions {
            group_seeds: !args.no_group,
            include_references: false,
            baseline: args.baseline.clone(),
        },
    )?;
    let mut out = String::from("config keys that differ:\n");
    if diffs.is_empty() {
        out += "  (none: the configs are the same)\n";
    } else {
        let mut header = vec!["KEY".to_string()];
        header.extend(entries.iter().map(|e| e.id.clone()));
        out += &key_table(&header, &diffs);
    }
    out += "\n";
    out += &text(&rows);
    Ok(Report {
        text: out,
        json: json!({
            "runs": entries.iter().map(|e| &e.id).collect::<Vec<_>>(),
            "differing_config": diffs.iter().map(|(k, v)| json!({"key": k, "values": v})).collect::<Vec<_>>(),
            "rows": rows,
        }),
    })
}

/// A key column and one value column per run, indented.
fn key_table(header: &[String], rows: &[(String, Vec<String>)]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(k, vals)| {
            std::iter::once(k.clone())
                .chain(vals.iter().cloned())
                .collect()
        })
        .collect();
    aligned(header, &rows)
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect()
}

pub fn diff(args: &DiffArgs) -> Result<Report> {
    let store = args.store.open();
    let (a, b) = (store.find(&args.run_a)?, store.find(&args.run_b)?);
    let bootstrap = args.bootstrap.options()?;
    let d = diff_runs(&a, &b, bootstrap)?;
    let name = |p: &std::path::Path| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let (na, nb) = (name(&a), name(&b));
    let Some(tests) = &d.tests else {
        bail!(
            "cannot compare {na} with {nb}: {}",
            d.untested.as_deref().unwrap_or("no questions scored")
        );
    };
    let mut out = format!(
        "A = {na}\nB = {nb}\nright in both: {}\nwrong in both: {}\nright → wrong (A right, B wrong): {}\nwrong → right (A wrong, B right): {}\n",
        d.both_right,
        d.both_wrong,
        d.right_to_wrong.len(),
        d.wrong_to_right.len()
    );
    out += &tests_text(tests);
    for (title, flips) in [
        ("right → wrong", &d.right_to_wrong),
        ("wrong → right", &d.wrong_to_right),
    ] {
        if flips.is_empty() || args.limit == 0 {
            continue;
        }
        out += &format!(
            "\n{title} ({} of {}):\n",
            flips.len().min(args.limit),
            flips.len()
        );
        let rows: Vec<[String; 5]> = flips
            .iter()
            .take(args.limit)
            .map(|f| {
                [
                    f.id.clone(),
                    quote(&f.answer_a),
                    quote(&f.answer_b),
                    format!("{:.2}", f.f1_a),
                    format!("{:.2}", f.f1_b),
                ]
            })
            .collect();
        out += &aligned(&["ID", "A ANSWER", "B ANSWER", "F1 A", "F1 B"], &rows);
    }
    Ok(Report {
        text: out,
        json: json!({"a": na, "b": nb, "diff": d}),
    })
}

/// McNemar's test, the ΔF1 interval and the verdict, a line each.
fn tests_text(t: &PairedTests) -> String {
    let m = &t.mcnemar;
    let method = match m.method {
        McNemarMethod::ExactBinomial => format!(
            "exact binomial, {} flips < 25: statistic min(b, c) = {}",
            m.right_to_wrong + m.wrong_to_right,
            m.statistic
        ),
        McNemarMethod::ChiSquaredCorrected => format!(
            "χ² with continuity correction, {} flips: statistic {:.4}",
            m.right_to_wrong + m.wrong_to_right,
            m.statistic
        ),
    };
    let i = &t.delta_f1;
    format!(
        "\nMcNemar's test on EM flips (b = {}, c = {}; {method}): p = {}\n\
         ΔF1 (B − A) = {:+.2}, 95% CI [{:+.2}, {:+.2}] (paired percentile bootstrap over {} questions, {} resamples, seed {})\n\
         {}\n",
        m.right_to_wrong,
        m.wrong_to_right,
        show_p(m.p_value),
        i.delta,
        i.low,
        i.high,
        t.questions,
        i.resamples,
        i.seed,
        t.verdict
    )
}

fn quote(s: &str) -> String {
    let short: String = s.chars().take(40).collect();
    if short.len() < s.len() {
        format!("\"{short}…\"")
    } else {
        format!("\"{short}\"")
    }
}

pub fn export(args: &ExportArgs) -> Result<Report> {
    let entries = load_runs(&args.store.open(), &args.runs)?;
    let rows: Vec<Row> = comparison_rows(
        &entries,
        &ReferenceResults::builtin(),
        &TableOptions {
            group_seeds: !args.no_group,
            include_references: !args.no_references,
            baseline: args.baseline.clone(),
        },
    )?;
    let body = render(&rows, args.format)?;
    write_or_print(body, args.out.as_ref(), rows.len())
}

pub fn export_metrics(args: &ExportMetricsArgs) -> Result<Report> {
    let format = match args.format.as_str() {
        "csv" => Format::Csv,
        "jsonl" => Format::Json,
        "tensorboard" => return export_tensorboard(args),
        other => bail!("--format {other:?}: expected csv, jsonl or tensorboard"),
    };
    let dir = args.store.open().find(&args.run)?;
    let log = read_metrics(&dir);
    for p in &log.problems {
        eprintln!("warning: {p}");
    }
    let steps = log.steps();
    let body = render_steps(&steps, format)?;
    write_or_print(body, args.out.as_ref(), steps.len())
}

/// `--format tensorboard --out DIR`: an event file in DIR, for
/// `tensorboard --logdir` on DIR or a folder above it.
fn export_tensorboard(args: &ExportMetricsArgs) -> Result<Report> {
    let Some(out) = &args.out else {
        bail!("--format tensorboard writes an event file into a folder: give --out DIR");
    };
    let dir = args.store.open().find(&args.run)?;
    let (path, scalars, problems) = crate::report::tensorboard::export_run_dir(&dir, out)?;
    for p in &problems {
        eprintln!("warning: {p}");
    }
    Ok(Report {
        text: format!(
            "wrote {scalars} scalars to {}\nview them with: tensorboard --logdir {}\n",
            path.display(),
            out.display()
        ),
        json: json!({"out": path, "scalars": scalars}),
    })
}

/// With `--out`, writes the file and reports it; else the body is the output.
fn write_or_print(body: String, out: Option<&PathBuf>, rows: usize) -> Result<Report> {
    match out {
        Some(path) => {
            crate::fsutil::write_atomically(path, body.as_bytes())?;
            Ok(Report {
                text: format!("wrote {rows} rows to {}\n", path.display()),
                json: json!({"out": path, "rows": rows}),
            })
        }
        None => Ok(Report {
            json: json!({"rows": rows, "content": body}),
            text: body,
        }),
    }
}
