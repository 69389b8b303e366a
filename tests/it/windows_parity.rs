//! Exact parity of the windows with the reference pipeline (the Hugging Face
//! fast tokenizer with the notebook's rules), on the full shared SQuAD files.
//! The digests in fixtures/window_digests.json come from
//! tools/reference/window_digest.py; see that script for their definition.

use crate::common;

use sha2::{Digest, Sha256};
use squadlab::data::{FeatureSet, SquadDataset, WindowParams};

struct Summary {
    windows: usize,
    zero_labelled: usize,
    start_sum: u64,
    end_sum: u64,
    sha256: String,
}

fn summarize(data: &SquadDataset, features: &FeatureSet, train: bool) -> Summary {
    let mut hash = Sha256::new();
    let push = |h: &mut Sha256, v: i32| h.update(v.to_le_bytes());
    for w in 0..features.len() {
        let t = features.tensors(w, data, 384);
        for seq in [&t.input_ids, &t.token_type_ids, &t.attention_mask] {
            seq.iter().for_each(|&v| push(&mut hash, v as i32));
        }
        let win = &features.windows[w];
        if train {
            push(&mut hash, win.start_position as i32);
            push(&mut hash, win.end_position as i32);
        } else {
            for pos in 0..384 {
                let (s, e) = features
                    .offset(w, pos, data)
                    .map_or((-1, -1), |(s, e)| (s as i32, e as i32));
                push(&mut hash, s);
                push(&mut hash, e);
            }
        }
    }
    Summary {
        windows: features.len(),
        zero_labelled: features.zero_labelled(),
        start_sum: features
            .windows
            .iter()
            .map(|w| w.start_position as u64)
            .sum(),
        end_sum: features.windows.iter().map(|w| w.end_position as u64).sum(),
        sha256: format!("{:x}", hash.finalize()),
    }
}

fn expected(split: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/window_digests.json"
    ))
    .expect("fixture present");
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    all[split].clone()
}

fn check(split: &str, file: &str, questions: usize, windows: usize) {
    let Some(data) = common::load_squad(file, None) else {
        return;
    };
    let Some(tokenizer) = common::bert_uncased_tokenizer() else {
        return;
    };
    assert_eq!(data.len(), questions);
    let features = FeatureSet::build(&data, &tokenizer, WindowParams::default()).unwrap();
    assert_eq!(features.len(), windows, "{split} windows");
    let got = summarize(&data, &features, split == "train");
    let want = expected(split);
    assert_eq!(want["windows"], got.windows);
    assert_eq!(
        got.zero_labelled,
        want["zero_labelled"].as_u64().unwrap() as usize,
        "{split} zero-labelled"
    );
    assert_eq!(
        got.start_sum,
        want["start_sum"].as_u64().unwrap(),
        "{split} start positions"
    );
    assert_eq!(
        got.end_sum,
        want["end_sum"].as_u64().unwrap(),
        "{split} end positions"
    );
    assert_eq!(
        got.sha256,
        want["sha256"].as_str().unwrap(),
        "{split} window digest"
    );
}

#[test]
fn dev_windows_match_the_reference() {
    check("dev", "dev-v1.1.json", 10_570, 10_784);
}

#[test]
fn train_windows_match_the_reference() {
    check("train", "train-v1.1.reconstructed.json", 87_599, 88_524);
}

#[test]
fn every_window_is_well_formed() {
    let Some(data) = common::load_squad("dev-v1.1.json", Some(500)) else {
        return;
    };
    let Some(tokenizer) = common::bert_uncased_tokenizer() else {
        return;
    };
    let features = FeatureSet::build(&data, &tokenizer, WindowParams::default()).unwrap();
    for w in 0..features.len() {
        let t = features.tensors(w, &data, 384);
        assert_eq!(t.input_ids.len(), 384);
        assert_eq!(t.input_ids[0], tokenizer.template.before.ids[0]);
        let len = features.seq_len(w);
        assert!(len <= 384);
        assert_eq!(t.input_ids[len - 1], tokenizer.template.after.ids[0]);
        assert!(t.attention_mask[..len].iter().all(|&m| m == 1));
        assert!(t.input_ids[len..].iter().all(|&id| id == tokenizer.pad_id));
        let ctx = features.context_positions(w);
        assert!(t.token_type_ids[ctx.clone()].iter().all(|&v| v == 1));
        assert!(features.offset(w, ctx.start - 1, &data).is_none());
        // A labelled window's span covers the answer text.
        let win = features.windows[w];
        if win.start_position != 0 {
            let ex = &data.examples[win.example as usize];
            let (s, _) = features
                .offset(w, win.start_position as usize, &data)
                .unwrap();
            let (_, e) = features
                .offset(w, win.end_position as usize, &data)
                .unwrap();
            let a = &ex.answers[0];
            assert!(
                s as usize <= a.answer_start
                    && e as usize >= a.answer_start + a.text.chars().count()
            );
        }
    }
    // Consecutive windows of one context overlap by the stride.
    let multi = (0..data.len())
        .find(|&i| features.windows_of(i).len() > 1)
        .expect("a long context");
    let r = features.windows_of(multi);
    let (a, b) = (features.windows[r.start], features.windows[r.start + 1]);
    assert_eq!(a.context_end - b.context_start, 128);
}
