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

/// Layer-wise LR decay: each parameter's share is ELECTRA's formula, and
/// every step of AdamW moves it by its own rate. With a gradient of 1
/// everywhere, Adam's ratio m̂/(√v̂ + ε) is 1/(1 + ε) at every step, so a
/// bias moves by exactly −rate × share, a decayed weight by that after
/// shrinking by 1 − rate × share × weight_decay.
#[test]
fn layerwise_decay_gives_each_layer_its_rate_step_by_step() {
    use squadlab::model::layout::layerwise_lr_scales;
    use squadlab::model::BertConfig;
    let config = BertConfig {
        vocab_size: 20,
        hidden_size: 8,
        num_hidden_layers: 3,
        num_attention_heads: 2,
        intermediate_size: 12,
        max_position_embeddings: 16,
        ..Default::default()
    };
    let decay = 0.8f64;
    let scales = layerwise_lr_scales(&config, decay);
    let layer = |l: usize| format!("bert.encoder.layer.{l}.attention.self.query.weight");
    for (name, exponent) in [
        ("qa_outputs.weight".to_string(), 0),
        ("qa_outputs.bias".to_string(), 0),
        (layer(2), 2),
        (layer(1), 3),
        (layer(0), 4),
        ("bert.encoder.layer.0.output.LayerNorm.bias".to_string(), 4),
        ("bert.embeddings.word_embeddings.weight".to_string(), 5),
        ("bert.embeddings.LayerNorm.weight".to_string(), 5),
    ] {
        let want = decay.powi(exponent);
        assert!(
            (scales[&name] - want).abs() <= 1e-12,
            "{name}: {} vs {want}",
            scales[&name]
        );
    }
    assert_eq!(
        scales.len(),
        squadlab::model::expected_shapes(&config).len()
    );

    // ALBERT's shared group takes its topmost layer's share.
    let albert = BertConfig {
        model_type: "albert".into(),
        embedding_size: Some(4),
        num_hidden_groups: Some(1),
        hidden_act: "gelu_new".into(),
        ..config.clone()
    };
    let shared = layerwise_lr_scales(&albert, decay);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12;
    assert!(close(
        shared["albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight"],
        decay.powi(2)
    ));
    assert!(close(
        shared["albert.encoder.embedding_hidden_mapping_in.weight"],
        decay.powi(5)
    ));

    // Step by step on a linear schedule, by the lean step's update and by
    // the autograd one.
    for lean in [true, false] {
        let params = Params::random(&config, &Device::Cpu, 3).unwrap();
        let (weight_decay, eps) = (0.01, 1e-8);
        let mut opt = AdamW::new(
            &params,
            AdamWParams {
                weight_decay,
                eps,
                ..AdamWParams::default()
            },
        )
        .unwrap();
        opt.set_lr_scales(&scales);
        assert_eq!(opt.lr_scales(), scales);
        let names: Vec<String> = params.vars().map(|(n, _)| n.clone()).collect();
        let ones: Vec<Vec<f32>> = params
            .vars()
            .map(|(_, v)| vec![1.0; v.elem_count()])
            .collect();
        for step in 0..5 {
            let lr = 1e-3 * (1.0 - step as f64 / 5.0);
            let before: Vec<Vec<f32>> = params
                .vars()
                .map(|(_, v)| v.flatten_all().unwrap().to_vec1().unwrap())
                .collect();
            if lean {
                let slices: Vec<&[f32]> = ones.iter().map(Vec::as_slice).collect();
                opt.step_slices(&names, &slices, 1.0, lr, true).unwrap();
            } else {
                let grads: Grads = params
                    .vars()
                    .map(|(n, v)| (n.clone(), v.ones_like().unwrap()))
                    .collect();
                opt.step(&grads, lr).unwrap();
            }
            for ((name, var), was) in params.vars().zip(&before) {
                let rate = lr * scales[name];
                let shrink = if decays(name) {
                    1.0 - rate * weight_decay
                } else {
                    1.0
                };
                let now: Vec<f32> = var.flatten_all().unwrap().to_vec1().unwrap();
                for (w, w0) in now.iter().zip(was) {
                    let want = *w0 as f64 * shrink - rate / (1.0 + eps);
                    assert!(
                        (*w as f64 - want).abs() <= 1e-7 + 1e-6 * want.abs(),
                        "lean {lean} step {step} {name}: {w} vs {want}"
                    );
                }
            }
        }
    }
}
