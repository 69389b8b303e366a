//! One question about one passage: the `predict` command's and the GUI
//! playground's shared core. The model is loaded once and asked many times.

use super::{postprocess, window_logits, PostprocessParams, Prediction, WindowLogits};
use crate::config::ModelSource;
use crate::data::{Context, Example, FeatureSet, QaTokenizer, SquadDataset, WindowParams};
use crate::model::{load_qa_model, locate_model, BertQa};
use anyhow::{bail, Result};
use candle_core::Device;
use std::path::PathBuf;

pub struct Answerer {
    pub dir: PathBuf,
    /// Set when the model has no trained QA head: its answers are arbitrary.
    pub warning: Option<String>,
    model: BertQa,
    tokenizer: QaTokenizer,
    window: WindowParams,
    params: PostprocessParams,
    device: Device,
}

/// The best span and its rivals, and how many windows the passage took.
pub struct Answer {
    pub prediction: Prediction,
    pub windows: usize,
}

impl Answerer {
    pub fn load(
        source: &ModelSource,
        window: WindowParams,
        params: PostprocessParams,
    ) -> Result<Self> {
        let files = locate_model(source, true)?;
        let tokenizer = QaTokenizer::from_path(&files.tokenizer())?;
        let device = Device::Cpu;
        let loaded = load_qa_model(&files.dir, &device, 0)?;
        loaded
            .config
            .check_inputs(&tokenizer, window.max_length, "--max-length")?;
        let warning = (!loaded.report.initialised.is_empty()).then(|| {
            format!(
                "{} has no trained QA head ({} freshly initialised): its answers are arbitrary",
                files.dir.display(),
                loaded.report.initialised.join(", ")
            )
        });
        Ok(Self {
            dir: files.dir,
            warning,
            model: loaded.model,
            tokenizer,
            window,
            params,
            device,
        })
    }

    pub fn answer(&self, question: &str, context: &str) -> Result<Answer> {
        if question.trim().is_empty() || context.trim().is_empty() {
            bail!("the question and the passage must not be empty");
        }
        let data = SquadDataset {
            origin: "the passage given".into(),
            titles: vec![String::new()],
            contexts: vec![Context {
                title: 0,
                text: context.to_string(),
            }],
            examples: vec![Example {
                id: "question".into(),
                question: question.to_string(),
                context: 0,
                answers: vec![],
                plausible_answers: vec![],
            }],
            skipped: vec![],
            version: None,
        };
        let features = FeatureSet::build(&data, &self.tokenizer, self.window)?;
        let (start, end) = window_logits(&self.model, &data, &features, 32, &self.device)?;
        let logits = WindowLogits {
            start: &start,
            end: &end,
            row_len: self.window.max_length,
        };
        let prediction = postprocess(&data, &features, &logits, self.params).remove(0);
        Ok(Answer {
            prediction,
            windows: features.len(),
        })
    }
}
