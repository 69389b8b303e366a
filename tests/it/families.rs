//! RoBERTa, DistilBERT and ELECTRA proven equal to transformers, on tiny
//! random-init QA models that tools/reference/family_fixtures.py built and
//! saved in each family's hub layout (tests/fixtures/families/<family>):
//! - start and end logits on a padded batch of real dev windows (1e-4);
//! - every parameter's gradient of the QA loss, by the autograd graph and
//!   by the lean step (1e-3 of the tensor's largest value);
//! - a 20-step AdamW trajectory from the same init, dropout off, on the
//!   same batches: every step's loss and grad-norm within 1e-3 relative;
//! - the windows and offsets of all 10,570 dev questions, as a digest
//!   (tools/reference/family_windows.py), with the family's tokenizer.
//!
//! DistilBERT's and ELECTRA's tokenizer is BERT's uncased vocabulary: the
//! test copies MiniLM's tokenizer.json in, as the fixture script windowed.

use crate::common;

use candle_core::{Device, Tensor};
use serde_json::Value;
use sha2::{Digest, Sha256};
use squadlab::data::{FeatureSet, QaTokenizer, WindowParams};
use squadlab::model::kernels::generic_graph;
use squadlab::model::{load_qa_model, qa_loss, Family, LoadedModel, WindowBatch};
use squadlab::train::lean::LeanStep;
use squadlab::train::optimizer::{
    clip_coefficient, decays, global_norm, AdamW, AdamWParams, Grads,
};
use std::path::{Path, PathBuf};

const FAMILIES: [(&str, Family); 4] = [
    ("roberta", Family::Roberta),
    ("distilbert", Family::DistilBert),
    ("electra", Family::Electra),
    ("albert", Family::Albert),
];

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/families/{name}"))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's hub-layout folder, with BERT's tokenizer copied in where
/// the family uses it; `None` (skipped) without MiniLM.
pub fn model_folder(name: &str, into: &Path) -> Option<PathBuf> {
    let dir = into.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixture_dir(name).join("model")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    if !dir.join("tokenizer.json").is_file() {
        let minilm = common::minilm_dir()?;
        std::fs::copy(minilm.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    }
    Some(dir)
}

fn u32_rows(v: &Value) -> (Vec<u32>, usize, usize) {
    let rows = v.as_array().unwrap();
    let s = rows[0].as_array().unwrap().len();
    let flat = rows
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
        })
        .collect();
    (flat, rows.len(), s)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|x| match x.as_array() {
            Some(row) => row.iter().map(|f| f.as_f64().unwrap() as f32).collect(),
            None => vec![x.as_f64().unwrap() as f32],
        })
        .collect()
}

/// A fixture batch as the model's tensors (token types 0 where the family has none).
fn batch(v: &Value) -> WindowBatch {
    let dev = &Device::Cpu;
    let (ids, b, s) = u32_rows(&v["input_ids"]);
    let mask = u32_rows(&v["attention_mask"]).0;
    let types = if v["token_type_ids"].is_null() {
        vec![0; b * s]
    } else {
        u32_rows(&v["token_type_ids"]).0
    };
    let labels = |k: &str| -> Vec<u32> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    WindowBatch {
        input_ids: Tensor::from_vec(ids, (b, s), dev).unwrap(),
        token_type_ids: Tensor::from_vec(types, (b, s), dev).unwrap(),
        attention_mask: Tensor::from_vec(mask, (b, s), dev).unwrap(),
        start_positions: Tensor::from_vec(labels("start_positions"), b, dev).unwrap(),
        end_positions: Tensor::from_vec(labels("end_positions"), b, dev).unwrap(),
    }
}

/// The largest difference between `got` and `want`, over the largest |want|
/// (at least 1e-3: the QA head's bias gradient is zero up to rounding, since
/// a softmax ignores a shift, and its rounding is not comparable).
fn relative_error(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(
            0f32,
            |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) },
        );
    worst / scale
}

fn load(name: &str, tmp: &Path) -> Option<LoadedModel> {
    let dir = model_folder(name, tmp)?;
    let loaded = load_qa_model(&dir, &Device::Cpu, 0).unwrap();
    assert!(
        loaded.report.initialised.is_empty(),
        "{name}: {:?}",
        loaded.report.initialised
    );
    assert!(
        loaded.report.unused.is_empty(),
        "{name}: {:?}",
        loaded.report.unused
    );
    Some(loaded)
}

/// Every gradient against transformers': the word table by its stored rows
/// (zero elsewhere), every other parameter whole.
fn assert_grads_match(name: &str, engine: &str, grads: &Grads) {
    let want =
        candle_core::safetensors::load(fixture_dir(name).join("grads.safetensors"), &Device::Cpu)
            .unwrap();
    let mut checked = 0;
    for (param, got) in grads {
        let got_values = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        if let Some(rows) = want.get(&format!("{param}:rows")) {
            let rows: Vec<i64> = rows.to_vec1().unwrap();
            let values = want[&format!("{param}:values")]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let width = got.dim(1).unwrap();
            let mut dense = vec![0f32; got_values.len()];
            for (i, &r) in rows.iter().enumerate() {
                dense[r as usize * width..(r as usize + 1) * width]
                    .copy_from_slice(&values[i * width..(i + 1) * width]);
            }
            let err = relative_error(&got_values, &dense);
            assert!(
                err <= 1e-3,
                "{name} {engine}: {param} gradient off by {err:e}"
            );
        } else {
            let want = want
                .get(param)
                .unwrap_or_else(|| panic!("{name}: no reference gradient for {param}"));
            let err = relative_error(&got_values, &want.flatten_all().unwrap().to_vec1().unwrap());
            assert!(
                err <= 1e-3,
                "{name} {engine}: {param} gradient off by {err:e}"
            );
        }
        // Every parameter learns: no gradient is all zero (but the head's
        // bias, whose gradient is zero but for rounding).
        assert!(
            param == "qa_outputs.bias" || got_values.iter().any(|&v| v != 0.0),
            "{name} {engine}: {param} gets no gradient"
        );
        checked += 1;
    }
    let reference = want.keys().filter(|k| !k.ends_with(":values")).count();
    assert_eq!(checked, reference, "{name} {engine}: parameters checked");
}

#[test]
fn each_family_matches_transformers_logits_and_gradients() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, family) in FAMILIES {
        let Some(loaded) = load(name, tmp.path()) else {
            return;
        };
        assert_eq!(loaded.config.family(), family);
        let fx = json(&fixture_dir(name).join("parity.json"));
        let wb = batch(&fx["batch"]);
        // Logits, by the differentiable graph and by inference.
        let (start, end) = loaded.model.forward(&wb.as_batch(), None).unwrap();
        for (got, key) in [(&start, "start_logits"), (&end, "end_logits")] {
            let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let want = floats(&fx[key]);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (g - w).abs())
                .fold(0f32, f32::max);
            assert!(
                worst <= 1e-4 && got.iter().all(|v| v.is_finite()),
                "{name} {key}: off by {worst:e}"
            );
        }
        let (inf_start, _) = loaded.model.forward_inference(&wb.as_batch()).unwrap();
        let d = (inf_start - &start)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            d <= 1e-5,
            "{name}: inference differs from the graph by {d:e}"
        );

        // Gradients by autograd: the fused CPU graph, and the generic graph
        // a CUDA build trains with.
        let want_loss = fx["loss"].as_f64().unwrap() as f32;
        for generic in [false, true] {
            let _graph = generic_graph(generic);
            let engine = if generic { "generic graph" } else { "autograd" };
            let (start, end) = loaded.model.forward(&wb.as_batch(), None).unwrap();
            let loss = qa_loss(&start, &end, &wb.start_positions, &wb.end_positions).unwrap();
            let got_loss = loss.to_scalar::<f32>().unwrap();
            assert!(
                (got_loss - want_loss).abs() <= 1e-4 * want_loss,
                "{name} {engine}: loss {got_loss} vs {want_loss}"
            );
            let store = loss.backward().unwrap();
            let mut grads = Grads::new();
            for (param, var) in loaded.params.vars() {
                let g = store
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("{name} {engine}: {param} has no gradient"));
                grads.insert(param.clone(), g.clone());
            }
            assert_grads_match(name, engine, &grads);
        }

        // Gradients by the lean step (its fused CPU kernels).
        let mut lean = LeanStep::new(&loaded.config, &loaded.params).unwrap();
        lean.begin();
        let lean_loss = lean.micro_batch(&loaded.params, &wb, None, 1.0).unwrap();
        assert!(
            (lean_loss - want_loss).abs() <= 1e-4 * want_loss,
            "{name}: lean loss {lean_loss}"
        );
        assert_grads_match(name, "lean step", &lean.grads().unwrap());
    }
}

#[test]
fn each_family_trains_twenty_steps_as_transformers_does() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, _) in FAMILIES {
        let Some(mut loaded) = load(name, tmp.path()) else {
            return;
        };
        // Dropout off, as the reference trained in eval mode.
        loaded.config.hidden_dropout_prob = 0.0;
        loaded.config.attention_probs_dropout_prob = 0.0;
        loaded.config.qa_dropout = 0.0;
        let fx = json(&fixture_dir(name).join("trajectory.json"));
        // Weight decay spares what Hugging Face's Trainer spares: biases and
        // every norm, by module.
        let exempt: Vec<&str> = fx["decay_exempt"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for (param, _) in loaded.params.vars() {
            assert_eq!(
                decays(param),
                !exempt.contains(&param.as_str()),
                "{name}: {param} decays"
            );
        }
        let total = fx["total_steps"].as_u64().unwrap() as usize;
        let lr0 = fx["lr"].as_f64().unwrap();
        let mut optimizer = AdamW::new(
            &loaded.params,
            AdamWParams {
                beta1: fx["betas"][0].as_f64().unwrap(),
                beta2: fx["betas"][1].as_f64().unwrap(),
                eps: fx["adam_epsilon"].as_f64().unwrap(),
                weight_decay: fx["weight_decay"].as_f64().unwrap(),
            },
        )
        .unwrap();
        let mut lean = LeanStep::new(&loaded.config, &loaded.params).unwrap();
        let (want_loss, want_norm, want_lr) = (
            floats(&fx["losses"]),
            floats(&fx["grad_norms"]),
            floats(&fx["lrs"]),
        );
        for step in 0..total {
            let lr = lr0 * (1.0 - step as f64 / total as f64);
            assert!(
                (lr as f32 - want_lr[step]).abs() <= 1e-6 * lr0 as f32,
                "{name} step {step}: lr"
            );
            lean.begin();
            let wb = batch(&fx["batches"][step]);
            let loss = lean.micro_batch(&loaded.params, &wb, None, 1.0).unwrap();
            let norm = global_norm(&lean.squared_norms().unwrap());
            let clip = clip_coefficient(fx["max_grad_norm"].as_f64().unwrap(), norm).unwrap_or(1.0);
            lean.update(&mut optimizer, clip as f32, lr).unwrap();
            let rel = |got: f32, want: f32| (got - want).abs() / want.abs();
            assert!(
                rel(loss, want_loss[step]) <= 1e-3,
                "{name} step {step}: loss {loss} vs {}",
                want_loss[step]
            );
            assert!(
                rel(norm as f32, want_norm[step]) <= 1e-3,
                "{name} step {step}: grad norm {norm} vs {}",
                want_norm[step]
            );
        }
        eprintln!(
            "{name}: loss {} → {} over {total} steps, as transformers",
            want_loss[0],
            want_loss[total - 1]
        );
    }
}

/// The fixture script's digest: per window, 384 ids and mask, 384 offset
/// pairs ((-1, -1) outside the context), then the labels; int32 LE.
fn digest(
    features: &FeatureSet,
    data: &squadlab::data::SquadDataset,
) -> (usize, usize, u64, u64, String) {
    let mut hash = Sha256::new();
    let push = |h: &mut Sha256, v: i32| h.update(v.to_le_bytes());
    for w in 0..features.len() {
        let t = features.tensors(w, data, 384);
        for seq in [&t.input_ids, &t.attention_mask] {
            seq.iter().for_each(|&v| push(&mut hash, v as i32));
        }
        for pos in 0..384 {
            let (s, e) = features
                .offset(w, pos, data)
                .map_or((-1, -1), |(s, e)| (s as i32, e as i32));
            push(&mut hash, s);
            push(&mut hash, e);
        }
        let win = &features.windows[w];
        push(&mut hash, win.start_position as i32);
        push(&mut hash, win.end_position as i32);
    }
    let sum =
        |f: fn(&squadlab::data::Window) -> u32| features.windows.iter().map(|w| f(w) as u64).sum();
    (
        features.len(),
        features.zero_labelled(),
        sum(|w| w.start_position),
        sum(|w| w.end_position),
        format!("{:x}", hash.finalize()),
    )
}

#[test]
fn each_family_windows_the_dev_set_as_the_fast_tokenizer_does() {
    let Some(data) = common::load_squad("dev-v1.1.json", None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let expected = json(&fixture_dir("window_digests.json").with_file_name("window_digests.json"));
    for (name, _) in FAMILIES {
        let Some(dir) = model_folder(name, tmp.path()) else {
            return;
        };
        let tokenizer = QaTokenizer::from_path(&dir.join("tokenizer.json")).unwrap();
        let features = FeatureSet::build(&data, &tokenizer, WindowParams::default()).unwrap();
        let want = &expected[name];
        let got = digest(&features, &data);
        assert_eq!(
            data.examples.len() as u64,
            want["questions"].as_u64().unwrap()
        );
        assert_eq!(
            (got.0 as u64, got.1 as u64, got.2, got.3),
            (
                want["windows"].as_u64().unwrap(),
                want["zero_labelled"].as_u64().unwrap(),
                want["start_sum"].as_u64().unwrap(),
                want["end_sum"].as_u64().unwrap()
            ),
            "{name}: window counts and label sums"
        );
        assert_eq!(
            got.4,
            want["sha256"].as_str().unwrap(),
            "{name}: windows digest"
        );
    }
}

#[test]
fn roberta_windows_follow_its_own_pair_template() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_folder("roberta", tmp.path()).unwrap();
    let tokenizer = QaTokenizer::from_path(&dir.join("tokenizer.json")).unwrap();
    // <s> q </s></s> c </s>, every type 0, pads <pad> = 1.
    let t = &tokenizer.template;
    assert_eq!(
        (
            t.before.ids.clone(),
            t.between.ids.clone(),
            t.after.ids.clone()
        ),
        (vec![0], vec![2, 2], vec![2])
    );
    assert_eq!((t.question_type, t.context_type), (0, 0));
    assert_eq!(tokenizer.pad_id, 1);
    assert!(
        !tokenizer.has_fast_path(),
        "byte-level BPE is not WordPiece"
    );
    // Byte-level offsets are trimmed of the leading space, as the fast tokenizer's.
    let enc = tokenizer.encode("The Broncos won.").unwrap();
    let words: Vec<&str> = enc
        .offsets
        .iter()
        .map(|&(s, e)| &"The Broncos won."[s as usize..e as usize])
        .collect();
    assert!(words.iter().all(|w| !w.starts_with(' ')), "{words:?}");
    assert_eq!(words.concat(), "TheBroncoswon.");
}

/// `squadlab train`, `eval` and `predict` on each family's hub-layout
/// folder: the run trains on the lean step, records its family, saves the
/// family's layout back, and the saved folder loads and answers.
#[test]
fn train_eval_and_predict_run_on_each_familys_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, _) = common::tiny_task(tmp.path());
    for (name, family) in FAMILIES {
        let Some(model) = model_folder(name, tmp.path()) else {
            return;
        };
        let mut config = common::tiny_run_config(&json, &model);
        config.name = format!("tiny {name}");
        config.num_train_epochs = 1.0;
        let config_file = tmp.path().join(format!("{name}.ron"));
        std::fs::write(&config_file, config.to_ron()).unwrap();
        let run = tmp.path().join(format!("run-{name}"));
        let summary = common::squadlab_json(&[
            "train",
            &config_file.display().to_string(),
            "--out",
            &run.display().to_string(),
        ]);
        assert_eq!(summary["global_step"], 6, "{name}: {summary}");
        let loss = summary["train_loss"].as_f64().unwrap();
        assert!(loss.is_finite() && loss > 0.0, "{name}: train_loss {loss}");
        let record = std::fs::read_to_string(run.join("run.ron")).unwrap();
        let family_field = format!("family: Some({})", family_ron(family));
        assert!(
            record.contains(&family_field),
            "{name}: {family_field} not in run.ron"
        );

        // The saved model is the family's own layout, and loads as it.
        let saved = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.join("config.json").is_file())
            .unwrap_or_else(|| panic!("{name}: no checkpoint folder"));
        let config_json = json_file(&saved.join("config.json"));
        assert_eq!(config_json["model_type"], family.model_type());
        assert_eq!(config_json["architectures"][0], family.architecture());
        let reloaded = load_qa_model(&saved, &Device::Cpu, 0).unwrap();
        assert_eq!(reloaded.config.family(), family);
        assert!(reloaded.report.initialised.is_empty() && reloaded.report.unused.is_empty());

        let pred = tmp.path().join(format!("pred-{name}.json"));
        let scores = common::eval_tiny_task(&run, &json, &pred);
        assert_eq!(scores["total"], 10, "{name}");
        let context = "the old cat is here . the big dog is red .";
        let answer = common::squadlab_json(&[
            "predict",
            "--model",
            &model.display().to_string(),
            "--question",
            "what color is the big dog ?",
            "--context",
            context,
            "--max-length",
            "64",
            "--stride",
            "16",
        ]);
        let (start, end) = (
            answer["start_char"].as_u64().unwrap() as usize,
            answer["end_char"].as_u64().unwrap() as usize,
        );
        assert_eq!(
            answer["answer"].as_str().unwrap(),
            &context[start..end],
            "{name}"
        );
    }
}

/// RON writes a family as its `model_type`.
fn family_ron(family: Family) -> &'static str {
    family.model_type()
}

fn json_file(path: &Path) -> Value {
    json(path)
}
