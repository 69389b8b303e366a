//! `squadlab features`: windows of a SQuAD file, counted and optionally dumped.

use super::args::WindowArgs;
use super::inputs::{load_data, load_tokenizer};
use super::Report;
use crate::data::{FeatureSet, Split, SquadDataset};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct FeaturesArgs {
    /// SQuAD data: a JSON file, `data:FILE` or `hub:rajpurkar/squad`.
    #[arg(long)]
    data: String,
    /// tokenizer.json, vocab.txt, a model folder, or a model source such as `pip:PACKAGE`.
    #[arg(long)]
    tokenizer: String,
    #[command(flatten)]
    window: WindowArgs,
    /// Training windows: dump start/end labels (and read the train split from the hub).
    #[arg(long)]
    train: bool,
    /// Only the first N questions, in file order.
    #[arg(long)]
    limit: Option<usize>,
    /// Drop records that fail validation instead of stopping.
    #[arg(long)]
    skip_bad_records: bool,
    /// Write one JSON line per window here.
    #[arg(long)]
    dump: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &FeaturesArgs) -> Result<Report> {
    let split = if args.train {
        Split::Train
    } else {
        Split::Validation
    };
    let data = load_data(
        &args.data,
        split,
        args.limit,
        args.skip_bad_records,
        args.window.max_context_chars,
        args.window.version_2_with_negative,
    )?;
    let tokenizer = load_tokenizer(&args.tokenizer)?;
    let params = args.window.params();

    // Timed: windowing only, not loading the file or the tokenizer.
    let timer = Instant::now();
    let features = FeatureSet::build(&data, &tokenizer, params)?;
    let seconds = timer.elapsed().as_secs_f64();

    if let Some(path) = &args.dump {
        dump(path, &data, &features, args.train)?;
    }
    let (questions, windows, zero) = (data.len(), features.len(), features.zero_labelled());
    Ok(Report {
        text: format!("questions: {questions}\nwindows: {windows}\nzero_labelled: {zero}\nseconds: {seconds:.3}\n"),
        json: json!({ "questions": questions, "windows": windows, "zero_labelled": zero, "seconds": seconds }),
    })
}

fn dump(path: &Path, data: &SquadDataset, features: &FeatureSet, labels: bool) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    for w in 0..features.len() {
        let win = &features.windows[w];
        let t = features.tensors(w, data, features.params.max_length);
        let offsets: Vec<Option<[u32; 2]>> = (0..t.input_ids.len())
            .map(|pos| features.offset(w, pos, data).map(|(s, e)| [s, e]))
            .collect();
        let mut line = json!({
            "example_id": data.examples[win.example as usize].id,
            "input_ids": t.input_ids,
            "token_type_ids": t.token_type_ids,
            "attention_mask": t.attention_mask,
            "offsets": offsets,
        });
        if labels {
            line["start_position"] = json!(win.start_position);
            line["end_position"] = json!(win.end_position);
        }
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}
