use super::*;
use crate::model::{qa_loss, BertQa};
use crate::rng::philox::MaskStream;
use candle_core::{DType, Device};

fn tiny() -> BertConfig {
    BertConfig {
        vocab_size: 90,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        max_position_embeddings: 40,
        ..Default::default()
    }
}

/// The tiny model in each family's shape: RoBERTa's pad 1 and one token
/// type, DistilBERT's dropout before the head and no token types,
/// ELECTRA's narrower embeddings and their projection.
fn tiny_families() -> Vec<BertConfig> {
    use crate::model::Family;
    Family::ALL
        .into_iter()
        .map(|family| {
            let mut c = BertConfig {
                model_type: family.model_type().into(),
                ..tiny()
            };
            match family {
                Family::Bert => {}
                Family::Roberta => {
                    c.pad_token_id = 1;
                    c.type_vocab_size = 1;
                    c.max_position_embeddings = 42;
                }
                Family::DistilBert => {
                    c.type_vocab_size = 0;
                    c.qa_dropout = c.hidden_dropout_prob;
                }
                Family::Electra => c.embedding_size = Some(16),
                // Three layers sharing one group, the tanh GELU.
                Family::Albert => {
                    c.embedding_size = Some(16);
                    c.num_hidden_layers = 3;
                    c.num_hidden_groups = Some(1);
                    c.hidden_act = "gelu_new".into();
                }
            }
            c.validate().unwrap();
            c
        })
        .collect()
}

/// Two windows of 12 positions, the second padded after 7.
fn batch(config: &BertConfig) -> WindowBatch {
    let dev = &Device::Cpu;
    let (n, s) = (2, 12);
    let pad = config.pad_token_id as u32;
    let ids: Vec<u32> = (0..n * s)
        .map(|i| {
            if i >= s + 7 {
                pad
            } else {
                // Real tokens skip the pad id.
                let id = 1 + (i as u32 * 37) % (config.vocab_size as u32 - 1);
                if id == pad {
                    id + 1
                } else {
                    id
                }
            }
        })
        .collect();
    let mask: Vec<u32> = ids.iter().map(|&i| u32::from(i != pad)).collect();
    let two_types = config.type_vocab_size > 1;
    let types: Vec<u32> = (0..n * s)
        .map(|i| u32::from(two_types && i % s >= 5))
        .collect();
    WindowBatch {
        input_ids: Tensor::from_vec(ids, (n, s), dev).unwrap(),
        token_type_ids: Tensor::from_vec(types, (n, s), dev).unwrap(),
        attention_mask: Tensor::from_vec(mask, (n, s), dev).unwrap(),
        start_positions: Tensor::from_vec(vec![3u32, 6], n, dev).unwrap(),
        end_positions: Tensor::from_vec(vec![4u32, 6], n, dev).unwrap(),
    }
}

fn dropout(key: [u32; 2], round: u32, p: f32) -> MicroBatchDropout {
    MicroBatchDropout {
        key,
        round,
        hidden: p,
        attention: p,
    }
}

/// One lean micro-batch on fresh gradients: the step and its loss.
fn lean_step(
    config: &BertConfig,
    params: &Params,
    batch: &WindowBatch,
    dropout: Option<MicroBatchDropout>,
) -> (LeanStep, f32) {
    let mut lean = LeanStep::new(config, params).unwrap();
    lean.begin();
    let loss = lean.micro_batch(params, batch, dropout, 1.0).unwrap();
    (lean, loss)
}

fn autograd_grads(config: &BertConfig, params: &Params, batch: &WindowBatch) -> (f32, Grads) {
    let model = BertQa::new(config.clone(), params).unwrap();
    let (start, end) = model.forward(&batch.as_batch(), None).unwrap();
    let loss = qa_loss(&start, &end, &batch.start_positions, &batch.end_positions).unwrap();
    let grads = loss.backward().unwrap();
    let mut out = Grads::new();
    for (name, var) in params.vars() {
        if let Some(g) = grads.get(var) {
            out.insert(name.clone(), g.clone());
        }
    }
    (loss.to_scalar::<f32>().unwrap(), out)
}

fn max_diff(a: &Tensor, b: &Tensor) -> (f32, f32) {
    let d = (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scale = a
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    (d, scale)
}

#[test]
fn without_dropout_the_lean_step_is_autograd() {
    for config in tiny_families() {
        lean_is_autograd(&config);
    }
}

/// Names whose gradient is 0 in exact arithmetic: the head's bias, the key
/// biases (a softmax ignores a shift).
fn zero_in_exact_arithmetic(name: &str) -> bool {
    name == "qa_outputs.bias"
        || name.contains("attention.self.key.bias")
        || name.contains("attention.k_lin.bias")
        || name.ends_with("attention.key.bias")
}

fn lean_is_autograd(config: &BertConfig) {
    let config = config.clone();
    let family = config.family();
    let params = Params::random(&config, &Device::Cpu, 7).unwrap();
    let batch = batch(&config);
    let (want_loss, want) = autograd_grads(&config, &params, &batch);
    let (lean, loss) = lean_step(&config, &params, &batch, None);
    assert!(
        (loss - want_loss).abs() <= 1e-5 * want_loss.abs(),
        "{family}: {loss} vs {want_loss}"
    );
    let got = lean.grads().unwrap();
    assert_eq!(
        got.len(),
        want.len(),
        "{family}: every parameter has a gradient"
    );
    for (name, g) in &got {
        let (d, scale) = max_diff(&want[name], g);
        // Tensors whose gradient is 0 in exact arithmetic (the head's bias, the
        // key biases) hold rounding noise on both sides: an absolute floor.
        assert!(
            d <= 1e-5 * scale.max(1e-2),
            "{family} {name}: max |d| {d} against max |g| {scale}"
        );
        if !zero_in_exact_arithmetic(name) {
            assert!(scale > 0.0, "{family}: {name} got no gradient");
        }
    }
    // The pad row of the word embeddings gets none; nor, in RoBERTa, the
    // position row pads read.
    let layout = crate::model::layout::Layout::new(&config);
    let row_sum = |name: &str, row: usize| {
        got[name]
            .get(row)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let pad = config.pad_token_id;
    assert_eq!(row_sum(&layout.word, pad), 0.0, "{family}");
    if family == crate::model::Family::Roberta {
        assert_eq!(row_sum(&layout.position, pad), 0.0, "{family}");
        assert!(row_sum(&layout.position, pad + 1) > 0.0, "{family}");
    }
}

#[test]
fn with_dropout_the_gradient_is_the_masked_losss() {
    for config in tiny_families() {
        masked_loss_gradient(config);
    }
}

fn masked_loss_gradient(config: BertConfig) {
    // Finite differences along the gradient itself: the masks are fixed by
    // the stream, so the loss is a smooth function of the weights.
    let family = config.family();
    let config = BertConfig {
        hidden_dropout_prob: 0.3,
        attention_probs_dropout_prob: 0.3,
        qa_dropout: if config.qa_dropout > 0.0 { 0.3 } else { 0.0 },
        ..config
    };
    let params = Params::random(&config, &Device::Cpu, 11).unwrap();
    let batch = batch(&config);
    let dropout = dropout(MaskStream::key_for_seed(5), 3, 0.3);
    let (mut lean, loss) = lean_step(&config, &params, &batch, Some(dropout));
    let grads = lean.grads().unwrap();
    let norm2: f64 = lean.squared_norms().unwrap().iter().sum();
    let eps = 1e-3 / norm2.sqrt();
    let moved = |sign: f64| {
        let shifted = Params::from_tensors(params.vars().map(|(name, v)| {
            let t = (v.as_tensor() + (&grads[name] * (sign * eps)).unwrap()).unwrap();
            (name.clone(), t)
        }))
        .unwrap();
        f64::from(lean_step(&config, &shifted, &batch, Some(dropout)).1)
    };
    let slope = (moved(1.0) - moved(-1.0)) / (2.0 * eps);
    let rel = (slope - norm2).abs() / norm2;
    assert!(
        rel < 2e-2,
        "{family}: loss {loss}: slope {slope} against |g|² {norm2} (rel {rel})"
    );
}

#[test]
fn the_masks_change_with_the_round_and_not_with_threads() {
    let config = BertConfig {
        hidden_dropout_prob: 0.1,
        attention_probs_dropout_prob: 0.1,
        ..tiny()
    };
    let params = Params::random(&config, &Device::Cpu, 3).unwrap();
    let batch = batch(&config);
    let run = |round: u32, threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let dropout = dropout(MaskStream::key_for_seed(42), round, 0.1);
            let (lean, loss) = lean_step(&config, &params, &batch, Some(dropout));
            (
                loss.to_bits(),
                lean.arena.iter().map(|g| g.to_bits()).collect::<Vec<_>>(),
            )
        })
    };
    let one = run(0, 1);
    assert_eq!(one, run(0, 3), "the same bits on 1 and 3 threads");
    assert_ne!(one.0, run(1, 1).0, "another round draws other masks");
}

#[test]
fn the_plan_counts_what_the_cpu_launches() {
    for config in tiny_families() {
        plan_counts_launches(&config);
    }
}

fn plan_counts_launches(config: &BertConfig) {
    let config = config.clone();
    let params = Params::random(&config, &Device::Cpu, 7).unwrap();
    let batch = batch(&config);
    let mut lean = LeanStep::new(&config, &params).unwrap();
    lean.begin();
    let dropout = MicroBatchDropout {
        key: [1, 2],
        round: 0,
        hidden: 0.1,
        attention: 0.1,
    };
    lean.micro_batch(&params, &batch, Some(dropout), 1.0)
        .unwrap();
    lean.squared_norms().unwrap();
    let mut optimizer = AdamW::new(&params, Default::default()).unwrap();
    lean.update(&mut optimizer, 1.0, 1e-5).unwrap();
    let counted = census(&config, 2, 12, DType::F32).unwrap();
    assert_eq!(lean.launches, counted.launches);
    let layers = config.num_hidden_layers;
    let parameters = expected_shapes_len(&config);
    // 12 forward and 28 backward a layer; the embeddings 2 + 3, the head 2 + 3,
    // zeroing 1, the norms 1, AdamW one per parameter; ELECTRA's projection
    // a linear's 1 + 3.
    let albert = config.family() == crate::model::Family::Albert;
    let project = if config.embedding_width() != config.hidden_size || albert {
        4
    } else {
        0
    };
    assert_eq!(
        counted.launch_proxy,
        40 * layers + 5 + 5 + 2 + parameters + project,
        "{}",
        config.family()
    );
    let f16 = census(&config, 2, 12, DType::F16).unwrap();
    assert_eq!(
        f16.launch_proxy, counted.launch_proxy,
        "autocast adds no launch"
    );
    assert!(f16.activation_peak_bytes < counted.activation_peak_bytes);
}

fn expected_shapes_len(config: &BertConfig) -> usize {
    crate::model::expected_shapes(config).len()
}

#[test]
fn a_bert_base_step_is_under_1500_launches_in_f32_and_f16() {
    for model in ["bert-base-uncased", "bert-large-uncased"] {
        let config = BertConfig::known(model).unwrap();
        for dtype in [DType::F32, DType::F16] {
            let c = census(&config, 32, 384, dtype).unwrap();
            let layers = config.num_hidden_layers;
            assert_eq!(
                c.launch_proxy,
                40 * layers + 12 + expected_shapes_len(&config)
            );
            if model == "bert-base-uncased" {
                assert!(
                    c.launch_proxy <= 1500,
                    "{model} {dtype:?}: {}",
                    c.launch_proxy
                );
            }
        }
    }
}

/// Two optimizer steps of two micro-batches each, with dropout and
/// clipping, on the CPU step and on the tensor step with `kernels` fused:
/// the losses and norms each read, then the weights after.
fn two_steps_on_both(kernels: KernelSet) {
    for config in tiny_families() {
        two_steps_of(kernels, config);
    }
}

fn two_steps_of(kernels: KernelSet, config: BertConfig) {
    use super::device::DeviceStep;
    use crate::train::optimizer::{AdamW, AdamWParams};
    let key = MaskStream::key_for_seed(42);
    let cpu_params = Params::random(&config, &Device::Cpu, 7).unwrap();
    let tensor_params = Params::random(&config, &Device::Cpu, 7).unwrap();
    let batch = batch(&config);
    let mut cpu_opt = AdamW::new(&cpu_params, AdamWParams::default()).unwrap();
    let mut tensor_opt = AdamW::new(&tensor_params, AdamWParams::default()).unwrap();
    let mut cpu = LeanStep::new(&config, &cpu_params).unwrap();
    let mut on_tensors = DeviceStep::new(&config, &tensor_params, DType::F32)
        .unwrap()
        .with_kernels(kernels);
    assert_eq!(on_tensors.kernels(), kernels);
    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1e-3),
            "{what}: {a} against {b}"
        );
    };
    let mut significant: std::collections::HashMap<String, Vec<bool>> = Default::default();
    for step in 0..2u32 {
        cpu.begin();
        on_tensors.begin(&tensor_params).unwrap();
        let mut cpu_losses = Vec::new();
        for i in 0..2 {
            let d = Some(dropout(key, 2 * step + i, 0.2));
            cpu_losses.push(f64::from(
                cpu.micro_batch(&cpu_params, &batch, d, 0.5).unwrap(),
            ));
            on_tensors
                .micro_batch(&tensor_params, &batch, d, 0.5)
                .unwrap();
        }
        let cpu_norms = cpu.squared_norms().unwrap();
        let (losses, norms) = on_tensors.read().unwrap();
        assert_eq!(losses.len(), 2);
        for (a, b) in losses.iter().zip(&cpu_losses) {
            close(*a, *b, &format!("step {step} loss"));
        }
        for (name, (a, b)) in cpu.table.names.iter().zip(norms.iter().zip(&cpu_norms)) {
            // Gradients that are 0 in exact arithmetic hold rounding noise.
            assert!(
                (a - b).abs() <= 1e-5 * b.max(1e-6),
                "step {step} {name}: {a} against {b}"
            );
        }
        let want = cpu.grads().unwrap();
        // Elements whose gradient is within a hundredth of its tensor's
        // largest: where the two sides' steps are compared below.
        for (name, g) in want.iter().filter(|_| step == 0) {
            let values: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
            let top = values.iter().fold(0f32, |m, v| m.max(v.abs()));
            let keep = significant
                .entry(name.clone())
                .or_insert_with(|| vec![true; values.len()]);
            for (k, v) in keep.iter_mut().zip(&values) {
                *k &= v.abs() >= 1e-2 * top;
            }
        }
        for (name, g) in on_tensors.grads() {
            let (d, scale) = max_diff(&want[&name], &g);
            // Gradients 0 in exact arithmetic hold rounding noise: a floor.
            assert!(
                d <= 1e-5 * scale.max(1e-2),
                "step {step} {name}: max |d| {d} against {scale}"
            );
        }
        // Clipping that bites: the same coefficient on both.
        cpu.update(&mut cpu_opt, 0.5, 1e-3).unwrap();
        on_tensors.update(&mut tensor_opt, 0.5, 1e-3).unwrap();
        // The first update's weights; the second step's gradients, compared
        // above, are taken at them. (After two steps, Adam's ratio amplifies
        // the rounding of any element whose two gradients nearly cancel.)
        if step == 0 {
            for (name, var) in cpu_params.vars() {
                let ours: Vec<f32> = var.flatten_all().unwrap().to_vec1().unwrap();
                let other: Vec<f32> = tensor_params
                    .tensor(name)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                // AdamW's first steps move each weight by about ±lr whatever its
                // gradient's size, so where a gradient is near its rounding noise the
                // two sides step apart by up to the rate: those elements (a gradient
                // under a hundredth of its tensor's largest) were
                // compared as gradients above. Elsewhere the steps agree within a
                // tenth of the rate (1e-3); a wrong sign, decay or clipping would be
                // a whole rate off. The head's bias and the key biases have gradients
                // of 0 in exact arithmetic, all noise.
                if zero_in_exact_arithmetic(name) {
                    continue;
                }
                let keep = &significant[name];
                let d = ours
                    .iter()
                    .zip(&other)
                    .zip(keep)
                    .filter(|(_, &k)| k)
                    .map(|((a, b), _)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(
                    d <= 1e-4 && keep.iter().any(|&k| k),
                    "{} {name}: max |d| {d}",
                    config.family()
                );
            }
        }
    }
}

#[test]
fn the_tensor_step_with_the_cpu_twins_trains_as_the_cpu_step() {
    two_steps_on_both(KernelSet::all());
}

#[test]
fn the_tensor_step_on_the_generic_ops_alone_trains_as_the_cpu_step() {
    two_steps_on_both(KernelSet::none());
}
