//! `squadlab predict`: answer one question about one passage with a model.

use super::args::{AnswerArgs, WindowArgs};
use super::Report;
use crate::config::ModelSource;
use crate::eval::{Answer, Answerer};
use anyhow::{anyhow, bail, Result};
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
    let source = ModelSource::try_from(args.model.clone())
        .map_err(|e| anyhow!("--model {:?}: {e}", args.model))?;
    let answerer = Answerer::load(
        &source,
        args.window.params(),
        args.answer.params(args.window.version_2_with_negative)?,
    )?;
    if let Some(warning) = &answerer.warning {
        eprintln!("warning: {warning}");
    }
    let Answer {
        prediction,
        windows,
    } = answerer.answer(&args.question, &args.context)?;
    let best = prediction.best();
    let mut text = match best {
        Some(b) => format!(
            "answer: {}\nscore: {}\nspan: {}..{}\n",
            b.text, b.score, b.start_char, b.end_char
        ),
        None => "answer: (none: no span qualified)\n".into(),
    };
    text.push_str(&format!("windows: {windows}\ncandidates:\n"));
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
