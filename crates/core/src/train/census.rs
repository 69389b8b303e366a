//! The op census of one train step (`squadlab bench census`): the graph a
//! CUDA build runs, counted by kind, as a proxy for its kernel launches.
//!
//! What is counted, for one step of the generic graph (the CUDA build's ops,
//! no fused CPU kernels) with dropout on:
//! - the forward graph: the nodes `loss.sorted_nodes()` returns, each tagged
//!   by the piece of BERT that made it (`model::census`). A node that owns
//!   its storage is a kernel, one that shares another's storage (a reshape,
//!   transpose or broadcast) a view, which launches nothing;
//! - per kind, every tensor made too, graph or not: dropout masks and the
//!   attention mask are made outside the gradient graph but still launch;
//! - the backward pass and the optimizer (clipping and AdamW): the tensors
//!   each makes, counted by their ids, views included (an upper bound on
//!   launches), plus AdamW's in-place parameter writes.
//!
//! None of it depends on batch or sequence length: shapes change the size of
//! each kernel, not their number.

use super::optimizer::{clip_grad_norm, AdamW, AdamWParams, Grads};
use crate::model::census::{self, probe, scope};
use crate::model::kernels::generic_graph;
use crate::model::{qa_loss, BertConfig, BertQa, Params, WindowBatch};
use crate::rng::SeededRng;
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindCount {
    /// Every tensor this kind made, in the gradient graph or not.
    pub made: usize,
    /// Nodes of the forward gradient graph.
    pub nodes: usize,
    /// Graph nodes owning their storage: a kernel each.
    pub kernels: usize,
    /// Graph nodes sharing another's storage: no kernel.
    pub views: usize,
    /// The kernels' output bytes, all alive until the backward pass ends
    /// (the memory planner's activations; shape-dependent, unlike the counts).
    #[serde(skip_serializing_if = "is_zero")]
    pub bytes: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Census {
    pub batch: usize,
    pub seq: usize,
    pub dtype: String,
    /// By kind; "parameter" holds the leaves, "other" untagged nodes.
    pub forward: BTreeMap<String, KindCount>,
    pub forward_total: KindCount,
    pub backward_made: usize,
    pub optimizer_made: usize,
    pub optimizer_in_place: usize,
}

impl Census {
    /// The launch proxy: forward tensors made (graph kernels plus masks and
    /// other non-graph tensors; views excluded), backward and optimizer
    /// tensors made, and AdamW's in-place writes.
    pub fn launch_proxy(&self) -> usize {
        let forward_views = self.forward_total.views;
        self.forward_total.made - forward_views
            + self.backward_made
            + self.optimizer_made
            + self.optimizer_in_place
    }
}

/// One train step of a random-init model of `config` on `n × seq` synthetic
/// windows, in `compute` autocast, on the generic graph; counted.
pub fn census(
    config: &BertConfig,
    n: usize,
    seq: usize,
    compute: DType,
    device: &Device,
) -> Result<Census> {
    let _graph = generic_graph(true);
    let params = Params::random(config, device, 42)?;
    let mut optimizer = AdamW::new(&params, AdamWParams::default())?;
    let batch = WindowBatch::synthetic(config, n, seq, device)?;
    let mut rng = SeededRng::new(42);

    let recording = census::recording();
    let first = probe()?;
    // Autocast's weight casts are part of each step's graph (the trainer
    // rebuilds the model after every update).
    let model = scope("weight cast", || {
        BertQa::with_dtype(config.clone(), &params, compute)
    })?;
    let (start, end) = model.forward(&batch.as_batch(), Some(&mut rng))?;
    let loss = qa_loss(&start, &end, &batch.start_positions, &batch.end_positions)?;
    let last = probe()?;
    let spans = recording.finish();

    let mut forward: BTreeMap<String, KindCount> = BTreeMap::new();
    for id in (first + 1)..last {
        if !spans.is_probe(id) {
            let kind = spans.kind_of(id).unwrap_or("other");
            forward.entry(kind.into()).or_default().made += 1;
        }
    }
    let nodes = loss.sorted_nodes();
    let owners = storage_owners(&nodes)?;
    for node in &nodes {
        let id = census::id_number(node.id())?;
        let kind = if node.is_variable() {
            "parameter"
        } else {
            spans.kind_of(id).unwrap_or("other")
        };
        let count = forward.entry(kind.into()).or_default();
        count.nodes += 1;
        if node.is_variable() {
            continue;
        }
        if owners.get(&storage_address(node)) == Some(&id) {
            count.kernels += 1;
            count.bytes += node.elem_count() * node.dtype().size_in_bytes();
        } else {
            count.views += 1;
        }
    }
    let forward_total = forward
        .values()
        .fold(KindCount::default(), |t, c| KindCount {
            made: t.made + c.made,
            nodes: t.nodes + c.nodes,
            kernels: t.kernels + c.kernels,
            views: t.views + c.views,
            bytes: t.bytes + c.bytes,
        });
    drop(nodes);

    let before_backward = probe()?;
    let step_grads = loss.backward()?;
    let mut grads = Grads::new();
    for (name, var) in params.vars() {
        if let Some(g) = step_grads.get(var) {
            grads.insert(name.clone(), g.to_dtype(DType::F32)?);
        }
    }
    drop(step_grads);
    let after_backward = probe()?;
    clip_grad_norm(&mut grads, 1.0)?;
    optimizer.step(&grads, 1e-9)?;
    let after_optimizer = probe()?;

    Ok(Census {
        batch: n,
        seq,
        dtype: format!("{compute:?}").to_lowercase(),
        forward,
        forward_total,
        backward_made: after_backward - before_backward - 1,
        optimizer_made: after_optimizer - after_backward - 1,
        optimizer_in_place: grads.len(),
    })
}

/// The address of the storage a tensor reads: shared by a tensor and its views.
fn storage_address(t: &Tensor) -> usize {
    let (storage, _) = t.storage_and_layout();
    &*storage as *const candle_core::Storage as usize
}

/// For each storage, the id of the first node (or leaf) that holds it: the
/// one that made it.
fn storage_owners(nodes: &[&Tensor]) -> candle_core::Result<HashMap<usize, usize>> {
    let mut owners = HashMap::new();
    for node in nodes {
        let id = census::id_number(node.id())?;
        owners
            .entry(storage_address(node))
            .and_modify(|o: &mut usize| *o = (*o).min(id))
            .or_insert(id);
    }
    Ok(owners)
}
