//! `squadlab score` and `squadlab postprocess`.

use super::args::{AnswerArgs, WindowArgs};
use super::inputs::{load_data, load_tokenizer};
use super::Report;
use crate::config::DEFAULT_MAX_CONTEXT_CHARS;
use crate::data::{FeatureSet, Split};
use crate::eval::{
    load_na_probs, load_predictions, postprocess, score, score_predictions, score_v2, write_nbest,
    write_predictions, Scores, WindowLogits, DEFAULT_NA_PROB_THRESH,
};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct ScoreArgs {
    /// SQuAD dev data: a JSON file, `data:FILE` or `hub:rajpurkar/squad`.
    #[arg(long)]
    data: String,
    /// Official predictions file: `{"question id": "answer"}`.
    #[arg(long)]
    predictions: PathBuf,
    /// Score only the first N questions, in file order.
    #[arg(long)]
    limit: Option<usize>,
    /// Fail on prediction ids that are not questions of the data, instead of
    /// ignoring them with a warning as the official script does.
    #[arg(long)]
    strict: bool,
    /// SQuAD 2.0: each question's no-answer probability (`{id: number}`,
    /// e.g. a run's null_odds.json); adds the best thresholds.
    #[arg(long)]
    na_prob_file: Option<PathBuf>,
    /// SQuAD 2.0: a question whose no-answer probability is above this counts as answered "".
    #[arg(long, default_value_t = DEFAULT_NA_PROB_THRESH, allow_negative_numbers = true)]
    na_prob_thresh: f64,
    #[arg(long)]
    pub json: bool,
}

pub fn run_score(args: &ScoreArgs) -> Result<Report> {
    let data = load_data(
        &args.data,
        Split::Validation,
        args.limit,
        false,
        DEFAULT_MAX_CONTEXT_CHARS,
        true,
    )?;
    let predictions = load_predictions(&args.predictions)?;
    if data.is_v2() {
        return score_squad2(args, &data, &predictions);
    }
    if args.na_prob_file.is_some() {
        bail!(
            "--na-prob-file: {} is SQuAD v1.1 data (no question without an answer, no v2 version), where no-answer probabilities mean nothing",
            data.origin
        );
    }
    let scores = score(&data, &predictions);
    if args.strict && !scores.unknown_ids.is_empty() {
        let mut ids = scores.unknown_ids.clone();
        ids.sort();
        bail!(
            "{}: {} ids are not questions of {} (--strict): {}",
            args.predictions.display(),
            ids.len(),
            data.origin,
            ids.iter()
                .take(5)
                .map(|id| format!("{id:?}"))
                .collect::<Vec<_>>()
                .join(", ")
                + if ids.len() > 5 { ", …" } else { "" }
        );
    }
    warn_about(&scores);
    Ok(score_report(&scores, json!({})))
}

/// The official v2.0 keys, in evaluate-v2.0.py's order.
fn score_squad2(
    args: &ScoreArgs,
    data: &crate::data::SquadDataset,
    predictions: &std::collections::HashMap<String, String>,
) -> Result<Report> {
    if !args.na_prob_thresh.is_finite() {
        bail!("--na-prob-thresh must be a finite number");
    }
    let na_probs = args
        .na_prob_file
        .as_deref()
        .map(load_na_probs)
        .transpose()?;
    let (scores, breakdown) = score_v2(data, predictions, na_probs.as_ref(), args.na_prob_thresh)
        .with_context(|| {
        format!(
            "scoring {} against {}",
            args.predictions.display(),
            data.origin
        )
    })?;
    if args.strict && !scores.unknown_ids.is_empty() {
        bail!(
            "{}: {} ids are not questions of {} (--strict), first {:?}",
            args.predictions.display(),
            scores.unknown_ids.len(),
            data.origin,
            scores.unknown_ids[0]
        );
    }
    warn_about(&scores);
    let mut keys = vec![
        ("exact", json!(scores.exact_match)),
        ("f1", json!(scores.f1)),
        ("total", json!(scores.total)),
    ];
    keys.extend(breakdown.official_keys());
    let text = keys.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    let mut json = serde_json::Map::new();
    for (k, v) in keys {
        json.insert(k.to_string(), v);
    }
    json.insert("version".into(), json!("2.0"));
    Ok(Report {
        text,
        json: json.into(),
    })
}

fn warn_about(scores: &Scores) {
    if !scores.unknown_ids.is_empty() {
        eprintln!(
            "warning: ignored {} predictions whose ids are not in the data (first: {:?})",
            scores.unknown_ids.len(),
            scores.unknown_ids[0]
        );
    }
    if scores.unanswered > 0 {
        eprintln!(
            "warning: {} questions have no prediction and score 0",
            scores.unanswered
        );
    }
}

fn score_report(scores: &Scores, extra: serde_json::Value) -> Report {
    let mut j =
        json!({ "exact_match": scores.exact_match, "f1": scores.f1, "total": scores.total });
    let mut text = format!(
        "exact_match: {}\nf1: {}\ntotal: {}\n",
        scores.exact_match, scores.f1, scores.total
    );
    if let serde_json::Value::Object(extra) = extra {
        for (k, v) in extra {
            text.push_str(&format!("{k}: {v}\n"));
            j[k] = v;
        }
    }
    Report { text, json: j }
}

#[derive(Args)]
pub struct PostprocessArgs {
    /// SQuAD dev data: a JSON file, `data:FILE` or `hub:rajpurkar/squad`.
    #[arg(long)]
    data: String,
    /// tokenizer.json, vocab.txt, a model folder, or a model source such as `pip:PACKAGE`.
    #[arg(long)]
    tokenizer: String,
    /// Raw little-endian f32 logits, shape [windows, 2, max_length]: start row then end row.
    #[arg(long)]
    logits: PathBuf,
    #[command(flatten)]
    window: WindowArgs,
    #[command(flatten)]
    answer: AnswerArgs,
    #[arg(long)]
    limit: Option<usize>,
    /// Write the official `{id: answer}` predictions here.
    #[arg(long)]
    predictions_out: Option<PathBuf>,
    /// Write each question's n-best candidates (text, score, character span) here.
    #[arg(long)]
    nbest_out: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

pub fn run_postprocess(args: &PostprocessArgs) -> Result<Report> {
    let pp = args.answer.params(args.window.version_2_with_negative)?;
    let data = load_data(
        &args.data,
        Split::Validation,
        args.limit,
        false,
        args.window.max_context_chars,
        args.window.version_2_with_negative,
    )?;
    let tokenizer = load_tokenizer(&args.tokenizer)?;
    let params = args.window.params();
    let features = FeatureSet::build(&data, &tokenizer, params)?;
    let (start, end) = read_logits(&args.logits, features.len(), args.window.max_length)?;
    let logits = WindowLogits {
        start: &start,
        end: &end,
        row_len: args.window.max_length,
    };

    let timer = Instant::now();
    let predictions = postprocess(&data, &features, &logits, pp);
    let scores = score_predictions(&data, &predictions);
    let seconds = timer.elapsed().as_secs_f64();

    if let Some(path) = &args.predictions_out {
        write_predictions(path, &predictions)?;
    }
    if let Some(path) = &args.nbest_out {
        write_nbest(path, &predictions)?;
    }
    warn_about(&scores);
    Ok(score_report(
        &scores,
        json!({ "windows": features.len(), "seconds": seconds }),
    ))
}

/// Splits the [windows, 2, L] file into start and end matrices.
fn read_logits(path: &PathBuf, windows: usize, row_len: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read logits {}", path.display()))?;
    let expected = windows * 2 * row_len * 4;
    if bytes.len() != expected {
        bail!(
            "{}: {} bytes, but {windows} windows × 2 × {row_len} f32 logits need {expected}",
            path.display(),
            bytes.len()
        );
    }
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let (mut start, mut end) = (
        Vec::with_capacity(windows * row_len),
        Vec::with_capacity(windows * row_len),
    );
    for pair in values.chunks_exact(2 * row_len) {
        start.extend_from_slice(&pair[..row_len]);
        end.extend_from_slice(&pair[row_len..]);
    }
    Ok((start, end))
}
