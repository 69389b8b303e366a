use super::*;

fn parse(text: &str) -> Result<RunConfig, ConfigError> {
    RunConfig::from_ron(text, "test.ron")
}

#[test]
fn defaults_are_the_reference_notebooks() {
    let c = parse("RunConfig()").unwrap();
    assert_eq!(c, RunConfig::default());
    assert_eq!((c.max_seq_length, c.doc_stride), (384, 128));
    assert_eq!(
        (c.per_device_train_batch_size, c.gradient_accumulation_steps),
        (32, 1)
    );
    assert_eq!(
        (c.num_train_epochs, c.learning_rate, c.weight_decay),
        (3.0, 2e-5, 0.01)
    );
    assert_eq!(
        (c.warmup_steps, c.warmup_ratio, c.max_grad_norm, c.seed),
        (0, 0.0, 1.0, 42)
    );
    assert_eq!((c.n_best_size, c.max_answer_length), (20, 30));
    assert_eq!(
        (c.save_strategy, c.save_total_limit),
        (SaveStrategy::Epoch, Some(3))
    );
    assert_eq!((c.device, c.dtype), (Device::Auto, DType::F32));
    assert_eq!(c.model.as_str(), "google-bert/bert-base-uncased");
}

#[test]
fn enums_read_as_hugging_face_writes_them() {
    let c =
        parse("RunConfig(device: \"cuda:1\", dtype: bf16, save_strategy: steps, save_steps: 100)")
            .unwrap();
    assert_eq!(
        (c.device, c.dtype, c.save_strategy),
        (Device::Cuda(1), DType::Bf16, SaveStrategy::Steps)
    );
    assert_eq!(
        parse("RunConfig(device: \"cpu\")").unwrap().device,
        Device::Cpu
    );
}

#[test]
fn the_printed_config_parses_back_to_itself() {
    let mut c = RunConfig {
        learning_rate: 1e-4,
        device: Device::Cuda(1),
        ..Default::default()
    };
    c.data.max_train_samples = Some(2500);
    assert_eq!(parse(&c.to_ron()).unwrap(), c);
}

#[test]
fn unknown_fields_and_wrong_types_name_line_and_column() {
    let err =
        parse("RunConfig(\n    learning_rate: 1e-4,\n    lerning_rate: 2e-5,\n)").unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("test.ron:3:"), "{msg}");
    assert!(msg.contains("lerning_rate"), "{msg}");

    let err = parse("RunConfig(\n  per_device_train_batch_size: \"32\",\n)").unwrap_err();
    assert!(err.to_string().starts_with("test.ron:2:"), "{err}");

    let err = parse("RunConfig(\n  device: \"gpu\",\n)").unwrap_err();
    assert!(
        err.to_string().starts_with("test.ron:2:") && err.to_string().contains("cuda:N"),
        "{err}"
    );

    let err = parse("RunConfig(data: (train: \"hub:a/b/c\"))").unwrap_err();
    assert!(err.to_string().contains("invalid hub id"), "{err}");
}

#[test]
fn impossible_values_each_get_one_message() {
    let cases = [
        (
            "per_device_train_batch_size: 0",
            "per_device_train_batch_size must be at least 1",
        ),
        ("learning_rate: 0.0", "learning_rate must be positive"),
        ("learning_rate: -1e-5", "learning_rate must be positive"),
        (
            "doc_stride: 384",
            "doc_stride (384) must be smaller than max_seq_length (384)",
        ),
        (
            "gradient_accumulation_steps: 0",
            "gradient_accumulation_steps must be at least 1",
        ),
        (
            "num_train_epochs: 0.0",
            "num_train_epochs must be a positive number",
        ),
        ("warmup_ratio: 1.5", "warmup_ratio must be in [0, 1)"),
        (
            "layerwise_lr_decay: 0.0",
            "layerwise_lr_decay must be in (0, 1], got 0",
        ),
        (
            "layerwise_lr_decay: 1.2",
            "layerwise_lr_decay must be in (0, 1], got 1.2",
        ),
        ("adam_beta2: 1.0", "adam_beta2 must be in [0, 1)"),
        (
            "save_total_limit: Some(0)",
            "save_total_limit must be at least 1",
        ),
        ("n_best_size: 0", "n_best_size must be at least 1"),
        (
            "eval_strategy: steps, eval_steps: Some(0)",
            "eval_steps must be at least 1 with eval_strategy: steps",
        ),
        (
            "eval_strategy: steps, logging_steps: 5, save_strategy: epoch, load_best_model_at_end: true",
            "load_best_model_at_end requires save_strategy (epoch) and eval_strategy (steps) to match",
        ),
        (
            "eval_strategy: steps, eval_steps: Some(40), save_strategy: steps, save_steps: 100, load_best_model_at_end: true",
            "load_best_model_at_end requires save_steps (100) to be a round multiple of eval_steps (40)",
        ),
        (
            "load_best_model_at_end: true",
            "load_best_model_at_end requires save_strategy (epoch) and eval_strategy (no) to match",
        ),
        (
            "in_training_eval_samples: Some(0)",
            "in_training_eval_samples must be at least 1",
        ),
        (
            "data: (train: \"no/such/file.json\")",
            "data.train: file no/such/file.json does not exist",
        ),
    ];
    for (field, expected) in cases {
        let mut c = parse(&format!("RunConfig({field})")).unwrap();
        // Keep the data checks off the hub default so only the case's problem shows.
        if !field.starts_with("data") {
            c.data = DataConfig::default();
        }
        let problems = c.validate().unwrap_err().problems();
        assert_eq!(problems.len(), 1, "{field}: {problems:?}");
        assert!(problems[0].contains(expected), "{field}: {problems:?}");
    }
    assert!(RunConfig::default().validate().is_ok());
}

#[test]
fn evaluation_fields_read_hugging_faces_names() {
    let c = parse(
        "RunConfig(eval_strategy: steps, eval_steps: Some(50), save_strategy: steps, save_steps: 100, \
         load_best_model_at_end: true, metric_for_best_model: Some(eval_exact_match), greater_is_better: Some(true))",
    )
    .unwrap();
    assert_eq!(
        (c.eval_every(), c.best_metric()),
        (50, (super::BestMetric::ExactMatch, true))
    );
    let c = RunConfig {
        data: DataConfig::default(),
        ..c
    };
    assert!(c.validate().is_ok(), "{:?}", c.validate());
    let round_trip = parse(&c.to_ron()).unwrap();
    assert_eq!(round_trip, c);
}

#[test]
fn max_length_is_bounded_by_the_models_positions() {
    let c = parse("RunConfig(max_seq_length: 1024)").unwrap();
    let msg = c.validate_positions(512).unwrap_err().to_string();
    assert!(
        msg.contains("max_seq_length (1024) exceeds the model's max_position_embeddings (512)"),
        "{msg}"
    );
    assert!(RunConfig::default().validate_positions(512).is_ok());
}

#[test]
fn warmup_ratio_rounds_up_as_hugging_face_does() {
    // transformers' TrainingArguments.get_warmup_steps: math.ceil(num_training_steps * warmup_ratio).
    let c = parse("RunConfig(warmup_ratio: 0.1)").unwrap();
    assert_eq!(c.warmup_steps_for(161), 17);
    assert_eq!(c.warmup_steps_for(160), 16);
    assert_eq!(c.warmup_steps_for(20), 2);
    assert_eq!(c.legacy_warmup_steps_for(161), 16);
    let none = parse("RunConfig(warmup_ratio: 0.0)").unwrap();
    assert_eq!(none.warmup_steps_for(161), 0);
    let c = parse("RunConfig(warmup_ratio: 0.1, warmup_steps: 5)").unwrap();
    assert_eq!(c.warmup_steps_for(161), 5);
}

#[test]
fn half_precision_on_an_explicit_cpu_is_refused_unless_the_generic_graph_checks_it() {
    // Only the dtype's problems: the data files may be absent here.
    let problems = |text: &str| match parse(text).unwrap().validate() {
        Ok(()) => Vec::new(),
        Err(e) => e
            .problems()
            .into_iter()
            .filter(|p| p.starts_with("dtype"))
            .collect(),
    };
    let bf16 = problems("RunConfig(device: \"cpu\", dtype: bf16, graph: generic)");
    assert!(
        bf16.iter()
            .any(|p| p.starts_with("dtype bf16 needs a CUDA device")),
        "{bf16:?}"
    );
    let f16 = problems("RunConfig(device: \"cpu\", dtype: f16)");
    assert!(
        f16.iter().any(|p| p.contains("only with graph: generic")),
        "{f16:?}"
    );
    assert!(problems("RunConfig(device: \"cpu\", dtype: f16, graph: generic)").is_empty());
    // On CUDA (or auto) the device decides later.
    assert!(problems("RunConfig(device: \"cuda:0\", dtype: bf16)").is_empty());
    // The generic graph is not part of the run's course, as the device is not.
    let generic = parse("RunConfig(graph: generic)").unwrap();
    assert_eq!(generic.course(), RunConfig::default().course());
}
