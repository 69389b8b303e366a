//! Parity with PyTorch + transformers on all-MiniLM-L6-v2 and real SQuAD dev
//! windows (a full 384-token one, a short padded one, one between):
//! logits within 1e-4; loss and gradients within 1e-3 relative, dropout off.
//! The fixture comes from tools/reference/model_fixtures.py.

use crate::common;

use candle_core::{Device, Tensor};
use squadlab::data::{FeatureSet, WindowParams};
use squadlab::model::{load_qa_model, qa_loss, Batch};
use squadlab::numeric::{max_abs_diff, within};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(format!("{FIXTURES}/minilm_parity.json")).unwrap(),
    )
    .unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|x| match x.as_array() {
            Some(row) => row
                .iter()
                .map(|f| f.as_f64().unwrap() as f32)
                .collect::<Vec<_>>(),
            None => vec![x.as_f64().unwrap() as f32],
        })
        .collect()
}

fn close_rel(got: f32, want: f32, rel: f32) -> bool {
    (got - want).abs() <= rel * want.abs().max(1e-6)
}

#[test]
fn minilm_matches_pytorch_on_real_windows() {
    let fx = fixture();
    let limit = fx["limit"].as_u64().unwrap() as usize;
    let Some(data) = common::load_squad("dev-v1.1.json", Some(limit)) else {
        return;
    };
    let Some(tokenizer) = common::bert_uncased_tokenizer() else {
        return;
    };
    let dir = common::minilm_dir().unwrap();
    let features = FeatureSet::build(&data, &tokenizer, WindowParams::default()).unwrap();

    // The same windows, by our pipeline.
    let picked: Vec<usize> = fx["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_u64().unwrap() as usize)
        .collect();
    let (mut ids, mut types, mut mask) = (vec![], vec![], vec![]);
    for &w in &picked {
        let t = features.tensors(w, &data, 384);
        ids.extend(t.input_ids);
        types.extend(t.token_type_ids);
        mask.extend(t.attention_mask);
    }
    let want_ids: Vec<u32> = floats(&fx["input_ids"]).iter().map(|&v| v as u32).collect();
    assert_eq!(ids, want_ids, "windows differ from the fixture's");
    let n = picked.len();
    let dev = &Device::Cpu;
    let (ids, types, mask) = (
        Tensor::from_vec(ids, (n, 384), dev).unwrap(),
        Tensor::from_vec(types, (n, 384), dev).unwrap(),
        Tensor::from_vec(mask, (n, 384), dev).unwrap(),
    );
    let batch = Batch {
        input_ids: &ids,
        token_type_ids: &types,
        attention_mask: &mask,
    };

    // MiniLM has no QA head: use the fixture's.
    let loaded = load_qa_model(&dir, dev, 0).unwrap();
    assert_eq!(
        loaded.report.initialised,
        ["qa_outputs.weight", "qa_outputs.bias"]
    );
    let head =
        candle_core::safetensors::load(format!("{FIXTURES}/minilm_qa_head.safetensors"), dev)
            .unwrap();
    for (name, t) in head {
        loaded.params.var(&name).unwrap().set(&t).unwrap();
    }

    // (a) logits, eval mode: the differentiable path and the inference one.
    let (start, end) = loaded.model.forward(&batch, None).unwrap();
    let (inference_start, inference_end) = loaded.model.forward_inference(&batch).unwrap();
    for (name, got, want) in [
        ("start logits", start.clone(), &fx["start_logits"]),
        ("end logits", end.clone(), &fx["end_logits"]),
        (
            "inference start logits",
            inference_start,
            &fx["start_logits"],
        ),
        ("inference end logits", inference_end, &fx["end_logits"]),
    ] {
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        let want = floats(want);
        // Not a fold with f32::max, which skips a NaN: a NaN logit fails, named.
        let max_diff = max_abs_diff(name, &got, &want).unwrap();
        eprintln!("{name}: max |difference| against PyTorch: {max_diff:e}");
        assert!(
            within(name, max_diff, 1e-4).unwrap(),
            "{name} differ by {max_diff}"
        );
    }

    // (b) loss and gradients with dropout off.
    let positions = |key: &str| {
        let v: Vec<u32> = fx[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        Tensor::new(v.as_slice(), dev).unwrap()
    };
    let loss = qa_loss(
        &start,
        &end,
        &positions("start_positions"),
        &positions("end_positions"),
    )
    .unwrap();
    let loss_value: f32 = loss.to_scalar().unwrap();
    eprintln!("loss {loss_value} vs PyTorch {}", fx["loss"]);
    assert!(
        close_rel(loss_value, fx["loss"].as_f64().unwrap() as f32, 1e-3),
        "loss {loss_value} vs {}",
        fx["loss"]
    );
    let grads = loss.backward().unwrap();
    for (name, want) in fx["grads"].as_object().unwrap() {
        let g = grads
            .get(loaded.params.var(name).unwrap().as_tensor())
            .unwrap();
        let norm: f32 = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .sqrt()
            .unwrap()
            .to_scalar()
            .unwrap();
        let want_norm = want["norm"].as_f64().unwrap() as f32;
        eprintln!("{name}: gradient norm {norm} vs PyTorch {want_norm}");
        assert!(
            close_rel(norm, want_norm, 1e-3),
            "{name}: gradient norm {norm} vs {want_norm}"
        );
        let slice: Vec<f32> = match want["row"].as_u64() {
            Some(row) => g.get(row as usize).unwrap().to_vec1().unwrap(),
            None => g.flatten_all().unwrap().to_vec1().unwrap(),
        };
        let want_values = floats(&want["values"]);
        let scale = want_values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (k, (got, want)) in slice.iter().zip(&want_values).enumerate() {
            assert!(
                (got - want).abs() <= 1e-3 * scale,
                "{name}[{k}]: {got} vs {want}"
            );
        }
    }
}
