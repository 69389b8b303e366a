//! Dynamic padding: inference pads each batch only to its longest window and
//! still gives every real position the logits of full padding; training with
//! `dynamic_padding` pads each batch to its longest window and still learns.

use crate::common;

use candle_core::Device;
use common::{run_events, tiny_run_config, tiny_task};
use squadlab::data::{load_json, FeatureSet, LoadOptions, QaTokenizer, WindowParams};
use squadlab::eval::window_logits;
use squadlab::model::{load_qa_model, WindowBatch};
use squadlab::train::{RunRequest, TrainEvent};

#[test]
fn inference_padded_to_the_longest_window_keeps_every_real_logit() {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model_dir) = tiny_task(tmp.path());
    let data = load_json(&json, &LoadOptions::default()).unwrap();
    let tokenizer = QaTokenizer::from_path(&model_dir.join("vocab.txt")).unwrap();
    let max_length = 64;
    let params = WindowParams {
        max_length,
        stride: 16,
    };
    let features = FeatureSet::build(&data, &tokenizer, params).unwrap();
    let lengths: Vec<usize> = (0..features.len()).map(|w| features.seq_len(w)).collect();
    let (shortest, longest) = (
        *lengths.iter().min().unwrap(),
        *lengths.iter().max().unwrap(),
    );
    assert!(
        shortest < longest && longest < max_length,
        "windows of {shortest}..{longest} tokens"
    );

    let loaded = load_qa_model(&model_dir, &Device::Cpu, 0).unwrap();
    let all: Vec<usize> = (0..features.len()).collect();
    let full = WindowBatch::new(&features, &data, &all, max_length, &Device::Cpu).unwrap();
    let (start, _) = loaded.model.forward_inference(&full.as_batch()).unwrap();
    let reference: Vec<Vec<f32>> = start.to_vec2().unwrap();
    for batch_size in [1, 5, 48] {
        let (starts, ends) =
            window_logits(&loaded.model, &data, &features, batch_size, &Device::Cpu).unwrap();
        assert_eq!(
            (starts.len(), ends.len()),
            (features.len() * max_length, features.len() * max_length)
        );
        let mut worst = 0f32;
        for (w, row) in starts.chunks(max_length).enumerate() {
            for (pos, (&got, &want)) in row.iter().zip(&reference[w]).enumerate().take(lengths[w]) {
                worst = worst.max((got - want).abs());
                assert!(got.is_finite(), "window {w} position {pos}");
            }
        }
        assert!(
            worst < 1e-5,
            "batch {batch_size}: real logits differ by {worst}"
        );
        // Batches of one window run at exactly its length: the rest is unscored.
        if batch_size == 1 {
            let w = lengths.iter().position(|&l| l == shortest).unwrap();
            let row = &starts[w * max_length..(w + 1) * max_length];
            assert!(row[shortest..].iter().all(|&v| v == f32::MIN));
        }
    }
}

/// The first step's loss and the final EM of the tiny task's run.
fn tiny_run(dynamic_padding: bool) -> (f64, f64) {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let mut config = tiny_run_config(&json, &model);
    config.dynamic_padding = dynamic_padding;
    let events = run_events(RunRequest {
        config,
        run_dir: tmp.path().join("run"),
        resume: None,
    });
    assert!(matches!(events.last(), Some(TrainEvent::Finished(_))));
    let first_loss = events
        .iter()
        .find_map(|e| match e {
            TrainEvent::Step(s) => Some(s.loss),
            _ => None,
        })
        .expect("a step");
    let em = events
        .iter()
        .find_map(|e| match e {
            TrainEvent::Evaluated(s) => Some(s.exact_match),
            _ => None,
        })
        .expect("an evaluation");
    (first_loss, em)
}

#[test]
fn training_with_dynamic_padding_learns_as_well() {
    let (padded_loss, padded_em) = tiny_run(false);
    let (dynamic_loss, dynamic_em) = tiny_run(true);
    // Padding positions leave the loss's softmax: at the start, when every
    // position is about equally likely, the loss is lower (≈ ln of the positions)...
    assert!(
        dynamic_loss < padded_loss,
        "{dynamic_loss} vs {padded_loss}"
    );
    // ...and the run learns the task as the padded one does.
    assert!(
        dynamic_em >= 50.0 && padded_em >= 50.0,
        "EM {dynamic_em} (dynamic), {padded_em} (padded)"
    );
}
