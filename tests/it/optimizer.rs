//! AdamW, the linear schedule and grad-norm clipping against torch and
//! Hugging Face (tests/fixtures/adamw_reference.json, made by
//! tools/reference/adamw_fixture.py).

use candle_core::{Device, Tensor};
use serde_json::Value;
use squadlab::config::{LrSchedulerKwargs, LrSchedulerType};
use squadlab::model::Params;
use squadlab::train::optimizer::{clip_grad_norm, decays, grad_norm, AdamW, AdamWParams, Grads};
use squadlab::train::schedule::Schedule;

fn tensor(values: &Value, shape: &[usize]) -> Tensor {
    let v: Vec<f32> = values
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

#[test]
fn adamw_schedule_and_clipping_match_torch() {
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/adamw_reference.json")).unwrap();
    let cfg = &fixture["config"];
    let shapes: Vec<(String, Vec<usize>)> = fixture["initial"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(n, v)| {
            let shape = v["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize);
            (n.clone(), shape.collect())
        })
        .collect();
    let params = Params::from_tensors(
        shapes
            .iter()
            .map(|(n, s)| (n.clone(), tensor(&fixture["initial"][n]["values"], s))),
    )
    .unwrap();
    let mut adamw = AdamW::new(
        &params,
        AdamWParams {
            beta1: cfg["betas"][0].as_f64().unwrap(),
            beta2: cfg["betas"][1].as_f64().unwrap(),
            eps: cfg["eps"].as_f64().unwrap(),
            weight_decay: cfg["weight_decay"].as_f64().unwrap(),
        },
    )
    .unwrap();
    let schedule = Schedule {
        kind: LrSchedulerType::Linear,
        kwargs: LrSchedulerKwargs::default(),
        base_lr: cfg["lr"].as_f64().unwrap(),
        warmup_steps: cfg["warmup_steps"].as_u64().unwrap(),
        total_steps: cfg["total_steps"].as_u64().unwrap(),
    };
    let (mut clipped, mut unclipped) = (0, 0);
    for (i, step) in fixture["steps"].as_array().unwrap().iter().enumerate() {
        let lr = schedule.lr(i as u64);
        let want_lr = step["lr"].as_f64().unwrap();
        assert!(
            (lr - want_lr).abs() < 1e-12,
            "step {i}: lr {lr} vs torch {want_lr}"
        );
        let mut grads: Grads = shapes
            .iter()
            .map(|(n, s)| (n.clone(), tensor(&step["grads"][n], s)))
            .collect();
        let norm = clip_grad_norm(&mut grads, cfg["max_grad_norm"].as_f64().unwrap()).unwrap();
        let want_norm = step["grad_norm"].as_f64().unwrap();
        assert!(
            (norm - want_norm).abs() < 1e-5 * want_norm.max(1.0),
            "step {i}: grad norm {norm} vs torch {want_norm}"
        );
        if norm > 1.0 {
            clipped += 1;
            let after = grad_norm(&grads).unwrap();
            assert!((after - 1.0).abs() < 1e-5, "step {i}: clipped norm {after}");
        } else {
            unclipped += 1;
        }
        adamw.step(&grads, lr).unwrap();
        for (n, s) in &shapes {
            let ours: Vec<f32> = params
                .tensor(n)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let want: Vec<f32> = tensor(&step["params_after"][n], s)
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            for (k, (a, b)) in ours.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 2e-6 * b.abs().max(1.0),
                    "step {i}: {n}[{k}] = {a}, torch has {b}"
                );
            }
        }
    }
    assert!(
        clipped >= 2 && unclipped >= 2,
        "the fixture exercises both sides of clipping"
    );
}

#[test]
fn hugging_face_decay_groups() {
    assert!(decays("bert.encoder.layer.0.attention.self.query.weight"));
    assert!(decays("bert.embeddings.word_embeddings.weight"));
    assert!(decays("qa_outputs.weight"));
    assert!(!decays("bert.encoder.layer.0.attention.self.query.bias"));
    assert!(!decays("bert.encoder.layer.0.output.LayerNorm.weight"));
    assert!(!decays("bert.embeddings.LayerNorm.bias"));
}

#[test]
fn clipping_leaves_small_gradients_alone() {
    let mut grads: Grads = [
        (
            "a".to_string(),
            Tensor::new(&[0.3f32, 0.0], &Device::Cpu).unwrap(),
        ),
        (
            "b".to_string(),
            Tensor::new(&[0.4f32], &Device::Cpu).unwrap(),
        ),
    ]
    .into_iter()
    .collect();
    let norm = clip_grad_norm(&mut grads, 1.0).unwrap();
    assert!((norm - 0.5).abs() < 1e-7);
    assert_eq!(grads["a"].to_vec1::<f32>().unwrap(), vec![0.3, 0.0]);
    let norm = clip_grad_norm(&mut grads, 0.25).unwrap();
    assert!(
        (norm - 0.5).abs() < 1e-7,
        "the reported norm is the one before clipping"
    );
    assert!((grad_norm(&grads).unwrap() - 0.25).abs() < 1e-6);
}
