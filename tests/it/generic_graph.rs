//! The generic graph (`graph: generic`): the ops a CUDA build trains with,
//! run on the CPU with none of the fused kernels. It must give what the fused
//! CPU path gives, in f32 and, within f16's precision, in f16 autocast; and
//! every parameter must get a gradient in every mode.

use crate::common;

use candle_core::{DType, Device, Tensor};
use common::{run_events, tiny_run_config, tiny_task};
use squadlab::config::{self, Graph, RunConfig};
use squadlab::model::kernels::generic_graph;
use squadlab::model::{qa_loss, Batch, BertQa, Params};
use squadlab::numeric::{max_abs_diff, max_rel_diff, within};
use squadlab::train::{RunRequest, TrainEvent};
use std::path::Path;

use common::QaInputs as Inputs;

/// Two windows of 24 tokens, the second padded after 17.
fn inputs() -> Inputs {
    let dev = &Device::Cpu;
    let mut ids: Vec<u32> = (0..48).map(|i| (i * 11 % 97 + 3) as u32).collect();
    ids[24 + 17..].fill(0);
    let mut types = vec![0u32; 48];
    types[24 + 6..24 + 17].fill(1);
    let mut mask = vec![1u32; 48];
    mask[24 + 17..].fill(0);
    Inputs {
        ids: Tensor::from_vec(ids, (2, 24), dev).unwrap(),
        types: Tensor::from_vec(types, (2, 24), dev).unwrap(),
        mask: Tensor::from_vec(mask, (2, 24), dev).unwrap(),
        starts: Tensor::new(&[3u32, 9], dev).unwrap(),
        ends: Tensor::new(&[5u32, 12], dev).unwrap(),
    }
}

/// Logits and every parameter's gradient (f32), in the graph and dtype asked for.
fn logits_and_grads(
    params: &Params,
    config: &squadlab::model::BertConfig,
    generic: bool,
    dtype: DType,
) -> (Vec<f32>, Vec<(String, Tensor)>) {
    let _graph = generic_graph(generic);
    let model = BertQa::with_dtype(config.clone(), params, dtype).unwrap();
    let i = inputs();
    let batch = Batch {
        input_ids: &i.ids,
        token_type_ids: &i.types,
        attention_mask: &i.mask,
    };
    let (s, e) = model.forward(&batch, None).unwrap();
    let loss = qa_loss(&s, &e, &i.starts, &i.ends).unwrap();
    let grads = loss.backward().unwrap();
    let logits = Tensor::cat(&[s, e], 1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let grads = params
        .vars()
        .map(|(name, var)| {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name} got no gradient (generic {generic}, {dtype:?})"));
            (name.clone(), g.to_dtype(DType::F32).unwrap())
        })
        .collect();
    (logits, grads)
}

fn norm(t: &Tensor) -> f64 {
    t.sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64
}

fn random_model() -> (Params, squadlab::model::BertConfig) {
    let config = squadlab::model::BertConfig {
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        ..common::tiny_bert_config(100)
    };
    (Params::random(&config, &Device::Cpu, 7).unwrap(), config)
}

#[test]
fn the_generic_f32_graph_gives_the_fused_graphs_logits_and_gradients() {
    let (params, config) = random_model();
    let (fused_logits, fused_grads) = logits_and_grads(&params, &config, false, DType::F32);
    let (logits, grads) = logits_and_grads(&params, &config, true, DType::F32);
    // Not a fold with f32::max, which skips a NaN: a NaN logit fails, named.
    let worst = max_abs_diff("generic f32 logits", &logits, &fused_logits).unwrap();
    assert!(
        within("generic f32 logits", worst, 1e-5).unwrap(),
        "logits differ by {worst}"
    );
    let mut worst_grad = (String::new(), 0f64);
    // The key biases' true gradient is 0 (q·b_k is the same for every key,
    // and softmax ignores a constant per row), so theirs is rounding noise:
    // those are held to 1e-4 of the whole gradient's norm instead.
    let total = fused_grads.iter().map(|(_, g)| norm(g)).sum::<f64>().sqrt();
    for ((name, g_fused), (_, g)) in fused_grads.iter().zip(&grads) {
        let scale = norm(g_fused).sqrt().max(1e-3 * total);
        let rel = norm(&(g - g_fused).unwrap()).sqrt() / scale;
        assert!(rel <= 1e-4, "{name}: ‖Δg‖/‖g‖ = {rel:e}");
        if rel > worst_grad.1 {
            worst_grad = (name.clone(), rel);
        }
    }
    eprintln!(
        "generic vs fused f32: logits max |Δ| {worst:e}; worst ‖Δg‖/‖g‖ {:e} ({})",
        worst_grad.1, worst_grad.0
    );
}

#[test]
fn every_parameter_gets_a_nonzero_gradient_in_every_graph_and_dtype() {
    let (params, config) = random_model();
    for (generic, dtype) in [(false, DType::F32), (true, DType::F32), (true, DType::F16)] {
        let (_, grads) = logits_and_grads(&params, &config, generic, dtype);
        assert_eq!(grads.len(), params.vars().count());
        for (name, g) in &grads {
            let n = norm(g);
            // The head's bias gets 0 in exact arithmetic (a softmax ignores a
            // shift of every logit): rounding noise, or exactly 0.
            let zero_in_exact_arithmetic = name == "qa_outputs.bias";
            assert!(
                (n > 0.0 || zero_in_exact_arithmetic) && n.is_finite(),
                "{name}: gradient norm² {n} (generic {generic}, {dtype:?})"
            );
        }
    }
}

/// The losses of a run of the tiny task, dropout off.
fn step_losses(dir: &Path, graph: Graph, dtype: config::DType) -> Vec<f64> {
    std::fs::create_dir_all(dir).unwrap();
    let (json, model) = tiny_task(dir);
    // Dropout masks differ by device and graph: compare with dropout off.
    let path = model.join("config.json");
    let mut bert: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    bert["hidden_dropout_prob"] = 0.0.into();
    bert["attention_probs_dropout_prob"] = 0.0.into();
    std::fs::write(&path, serde_json::to_vec(&bert).unwrap()).unwrap();
    let config = RunConfig {
        max_steps: Some(30),
        save_strategy: config::SaveStrategy::No,
        graph,
        dtype,
        ..tiny_run_config(&json, &model)
    };
    let events = run_events(RunRequest {
        config,
        run_dir: dir.join("run"),
        resume: None,
    });
    match events.last() {
        Some(TrainEvent::Finished(_)) => {}
        other => panic!("the {graph:?} {dtype:?} run did not finish: {other:?}"),
    }
    events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Step(s) => Some(s.loss),
            _ => None,
        })
        .collect()
}

#[test]
fn thirty_generic_steps_follow_the_fused_trajectory_and_f16_tracks_f32() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, graph, dtype| step_losses(&tmp.path().join(name), graph, dtype);
    let fused = run("fused", Graph::Auto, config::DType::F32);
    let generic = run("generic", Graph::Generic, config::DType::F32);
    let half = run("f16", Graph::Generic, config::DType::F16);
    assert_eq!(fused.len(), 30);
    assert_eq!((generic.len(), half.len()), (30, 30));
    // A NaN loss fails here, named, before the per-step checks below.
    let worst = |what: &str, other: &[f64]| max_rel_diff(what, other, &fused, 1.0).unwrap();
    eprintln!(
        "30 steps, worst relative loss difference: generic f32 {:e}, generic f16 {:e}; losses {:.4} → {:.4} (fused), {:.4} → {:.4} (f16)",
        worst("generic f32 losses", &generic),
        worst("generic f16 losses", &half),
        fused[0],
        fused[29],
        half[0],
        half[29]
    );
    // f32 against f32: the same arithmetic in another order; rounding
    // differences of 1e-7 grow over 30 Adam steps at lr 1e-3, but stay far
    // below the loss's own movement.
    for (step, (a, b)) in fused.iter().zip(&generic).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
            "step {}: fused {a}, generic {b}",
            step + 1
        );
    }
    // f16 rounds each matrix product's inputs to 11 significant bits (unit
    // roundoff 2^-11 ≈ 4.9e-4); with f32 master weights and f32 softmax,
    // LayerNorm and loss, those errors average out in the loss, which should
    // stay within about 10 roundoffs (0.5%) of f32 over the run (measured:
    // 7.8e-4 at worst). A wrong cast (an f16 softmax or LayerNorm, weights
    // not refreshed from the masters) moves it by far more. No loss scaler:
    // this checks the casts and the graph, not f16 training.
    for (step, (a, b)) in fused.iter().zip(&half).enumerate() {
        assert!(
            (a - b).abs() <= 5e-3 * a.abs().max(1.0),
            "step {}: f32 {a}, f16 {b}",
            step + 1
        );
    }
    assert!(
        half.last().unwrap() < &(half[0] * 0.8),
        "f16 learns: {half:?}"
    );
}

#[test]
fn f16_on_the_cpu_needs_the_generic_graph_and_bf16_is_refused() {
    let cpu = Device::Cpu;
    use squadlab::model::compute_dtype;
    assert_eq!(
        compute_dtype(config::DType::F16, &cpu, Graph::Generic).unwrap(),
        DType::F16
    );
    let err = compute_dtype(config::DType::F16, &cpu, Graph::Auto).unwrap_err();
    assert!(err.to_string().contains("graph: generic"), "{err}");
    let err = compute_dtype(config::DType::Bf16, &cpu, Graph::Generic).unwrap_err();
    assert!(err.to_string().contains("no bf16"), "{err}");
}
