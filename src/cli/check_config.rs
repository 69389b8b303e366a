//! `squadlab check-config`: validate a run config and print it in full.

use super::Report;
use crate::config::RunConfig;
use crate::model::{locate_model, BertConfig};
use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct CheckConfigArgs {
    /// A RON run config, e.g. experiments/minilm-squad-quick.ron.
    file: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &CheckConfigArgs) -> Result<Report> {
    let config = RunConfig::load(&args.file)?;
    // The model's position limit is checked when its files are at hand without a download.
    let model_note = match locate_model(&config.model, false) {
        Ok(files) => {
            let model = BertConfig::load(&files.config_json())?;
            config
                .validate_positions(model.max_position_embeddings)
                .map_err(|e| e.in_file(&args.file))?;
            format!("model {} found at {}", config.model, files.dir.display())
        }
        Err(e) => format!("model not checked: {e:#}"),
    };
    let fit = crate::memory::check_run(&config, &crate::memory::gpus::query_gpus());
    let memory_note = match &fit {
        Some(fit) if fit.refuse => bail!("{}: {}", args.file.display(), fit.message),
        Some(fit) if fit.warn => format!("warning: training {}", fit.message),
        Some(fit) => format!("training {}", fit.message),
        None => "memory not planned: the model's config.json is not at hand".to_string(),
    };
    eprintln!(
        "{}: valid; {model_note}; {memory_note}",
        args.file.display()
    );
    Ok(Report {
        text: config.to_ron(),
        json: json!({
            "valid": true, "model_check": model_note, "memory": memory_note,
            "memory_plan": fit.as_ref().map(|f| json!({
                "planned_total_bytes": f.plan.total(), "device": f.device.name,
                "device_free_bytes": f.device.free, "plan": f.plan,
            })),
            "config": serde_json::to_value(&config)?,
        }),
    })
}
