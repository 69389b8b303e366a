//! `squadlab predict`: answer one question about one passage with a model.

use super::args::{AnswerArgs, WindowArgs};
use super::Report;
use crate::config::ModelSource;
use crate::data::{Context, Example, FeatureSet, QaTokenizer, SquadDataset};
use crate::eval::{postprocess, window_logits, WindowLogits};
use crate::model::{load_qa_model, locate_model};
use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use clap::Args;
use serde_json::json;

#[derive(Args)]
pub struct PredictArgs {
    /// A fine-tuned model: a folder, a hub id, or `pip:PACKAGE`.
    #[arg(long)]
    model: String,
    #[arg(long)]
    question: String,
    /// The passage; longer ones are cut into overlapping windows.
    #[arg(long)]
    context: String,
    #[command(flatten)]
    window: WindowArgs,
    #[command(flatten)]
    answer: AnswerArgs,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PredictArgs) -> Result<Report> {
    if args.question.trim().is_empty() || args.context.trim().is_empty() {
        bail!("--question and --context must not be empty");
    }
    let pp = args.answer.params()?;
    let source = ModelSource::try_from(args.model.clone())
        .map_err(|e| anyhow!("--model {:?}: {e}", args.model))?;
    let files = locate_model(&source, true)?;
    let tokenizer = QaTokenizer::from_path(&files.tokenizer())?;
    let device = Device::Cpu;
    let loaded = load_qa_model(&files.dir, &device, 0)?;
    if !loaded.report.initialised.is_empty() {
        eprintln!(
            "warning: {} has no trained QA head ({} freshly initialised): its answers are arbitrary",
            files.dir.display(),
            loaded.report.initialised.join(", ")
        );
    }
    loaded
        .config
        .check_inputs(&tokenizer, args.window.max_length, "--max-length")?;
    let data = SquadDataset {
        origin: "the command line".into(),
        titles: vec![String::new()],
        contexts: vec![Context {
            title: 0,
            text: args.context.clone(),
        }],
        examples: vec![Example {
            id: "question".into(),
            question: args.question.clone(),
            context: 0,
            answers: vec![],
        }],
        skipped: vec![],
    };
    let params = args.window.params();
    let features = FeatureSet::build(&data, &tokenizer, params)?;
    let (start, end) = window_logits(&loaded.model, &data, &features, 32, &device)?;
    let logits = WindowLogits {
        start: &start,
        end: &end,
        row_len: args.window.max_length,
    };
    let prediction = postprocess(&data, &features, &logits, pp).remove(0);
    let best = prediction.best();
    let mut text = match best {
        Some(b) => format!(
            "answer: {}\nscore: {}\nspan: {}..{}\n",
            b.text, b.score, b.start_char, b.end_char
        ),
        None => "answer: (none: no span qualified)\n".into(),
    };
    text.push_str(&format!("windows: {}\ncandidates:\n", features.len()));
    for c in prediction.nbest.iter().take(5) {
        text.push_str(&format!(
            "  {:>8.3}  {:?} [{}..{}]\n",
            c.score, c.text, c.start_char, c.end_char
        ));
    }
    Ok(Report {
        text,
        json: json!({
            "answer": prediction.text,
            "score": best.map(|b| b.score),
            "start_char": best.map(|b| b.start_char),
            "end_char": best.map(|b| b.end_char),
            "candidates": prediction.nbest,
        }),
    })
}
