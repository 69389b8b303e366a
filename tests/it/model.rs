//! The BERT QA model on a tiny random config, so CI exercises building,
//! gradients, training steps, saving and loading in seconds.

use crate::common;

use candle_core::{DType, Device, Tensor};
use squadlab::model::{load_qa_model, qa_loss, save_pretrained, Batch, BertConfig, BertQa, Params};
use squadlab::rng::SeededRng;

fn tiny_config() -> BertConfig {
    common::tiny_bert_config(100)
}

use common::QaInputs as Inputs;

/// Two windows of 16 tokens; the second is padded after 10 and has a second segment.
fn inputs() -> Inputs {
    let dev = &Device::Cpu;
    let mut ids: Vec<u32> = (0..32).map(|i| (i * 7 % 97 + 3) as u32).collect();
    ids[26..].fill(0);
    let mut types = vec![0u32; 32];
    types[16 + 5..16 + 10].fill(1);
    let mut mask = vec![1u32; 32];
    mask[26..].fill(0);
    Inputs {
        ids: Tensor::from_vec(ids, (2, 16), dev).unwrap(),
        types: Tensor::from_vec(types, (2, 16), dev).unwrap(),
        mask: Tensor::from_vec(mask, (2, 16), dev).unwrap(),
        starts: Tensor::new(&[3u32, 6], dev).unwrap(),
        ends: Tensor::new(&[5u32, 8], dev).unwrap(),
    }
}

fn batch(i: &Inputs) -> Batch<'_> {
    Batch {
        input_ids: &i.ids,
        token_type_ids: &i.types,
        attention_mask: &i.mask,
    }
}

fn logits(model: &BertQa, i: &Inputs) -> Vec<f32> {
    let (s, e) = model.forward(&batch(i), None).unwrap();
    Tensor::cat(&[s, e], 1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn every_parameter_gets_a_nonzero_gradient() {
    let config = tiny_config();
    let params = Params::random(&config, &Device::Cpu, 1).unwrap();
    let model = BertQa::new(config, &params).unwrap();
    let i = inputs();
    let mut rng = SeededRng::new(7);
    let (s, e) = model.forward(&batch(&i), Some(&mut rng)).unwrap();
    let loss = qa_loss(&s, &e, &i.starts, &i.ends).unwrap();
    let grads = loss.backward().unwrap();
    let mut checked = 0;
    for (name, var) in params.vars() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let norm: f32 = g.abs().unwrap().sum_all().unwrap().to_scalar().unwrap();
        // Rows of ids never seen (word and type embeddings) stay zero; the tensor as a whole must not.
        assert!(norm > 0.0, "{name} has an all-zero gradient");
        checked += 1;
    }
    assert_eq!(checked, params.len());
    // As with PyTorch's padding_idx, the [PAD] row (id 0, used by the padding) learns nothing.
    let word = grads
        .get(
            params
                .var("bert.embeddings.word_embeddings.weight")
                .unwrap()
                .as_tensor(),
        )
        .unwrap();
    let pad_row: Vec<f32> = word.get(0).unwrap().to_vec1().unwrap();
    assert!(pad_row.iter().all(|&v| v == 0.0));
    let used_row: Vec<f32> = word.get(3).unwrap().to_vec1().unwrap();
    assert!(used_row.iter().any(|&v| v != 0.0));
    assert_eq!(checked, 5 + 2 * 16 + 2);
}

#[test]
fn dropout_is_seeded_in_training_and_off_in_evaluation() {
    let config = tiny_config();
    let params = Params::random(&config, &Device::Cpu, 1).unwrap();
    let model = BertQa::new(config, &params).unwrap();
    let i = inputs();
    let train = |seed| {
        let (s, _) = model
            .forward(&batch(&i), Some(&mut SeededRng::new(seed)))
            .unwrap();
        s.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    assert_eq!(train(3), train(3));
    assert_ne!(train(3), train(4));
    assert_ne!(train(3)[..16], logits(&model, &i)[..16]);
    assert_eq!(logits(&model, &i), logits(&model, &i));
    assert!(logits(&model, &i).iter().all(|v| v.is_finite()));
}

#[test]
fn padding_does_not_change_the_real_positions() {
    let config = tiny_config();
    let params = Params::random(&config, &Device::Cpu, 2).unwrap();
    let model = BertQa::new(config, &params).unwrap();
    let i = inputs();
    let full = logits(&model, &i);
    // The padded window alone, cut to its 10 real tokens, gives the same logits there.
    let cut = |t: &Tensor| {
        t.narrow(0, 1, 1)
            .unwrap()
            .narrow(1, 0, 10)
            .unwrap()
            .contiguous()
            .unwrap()
    };
    let short = Inputs {
        ids: cut(&i.ids),
        types: cut(&i.types),
        mask: cut(&i.mask),
        starts: i.starts.clone(),
        ends: i.ends.clone(),
    };
    let (s, _) = model.forward(&batch(&short), None).unwrap();
    let s: Vec<f32> = s.flatten_all().unwrap().to_vec1().unwrap();
    for k in 0..10 {
        // Row 1 of the [start | end] logits begins at 32.
        assert!(
            (s[k] - full[32 + k]).abs() < 1e-5,
            "position {k}: {} vs {}",
            s[k],
            full[32 + k]
        );
    }
}

#[test]
fn a_few_sgd_steps_lower_the_loss() {
    let config = tiny_config();
    let params = Params::random(&config, &Device::Cpu, 3).unwrap();
    let model = BertQa::new(config, &params).unwrap();
    let i = inputs();
    let loss_now = || {
        let (s, e) = model.forward(&batch(&i), None).unwrap();
        qa_loss(&s, &e, &i.starts, &i.ends).unwrap()
    };
    let first: f32 = loss_now().to_scalar().unwrap();
    for _ in 0..20 {
        let grads = loss_now().backward().unwrap();
        for (_, var) in params.vars() {
            let g = grads.get(var.as_tensor()).unwrap();
            var.set(&(var.as_tensor() - (g * 0.5).unwrap()).unwrap())
                .unwrap();
        }
    }
    let last: f32 = loss_now().to_scalar().unwrap();
    assert!(last < first * 0.5, "loss {first} -> {last}");
}

#[test]
fn save_then_load_gives_identical_logits() {
    let config = tiny_config();
    let params = Params::random(&config, &Device::Cpu, 4).unwrap();
    let model = BertQa::new(config.clone(), &params).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_pretrained(dir.path(), &config, &params, None).unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(saved["architectures"][0], "BertForQuestionAnswering");
    assert_eq!(saved["hidden_size"], 32);
    let loaded = load_qa_model(dir.path(), &Device::Cpu, 0).unwrap();
    assert!(loaded.report.initialised.is_empty() && loaded.report.unused.is_empty());
    let i = inputs();
    assert_eq!(logits(&model, &i), logits(&loaded.model, &i));
}

/// Writes `params` as a bare BertModel checkpoint (no `bert.` prefix, no QA
/// head), optionally with legacy gamma/beta names and extra tensors.
fn write_bare(
    dir: &std::path::Path,
    config: &BertConfig,
    params: &Params,
    legacy: bool,
    edit: impl Fn(&mut std::collections::HashMap<String, Tensor>),
) {
    let mut map = std::collections::HashMap::new();
    for (name, var) in params.vars() {
        let Some(bare) = name.strip_prefix("bert.") else {
            continue;
        };
        let bare = match legacy {
            true => bare
                .replace("LayerNorm.weight", "LayerNorm.gamma")
                .replace("LayerNorm.bias", "LayerNorm.beta"),
            false => bare.to_string(),
        };
        map.insert(bare, var.as_detached_tensor());
    }
    map.insert(
        "pooler.dense.weight".into(),
        Tensor::zeros((32, 32), DType::F32, &Device::Cpu).unwrap(),
    );
    edit(&mut map);
    candle_core::safetensors::save(&map, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), serde_json::to_vec(config).unwrap()).unwrap();
}

#[test]
fn bare_and_legacy_checkpoints_load_with_a_fresh_qa_head() {
    let config = tiny_config();
    let params = Params::random(&config, &Device::Cpu, 5).unwrap();
    for legacy in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_bare(dir.path(), &config, &params, legacy, |_| {});
        let loaded = load_qa_model(dir.path(), &Device::Cpu, 42).unwrap();
        assert_eq!(
            loaded.report.initialised,
            ["qa_outputs.weight", "qa_outputs.bias"]
        );
        let w: Vec<f32> = loaded
            .params
            .tensor("bert.encoder.layer.1.output.LayerNorm.weight")
            .unwrap()
            .to_vec1()
            .unwrap();
        let want: Vec<f32> = params
            .tensor("bert.encoder.layer.1.output.LayerNorm.weight")
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(w, want);
        // The fresh head: zero bias, weights of std about 0.02, the same for the same seed.
        let bias: Vec<f32> = loaded
            .params
            .tensor("qa_outputs.bias")
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(bias, [0.0, 0.0]);
        let head: Vec<f32> = loaded
            .params
            .tensor("qa_outputs.weight")
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let std = (head.iter().map(|v| v * v).sum::<f32>() / head.len() as f32).sqrt();
        assert!((0.01..0.03).contains(&std), "head std {std}");
        let again = load_qa_model(dir.path(), &Device::Cpu, 42).unwrap();
        let head2: Vec<f32> = again
            .params
            .tensor("qa_outputs.weight")
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(head, head2);
    }
}

/// The full error chain of loading the model folder `dir`, which must fail.
fn load_error(dir: &std::path::Path) -> String {
    format!(
        "{:#}",
        load_qa_model(dir, &Device::Cpu, 0)
            .err()
            .expect("loading must fail")
    )
}

#[test]
fn a_missing_or_misshapen_tensor_is_named() {
    let config = tiny_config();
    let params = Params::random(&config, &Device::Cpu, 6).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_bare(dir.path(), &config, &params, false, |m| {
        m.remove("encoder.layer.1.attention.self.key.bias");
    });
    let err = load_error(dir.path());
    assert!(
        err.contains("missing tensor bert.encoder.layer.1.attention.self.key.bias")
            && err.contains("[32]"),
        "{err}"
    );

    write_bare(dir.path(), &config, &params, false, |m| {
        m.insert(
            "embeddings.word_embeddings.weight".into(),
            Tensor::zeros((99, 32), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = load_error(dir.path());
    assert!(
        err.contains("bert.embeddings.word_embeddings.weight has shape [99, 32]")
            && err.contains("[100, 32]"),
        "{err}"
    );

    std::fs::write(dir.path().join("model.safetensors"), b"truncated").unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("model.safetensors: not a readable safetensors file"),
        "{err}"
    );

    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("no model.safetensors or pytorch_model.bin"),
        "{err}"
    );
}

#[test]
fn inference_keeps_no_graph_and_matches_the_differentiable_pass() {
    let config = tiny_config();
    let params = Params::random(&config, &Device::Cpu, 3).unwrap();
    let model = BertQa::new(config, &params).unwrap();
    let i = inputs();
    let (s, e) = model.forward(&batch(&i), None).unwrap();
    assert!(s.track_op(), "the training pass records a graph");
    let (si, ei) = model.forward_inference(&batch(&i)).unwrap();
    assert!(
        !si.track_op() && !ei.track_op(),
        "inference records no graph"
    );
    let max_diff = (s - si)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .max(
            (e - ei)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
        );
    assert!(
        max_diff < 1e-4,
        "fused inference kernels differ by {max_diff}"
    );
}

/// The loss of `params` moved by `step × direction`, with the dropout masks of `seed`.
fn loss_along(
    config: &BertConfig,
    params: &Params,
    direction: &[(String, Tensor)],
    step: f64,
    seed: u64,
) -> f64 {
    let moved = Params::from_tensors(direction.iter().map(|(name, d)| {
        let w = params.var(name).unwrap().as_tensor();
        (name.clone(), (w + (d * step).unwrap()).unwrap())
    }))
    .unwrap();
    let model = BertQa::new(config.clone(), &moved).unwrap();
    let i = inputs();
    let (s, e) = model
        .forward(&batch(&i), Some(&mut SeededRng::new(seed)))
        .unwrap();
    let loss = qa_loss(&s, &e, &i.starts, &i.ends).unwrap();
    f64::from(loss.to_scalar::<f32>().unwrap())
}

#[test]
fn gradients_through_dropout_match_finite_differences_of_the_whole_model() {
    // With the masks fixed by the seed, the training loss is a smooth function
    // of the weights: its backward pass must be that function's gradient, dropped
    // units included. A backward that ignored the masks would train a model
    // other than the one the forward pass measures.
    let config = BertConfig {
        hidden_dropout_prob: 0.3,
        attention_probs_dropout_prob: 0.3,
        ..tiny_config()
    };
    let params = Params::random(&config, &Device::Cpu, 8).unwrap();
    let model = BertQa::new(config.clone(), &params).unwrap();
    let i = inputs();
    let seed = 21;
    let (s, e) = model
        .forward(&batch(&i), Some(&mut SeededRng::new(seed)))
        .unwrap();
    let grads = qa_loss(&s, &e, &i.starts, &i.ends)
        .unwrap()
        .backward()
        .unwrap();
    let gradient: Vec<(String, Tensor)> = params
        .vars()
        .map(|(name, var)| (name.clone(), grads.get(var.as_tensor()).unwrap().clone()))
        .collect();
    // A fixed pseudo-random direction: another model's weights, less the
    // [PAD] row, which by design (PyTorch's padding_idx) gets no gradient
    // although the padded positions' logits do reach the loss.
    let other = Params::random(&config, &Device::Cpu, 99).unwrap();
    let random: Vec<(String, Tensor)> = gradient
        .iter()
        .map(|(name, _)| {
            let mut d = other.tensor(name).unwrap();
            if name == "bert.embeddings.word_embeddings.weight" {
                let keep = Tensor::arange(0u32, d.dim(0).unwrap() as u32, &Device::Cpu)
                    .unwrap()
                    .ne(config.pad_token_id as u32)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .unsqueeze(1)
                    .unwrap();
                d = d.broadcast_mul(&keep).unwrap();
            }
            (name.clone(), d)
        })
        .collect();
    let dot = |d: &[(String, Tensor)]| -> f64 {
        d.iter()
            .zip(&gradient)
            .map(|((_, d), (_, g))| {
                f64::from(
                    (d * g)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap(),
                )
            })
            .sum()
    };
    for (what, direction) in [("the gradient", &gradient), ("a random direction", &random)] {
        let analytic = dot(direction);
        let eps = 1e-3;
        let numeric = (loss_along(&config, &params, direction, eps, seed)
            - loss_along(&config, &params, direction, -eps, seed))
            / (2.0 * eps);
        assert!(
            (numeric - analytic).abs() <= 2e-2 * analytic.abs().max(1e-2),
            "along {what}: finite differences {numeric}, backward {analytic}"
        );
    }
    // The masks matter: another seed gives another loss.
    assert_ne!(
        loss_along(&config, &params, &gradient, 0.0, seed),
        loss_along(&config, &params, &gradient, 0.0, seed + 1)
    );
}

/// The pip lookup finds a package's folder without importing it: the
/// package's `__init__.py`, which would write a marker file, never runs.
#[test]
fn the_pip_lookup_finds_a_package_without_running_its_code() {
    if !common::python3() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("squadlab_marker_pkg");
    std::fs::create_dir_all(&package).unwrap();
    let marker = tmp.path().join("the package ran");
    std::fs::write(
        package.join("__init__.py"),
        format!(
            "open({:?}, 'w').write('ran')\n",
            marker.display().to_string()
        ),
    )
    .unwrap();
    let python = || {
        let mut python = std::process::Command::new("python3");
        python.env("PYTHONPATH", tmp.path());
        python
    };
    let found = squadlab::model::pip_package_dir("squadlab-marker-pkg", python()).unwrap();
    assert!(!marker.exists(), "the lookup ran the package's __init__.py");
    assert_eq!(
        found.canonicalize().unwrap(),
        package.canonicalize().unwrap()
    );
    let err = squadlab::model::pip_package_dir("squadlab-no-such-pkg", python()).unwrap_err();
    assert!(
        err.to_string().contains("pip:squadlab-no-such-pkg")
            && err.to_string().contains("not installed"),
        "{err}"
    );
}
