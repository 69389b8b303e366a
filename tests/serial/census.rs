//! The op census (`squadlab bench census`): what it counts must follow from
//! the model's structure, and must not depend on the shapes.
//!
//! One test function: tensor ids come from a global counter, so a census is
//! exact only while no other thread makes tensors.

use crate::common;

use candle_core::{DType, Device};
use common::tiny_bert_config;
use squadlab::train::census::census;

pub fn the_census_counts_the_structure_not_the_shapes() {
    let config = tiny_bert_config(120);
    let layers = config.num_hidden_layers;
    let dev = &Device::Cpu;
    let f32_small = census(&config, 2, 16, DType::F32, dev).unwrap();
    let f32_large = census(&config, 3, 24, DType::F32, dev).unwrap();
    let counts = |c: &squadlab::train::census::Census| {
        let mut kinds = c.forward.clone();
        kinds.values_mut().for_each(|k| k.bytes = 0);
        kinds
    };
    assert_eq!(counts(&f32_small), counts(&f32_large), "forward by kind");
    assert_eq!(f32_small.backward_made, f32_large.backward_made);
    assert_eq!(f32_small.optimizer_made, f32_large.optimizer_made);

    // Six linears a layer (q, k, v, attention out, intermediate, output)
    // and the QA head: one product and one bias add each.
    let linears = 6 * layers + 1;
    let kinds = &f32_small.forward;
    assert_eq!(kinds["linear"].kernels, 2 * linears);
    // Scores: scale q, copy q and k into heads, the product, the mask add.
    assert_eq!(kinds["attention scores"].kernels, 5 * layers);
    // Context: copy v into heads, the product, the copy back out of heads.
    assert_eq!(kinds["attention context"].kernels, 3 * layers);
    assert_eq!(kinds["gelu"].kernels, layers);
    assert_eq!(kinds["residual add"].kernels, 2 * layers);
    // Dropout after the embeddings, on the attention probabilities, after the
    // attention output and after the feed-forward output: one multiply each
    // in the graph, the mask outside it.
    assert_eq!(kinds["dropout"].nodes, 3 * layers + 1);
    assert!(kinds["dropout"].made > kinds["dropout"].nodes);
    // The leaves: every parameter of the model, each a variable.
    let parameters = squadlab::model::expected_shapes(&config).len();
    assert_eq!(kinds["parameter"].nodes, parameters);
    assert_eq!(f32_small.optimizer_in_place, parameters);
    assert!(!kinds.contains_key("other"), "untagged nodes: {kinds:?}");
    assert!(!kinds.contains_key("weight cast"), "f32 casts nothing");

    // Half-precision autocast adds a cast of every linear weight and bias,
    // and the f32 islands (softmax, LayerNorm) cast in and out.
    let f16 = census(&config, 2, 16, DType::F16, dev).unwrap();
    assert_eq!(f16.forward["weight cast"].kernels, 2 * linears);
    assert_eq!(f16.forward["linear"].kernels, kinds["linear"].kernels);
    assert!(f16.forward["softmax"].kernels > kinds["softmax"].kernels);
    assert!(f16.launch_proxy() > f32_small.launch_proxy());

    // Batch 1 elides one broadcast (the position embeddings already have
    // the batch's shape), and with it the backward pass's reduction.
    let single = census(&config, 1, 16, DType::F32, dev).unwrap();
    assert_eq!(
        single.forward_total.views + 1,
        f32_small.forward_total.views
    );
    assert_eq!(
        single.forward_total.kernels,
        f32_small.forward_total.kernels
    );
}
