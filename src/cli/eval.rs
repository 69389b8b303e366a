//! `squadlab eval`: score a model (a checkpoint, a run, or any model source) on SQuAD questions.

use super::args::{AnswerArgs, WindowArgs};
use super::inputs::load_data;
use super::Report;
use crate::config::{Device, ModelSource};
use crate::data::{FeatureSet, QaTokenizer, Split};
use crate::eval::evaluate;
use crate::model::{load_qa_model, locate_model, select_device};
use crate::store;
use crate::train::checkpoint::list_checkpoints;
use anyhow::{anyhow, bail, Result};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct EvalArgs {
    /// A model folder or checkpoint, a run folder or run id (its final model,
    /// else its latest checkpoint), a hub id, or `pip:PACKAGE`.
    #[arg(long)]
    model: String,
    /// SQuAD questions: a JSON file, `data:FILE` or `hub:rajpurkar/squad`.
    #[arg(long)]
    data: String,
    /// Evaluate only the first N questions.
    #[arg(long)]
    limit: Option<usize>,
    /// Write predictions here (`{id: answer}`); n-best lists and per-question
    /// scores go beside it as `.nbest.json` and `.scores.json`.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// auto, cpu or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long)]
    skip_bad_records: bool,
    #[command(flatten)]
    window: WindowArgs,
    #[command(flatten)]
    answer: AnswerArgs,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &EvalArgs) -> Result<Report> {
    let pp = args.answer.params(args.window.version_2_with_negative)?;
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let device = select_device(
        args.device
            .parse::<Device>()
            .map_err(|e| anyhow!("--device: {e}"))?,
    )?;
    let dir = model_dir(&args.model)?;
    let loaded = load_qa_model(&dir, &device, 0)?;
    if !loaded.report.initialised.is_empty() {
        eprintln!(
            "warning: {} has no trained QA head ({} freshly initialised): scores will be near zero",
            dir.display(),
            loaded.report.initialised.join(", ")
        );
    }
    let tokenizer =
        QaTokenizer::from_path(&crate::model::ModelFiles { dir: dir.clone() }.tokenizer())?;
    loaded
        .config
        .check_inputs(&tokenizer, args.window.max_length, "--max-length")?;
    let data = load_data(
        &args.data,
        Split::Validation,
        args.limit,
        args.skip_bad_records,
        args.window.max_context_chars,
        args.window.version_2_with_negative,
    )?;
    let features = FeatureSet::build(&data, &tokenizer, args.window.params())?;
    let out = evaluate(
        &loaded.model,
        &data,
        &features,
        pp,
        args.batch_size,
        &device,
    )?;
    if let Some(path) = &args.out {
        out.write(path, &sibling(path, "nbest"), &sibling(path, "scores"))?;
    }
    let s = &out.scores;
    let mut text = format!(
        "model: {}\nexact_match: {:.2}\nf1: {:.2}\ntotal: {}\nwindows: {}\nseconds: {:.1}\n",
        dir.display(),
        s.exact_match,
        s.f1,
        s.total,
        out.windows,
        out.seconds
    );
    let mut json = json!({
        "exact_match": s.exact_match,
        "f1": s.f1,
        "total": s.total,
        "windows": out.windows,
        "seconds": out.seconds,
    });
    // SQuAD 2.0: the official v2 keys beside them.
    for (k, v) in out.squad_v2.iter().flat_map(|b| b.official_keys()) {
        text.push_str(&format!("{k}: {v}\n"));
        json[k] = v;
    }
    Ok(Report { text, json })
}

/// `pred.json` → `pred.<kind>.json`.
fn sibling(path: &Path, kind: &str) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}.{kind}.json"))
}

/// The model folder behind `spec`: a model folder, a run (folder or id in the
/// store), or a model source.
fn model_dir(spec: &str) -> Result<PathBuf> {
    let path = Path::new(spec);
    let in_store = store::store_root(None).join("runs").join(spec);
    for candidate in [path, in_store.as_path()] {
        if candidate.join("config.json").is_file() {
            return Ok(candidate.to_path_buf());
        }
        if candidate.join("model").join("config.json").is_file() {
            return Ok(candidate.join("model"));
        }
        if let Some((_, latest)) = list_checkpoints(candidate).pop() {
            return Ok(latest);
        }
        if candidate.is_dir() {
            bail!(
                "{} holds no model: no config.json, no model/ and no checkpoints/",
                candidate.display()
            );
        }
    }
    let source =
        ModelSource::try_from(spec.to_string()).map_err(|e| anyhow!("--model {spec:?}: {e}"))?;
    Ok(locate_model(&source, true)?.dir)
}
