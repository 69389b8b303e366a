//! `breakdown`: where runs fail, by question type, answer length or passage
//! length, each bucket with intervals and, for several runs, its ΔF1 against
//! the first run with the paired tests.

use super::args::{BootstrapArgs, StoreArgs};
use super::Report;
use crate::report::significance::show_p;
use crate::report::{aligned, breakdown_runs, render_breakdown, Breakdown, Dimension, Format};
use anyhow::Result;
use clap::Args;
use serde_json::json;

#[derive(Args)]
pub struct BreakdownArgs {
    /// Runs: ids (or unique prefixes), names, folders or `latest`; the
    /// first is the one the others are compared with.
    #[arg(required = true)]
    runs: Vec<String>,
    /// question-type, answer-length or context-length.
    #[arg(long)]
    by: Dimension,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    bootstrap: BootstrapArgs,
    /// Print the table as md, csv or tex (the app's Analysis export)
    /// instead of the text report.
    #[arg(long)]
    format: Option<Format>,
    #[arg(long)]
    pub json: bool,
}

pub fn breakdown(args: &BreakdownArgs) -> Result<Report> {
    let bootstrap = args.bootstrap.options()?;
    let store = args.store.open();
    let dirs = args
        .runs
        .iter()
        .map(|spec| store.find(spec))
        .collect::<Result<Vec<_>>>()?;
    let dirs: Vec<&std::path::Path> = dirs.iter().map(|d| d.as_path()).collect();
    let b = breakdown_runs(&dirs, args.by, bootstrap)?;
    let text = match args.format {
        Some(format) => render_breakdown(&b, format)?,
        None => breakdown_text(&b),
    };
    Ok(Report {
        text,
        json: json!({ "breakdown": b }),
    })
}

fn breakdown_text(b: &Breakdown) -> String {
    let interval = |[lo, hi]: [f64; 2]| format!("[{lo:.1}, {hi:.1}]");
    let label = |id: &str| match b.runs.iter().find(|r| r.run_id == id) {
        Some(r) if !r.name.is_empty() => format!("{} ({id})", r.name),
        _ => id.to_string(),
    };
    let mut out = String::new();
    for run in &b.runs {
        let label = label(&run.run_id);
        out += &format!("{label} by {}:\n", b.by);
        let header = ["bucket", "questions", "EM", "95% CI", "F1", "95% CI"];
        let rows: Vec<Vec<String>> = run
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.bucket.clone(),
                    r.count.to_string(),
                    format!("{:.2}", r.exact_match),
                    interval(r.exact_match_interval),
                    format!("{:.2}", r.f1),
                    interval(r.f1_interval),
                ]
            })
            .collect();
        out += &aligned(&header, &rows);
        out += "\n";
    }
    for c in &b.comparisons {
        out += &format!(
            "{} against {} (paired, on the questions both scored):\n",
            label(&c.run_id),
            label(&c.baseline)
        );
        let header = ["bucket", "questions", "ΔF1", "95% CI", "McNemar p", ""];
        let rows: Vec<Vec<String>> = c
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.bucket.clone(),
                    r.count.to_string(),
                    format!("{:+.2}", r.delta_f1.delta),
                    format!("[{:+.2}, {:+.2}]", r.delta_f1.low, r.delta_f1.high),
                    show_p(r.mcnemar.p_value),
                    if r.significant { "*" } else { "n.s." }.to_string(),
                ]
            })
            .collect();
        out += &aligned(&header, &rows);
        out += "*: McNemar's p < 0.05 or an interval without 0.\n\n";
    }
    out
}
