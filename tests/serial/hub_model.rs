//! Model checkpoints from the hub cache (no network) and the pickle format:
//! tests/fixtures/tiny_bert_bin is a tiny BertModel saved by PyTorch as
//! pytorch_model.bin with legacy gamma/beta names, and tiny_electra_bin an
//! ELECTRA discriminator saved only as pytorch_model.bin, as the hub's
//! google/electra-* repositories hold it (tools/reference/tiny_bin_fixture.py).
//! One test, since it sets environment variables.

use crate::common;

use candle_core::{Device, Tensor};
use squadlab::config::ModelSource;
use squadlab::model::{load_qa_model, locate_model, Batch, Family};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny_bert_bin");
const TINY_ELECTRA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny_electra_bin"
);

fn row(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

pub fn a_pickled_checkpoint_from_the_hub_cache_matches_pytorch() {
    let cache = tempfile::tempdir().unwrap();
    std::env::set_var("HF_HUB_CACHE", cache.path());
    std::env::set_var("HF_HUB_OFFLINE", "1");
    for (fixture, repo, family) in [
        (TINY, "tiny/bert", Family::Bert),
        (TINY_ELECTRA, "tiny/electra-discriminator", Family::Electra),
    ] {
        let snapshot = common::fake_hub_repo(
            cache.path(),
            &format!("models--{}", repo.replace('/', "--")),
        );
        for file in ["config.json", "pytorch_model.bin"] {
            std::fs::copy(format!("{fixture}/{file}"), snapshot.join(file)).unwrap();
        }
        let vocab: String = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .map(|t| format!("{t}\n"))
            .collect();
        std::fs::write(snapshot.join("vocab.txt"), vocab).unwrap();
        let source = ModelSource::try_from(repo.to_string()).unwrap();
        let files = locate_model(&source, true).unwrap();
        assert_eq!(files.dir, snapshot);
        matches_pytorch(fixture, &files.dir, family);
    }

    // ALBERT as a hub repository holds it: safetensors and a SentencePiece
    // tokenizer.json (tests/fixtures/families/albert, transformers' own save).
    let albert = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/families/albert/model"
    );
    let snapshot = common::fake_hub_repo(cache.path(), "models--tiny--albert-v2");
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(format!("{albert}/{file}"), snapshot.join(file)).unwrap();
    }
    let source = ModelSource::try_from("tiny/albert-v2".to_string()).unwrap();
    let files = locate_model(&source, true).unwrap();
    let loaded = load_qa_model(&files.dir, &Device::Cpu, 0).unwrap();
    assert_eq!(loaded.config.family(), Family::Albert);
    assert!(loaded.report.initialised.is_empty() && loaded.report.unused.is_empty());
    let tokenizer = squadlab::data::QaTokenizer::from_path(&files.tokenizer()).unwrap();
    assert_eq!(tokenizer.template.before.ids, [2], "[CLS] first");

    // Offline and not cached: the error says what to fetch and where.
    let missing = ModelSource::try_from("google-bert/bert-base-uncased".to_string()).unwrap();
    let err = format!("{:#}", locate_model(&missing, true).unwrap_err());
    assert!(
        err.contains("config.json")
            && err.contains("HF_HUB_OFFLINE")
            && err.contains("models--google-bert--bert-base-uncased"),
        "{err}"
    );
}

/// The fixture's hidden states through the head w[i][j] = 0.01·(i+j),
/// b = (0.1, -0.1), as PyTorch computed them.
fn matches_pytorch(fixture: &str, dir: &std::path::Path, family: Family) {
    let loaded = load_qa_model(dir, &Device::Cpu, 0).unwrap();
    assert_eq!(loaded.config.family(), family);
    assert_eq!(
        loaded.report.initialised,
        ["qa_outputs.weight", "qa_outputs.bias"]
    );
    assert!(
        loaded.report.unused.is_empty(),
        "{:?}",
        loaded.report.unused
    );
    // The head the fixture used: w[i][j] = 0.01·(i+j), b = (0.1, -0.1).
    let w: Vec<f32> = (0..2)
        .flat_map(|i| (0..32).map(move |j| 0.01 * (i + j) as f32))
        .collect();
    let dev = &Device::Cpu;
    loaded
        .params
        .var("qa_outputs.weight")
        .unwrap()
        .set(&Tensor::from_vec(w, (2, 32), dev).unwrap())
        .unwrap();
    loaded
        .params
        .var("qa_outputs.bias")
        .unwrap()
        .set(&Tensor::new(&[0.1f32, -0.1], dev).unwrap())
        .unwrap();

    let want: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{fixture}/expected.json")).unwrap())
            .unwrap();
    let t = |key: &str| {
        Tensor::new(row(&want[key]).as_slice(), dev)
            .unwrap()
            .unsqueeze(0)
            .unwrap()
    };
    let (ids, types, mask) = (t("input_ids"), t("token_type_ids"), t("attention_mask"));
    let (start, end) = loaded
        .model
        .forward(
            &Batch {
                input_ids: &ids,
                token_type_ids: &types,
                attention_mask: &mask,
            },
            None,
        )
        .unwrap();
    for (got, key) in [(start, "start_logits"), (end, "end_logits")] {
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        for (k, (g, w)) in got.iter().zip(want[key].as_array().unwrap()).enumerate() {
            let w = w.as_f64().unwrap() as f32;
            assert!((g - w).abs() < 1e-5, "{key}[{k}]: {g} vs {w}");
        }
    }
}
