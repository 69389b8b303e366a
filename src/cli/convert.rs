//! `squadlab convert`: re-save any checkpoint squadlab reads (pickle, bare
//! BertModel, legacy names) as a `BertForQuestionAnswering` safetensors folder.

use super::Report;
use crate::config::ModelSource;
use crate::model::{load_qa_model, locate_model, save_pretrained, TokenizerFile};
use anyhow::{anyhow, bail, Result};
use candle_core::Device;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct ConvertArgs {
    /// A model folder, hub id or `pip:PACKAGE`.
    #[arg(long)]
    model: String,
    /// The new folder; must not exist yet.
    #[arg(long)]
    out: PathBuf,
    /// Seed for a QA head the source lacks.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ConvertArgs) -> Result<Report> {
    if args.out.exists() {
        bail!(
            "{} already exists; squadlab never overwrites a folder",
            args.out.display()
        );
    }
    let source = ModelSource::try_from(args.model.clone())
        .map_err(|e| anyhow!("--model {:?}: {e}", args.model))?;
    let files = locate_model(&source, true)?;
    let loaded = load_qa_model(&files.dir, &Device::Cpu, args.seed)?;
    save_pretrained(
        &args.out,
        &loaded.config,
        &loaded.params,
        Some(&TokenizerFile::read(&files.tokenizer())?),
    )?;
    let initialised = &loaded.report.initialised;
    Ok(Report {
        text: format!(
            "saved {} as a BertForQuestionAnswering folder at {}{}\n",
            files.dir.display(),
            args.out.display(),
            if initialised.is_empty() {
                String::new()
            } else {
                format!(" (initialised: {})", initialised.join(", "))
            }
        ),
        json: json!({ "out": args.out, "initialised": initialised, "unused": loaded.report.unused }),
    })
}
