//! Everything a run needs before its first step: data, windows, tokenizer,
//! model (fresh from its source, or from a checkpoint when resuming), device.

use super::checkpoint::{check_resumable, check_warmup, load_run_config, load_state, TrainerState};
use crate::config::RunConfig;
use crate::data::{
    load_source, FeatureSet, LoadOptions, QaTokenizer, Split, SquadDataset, WindowParams,
};
use crate::model::{
    compute_dtype, load_qa_model, locate_model, select_device, LoadedModel, TokenizerFile,
};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use std::path::{Path, PathBuf};

pub struct Prepared {
    pub config: RunConfig,
    pub train: SquadDataset,
    pub train_features: FeatureSet,
    pub eval: SquadDataset,
    pub eval_features: FeatureSet,
    /// The questions in-training evaluations score, when
    /// `in_training_eval_samples` takes fewer than the whole evaluation set.
    pub in_training_eval: Option<(SquadDataset, FeatureSet)>,
    /// The tokenizer file copied into every checkpoint and the final model.
    pub tokenizer_file: TokenizerFile,
    pub model: LoadedModel,
    pub device: Device,
    /// The thread that created `device`. `Device::new_cuda` binds a stream to
    /// it: every upload and op must be issued from it (the trainer checks).
    pub device_thread: std::thread::ThreadId,
    pub compute: DType,
    /// The checkpoint and its state when resuming.
    pub resume: Option<(PathBuf, TrainerState)>,
}

pub fn prepare(
    config: &RunConfig,
    resume: Option<&Path>,
    status: &mut dyn FnMut(String),
) -> Result<Prepared> {
    config.validate()?;
    let resume = match resume {
        Some(dir) => {
            check_resumable(&load_run_config(dir)?, config, dir)?;
            Some((dir.to_path_buf(), load_state(dir)?))
        }
        None => None,
    };
    let device = select_device(config.device)?;
    crate::model::cuda_tuning::set_tf32(config.tf32);
    let compute = compute_dtype(config.dtype, &device, config.graph)?;

    status(format!("locating model {}", config.model.as_str()));
    let files = locate_model(&config.model, true)?;
    let model_dir = resume
        .as_ref()
        .map_or(files.dir.clone(), |(d, _)| d.clone());
    let tokenizer_path = match &resume {
        Some((dir, _)) if dir.join("tokenizer.json").is_file() => dir.join("tokenizer.json"),
        _ => files.tokenizer(),
    };
    let tokenizer = QaTokenizer::from_path(&tokenizer_path)?;
    let tokenizer_file = TokenizerFile::read(&tokenizer_path)?;
    status(format!(
        "loading model weights from {}",
        model_dir.display()
    ));
    let model = load_qa_model(&model_dir, &device, config.seed)
        .with_context(|| format!("loading model {}", model_dir.display()))?;
    model
        .config
        .check_inputs(&tokenizer, config.max_seq_length, "max_seq_length")?;

    let params = WindowParams {
        max_length: config.max_seq_length,
        stride: config.doc_stride,
    };
    let load = |split: Split, limit: Option<usize>, status: &mut dyn FnMut(String)| {
        let source = match split {
            Split::Train => &config.data.train,
            Split::Validation => &config.data.validation,
        };
        let articles = match split {
            Split::Train => config.data.train_articles,
            Split::Validation => config.data.eval_articles,
        };
        status(format!("loading {split:?} data from {}", source.as_str()));
        let data = load_source(
            source,
            split,
            &LoadOptions {
                limit,
                skip_bad_records: config.data.skip_bad_records,
                max_context_chars: config.data.max_context_chars,
                version_2_with_negative: config.version_2_with_negative,
                articles: articles.map(|(from, to)| from..to),
            },
        )?;
        if data.is_empty() {
            bail!("{}: no questions to use", data.origin);
        }
        status(format!(
            "windowing {} questions of {}",
            data.len(),
            data.origin
        ));
        let features = FeatureSet::build(&data, &tokenizer, params)?;
        Ok::<_, anyhow::Error>((data, features))
    };
    let (train, train_features) = load(Split::Train, config.data.max_train_samples, status)?;
    if let Some((dir, state)) = &resume {
        let plan = super::schedule::StepPlan::new(config, train_features.len());
        check_warmup(state, config, plan.total_steps, dir)?;
    }
    let (eval, eval_features) = load(Split::Validation, config.data.max_eval_samples, status)?;
    let in_training_eval = match config.in_training_eval_samples {
        Some(n) if n < eval.len() && config.eval_strategy != crate::config::EvalStrategy::No => {
            let subset = eval.first(n);
            let features = FeatureSet::build(&subset, &tokenizer, params)?;
            Some((subset, features))
        }
        _ => None,
    };
    Ok(Prepared {
        config: config.clone(),
        train,
        train_features,
        eval,
        eval_features,
        in_training_eval,
        tokenizer_file,
        model,
        device,
        device_thread: std::thread::current().id(),
        compute,
        resume,
    })
}
