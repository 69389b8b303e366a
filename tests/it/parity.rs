//! Step-by-step parity with PyTorch, short: the first 20 steps of the
//! 300-question preset padded to 384, dropout 0, from the same starting QA
//! head and in the same window order as `tools/reference/parity.py` trained
//! Hugging Face's `BertForQuestionAnswering` when it wrote
//! `tests/fixtures/parity_300q.json`. Every step's loss must be within 1e-3
//! relative of PyTorch's, its grad-norm before clipping and learning rate
//! likewise; the full 161-step protocol is the harness's own run.

use crate::common;

use candle_core::{Device, Tensor};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

const FIXTURE: &str = "tests/fixtures/parity_300q.json";
const LOSS_TOLERANCE: f64 = 1e-3;
const GRAD_NORM_TOLERANCE: f64 = 1e-3;

/// MiniLM with the fixture's QA head and dropout 0: the harness's start folder.
fn start_folder(minilm: &Path, head: &Value, out: &Path) {
    std::fs::create_dir_all(out).unwrap();
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(minilm.join("model.safetensors"), &Device::Cpu)
            .unwrap()
            .into_iter()
            .collect();
    let values = |v: &Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|x| match x.as_array() {
                Some(row) => row.iter().map(|y| y.as_f64().unwrap() as f32).collect(),
                None => vec![x.as_f64().unwrap() as f32],
            })
            .collect()
    };
    let weight = values(&head["weight"]);
    let hidden = weight.len() / 2;
    tensors.insert(
        "qa_outputs.weight".into(),
        Tensor::from_vec(weight, (2, hidden), &Device::Cpu).unwrap(),
    );
    tensors.insert(
        "qa_outputs.bias".into(),
        Tensor::from_vec(values(&head["bias"]), 2, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, out.join("model.safetensors")).unwrap();
    let mut config: Value =
        serde_json::from_slice(&std::fs::read(minilm.join("config.json")).unwrap()).unwrap();
    config["hidden_dropout_prob"] = 0.0.into();
    config["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(
        out.join("config.json"),
        serde_json::to_vec(&config).unwrap(),
    )
    .unwrap();
    std::fs::copy(minilm.join("tokenizer.json"), out.join("tokenizer.json")).unwrap();
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

#[test]
fn twenty_steps_match_pytorch_step_by_step() {
    let (Some(minilm), Some(_)) = (
        common::minilm_dir(),
        common::squad_file("train-v1.1.reconstructed.json"),
    ) else {
        return;
    };
    let fixture: Value = serde_json::from_slice(&std::fs::read(FIXTURE).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("start");
    start_folder(&minilm, &fixture["qa_outputs"], &model);
    let steps = fixture["steps"].as_u64().unwrap();
    let config = format!(
        r#"RunConfig(
    model: "{}",
    data: (
        train: "data:train-v1.1.reconstructed.json",
        validation: "data:dev-v1.1.json",
        max_train_samples: Some({}),
        max_eval_samples: Some({}),
    ),
    dynamic_padding: false,
    per_device_train_batch_size: {},
    num_train_epochs: 1.0,
    max_steps: Some({steps}),
    learning_rate: {},
    warmup_ratio: 0.1,
    weight_decay: 0.01,
    seed: {},
    save_strategy: steps,
    save_steps: {},
    device: "cpu",
)"#,
        model.display(),
        fixture["questions"],
        fixture["eval_questions"],
        fixture["batch"],
        fixture["lr"],
        fixture["seed"],
        steps - 1,
    );
    let config_path = tmp.path().join("parity.ron");
    std::fs::write(&config_path, config).unwrap();
    let out = tmp.path().join("run");
    let summary = common::squadlab_json(&[
        "train",
        &config_path.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);

    // The course: the windows and the order PyTorch was given are squadlab's.
    let state: Value = serde_json::from_slice(
        &std::fs::read(
            out.join("checkpoints")
                .join(format!("checkpoint-{}", steps - 1))
                .join("trainer_state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let order = state["epoch_order"].as_array().unwrap();
    assert_eq!(order.len() as u64, fixture["windows"].as_u64().unwrap());
    let used = fixture["order"].as_array().unwrap();
    assert_eq!(
        &order[..used.len()],
        &used[..],
        "the window order PyTorch trained on"
    );

    let ours: Vec<Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "step")
        .collect();
    let theirs = fixture["torch_steps"].as_array().unwrap();
    assert_eq!(ours.len(), theirs.len());
    let mut worst = (0f64, 0f64);
    for (o, t) in ours.iter().zip(theirs) {
        let f = |v: &Value, k: &str| v[k].as_f64().unwrap();
        let step = o["step"].as_u64().unwrap();
        let (dl, dg) = (
            rel(f(o, "loss"), f(t, "loss")),
            rel(f(o, "grad_norm"), f(t, "grad_norm")),
        );
        worst = (worst.0.max(dl), worst.1.max(dg));
        assert!(
            dl <= LOSS_TOLERANCE,
            "step {step}: loss {} against PyTorch's {} ({dl:.2e} relative)",
            f(o, "loss"),
            f(t, "loss")
        );
        assert!(
            dg <= GRAD_NORM_TOLERANCE,
            "step {step}: grad-norm {} against PyTorch's {} ({dg:.2e} relative)",
            f(o, "grad_norm"),
            f(t, "grad_norm")
        );
        assert!(
            (f(o, "learning_rate") - f(t, "learning_rate")).abs() <= 1e-12,
            "step {step}: learning rate {} against {}",
            f(o, "learning_rate"),
            f(t, "learning_rate")
        );
    }
    eprintln!(
        "{} steps: worst relative loss difference {:.2e}, grad-norm {:.2e}; F1 {:.3} (PyTorch {:.3})",
        ours.len(),
        worst.0,
        worst.1,
        summary["f1"],
        fixture["torch_f1"]
    );
    let df1 = summary["f1"].as_f64().unwrap() - fixture["torch_f1"].as_f64().unwrap();
    assert!(
        df1.abs() <= 0.3,
        "F1 {} against PyTorch's {}",
        summary["f1"],
        fixture["torch_f1"]
    );
}
