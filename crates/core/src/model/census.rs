//! Tags for an op census: which piece of BERT made each node of a graph.
//!
//! candle keeps a node's op private (`Tensor::op` is `pub(crate)` in 0.11),
//! so the census cannot read kinds off the graph. It reads them off time
//! instead: every tensor takes its id from one global counter, so the nodes a
//! piece of the model creates have ids between two probes taken around it.
//! `scope` takes those probes while a `recording` guard lives on the thread,
//! and costs one thread-local read otherwise.

use candle_core::{DType, Device, Result, Tensor, TensorId};
use std::cell::RefCell;
use std::collections::HashSet;

/// The ids strictly between `after` and `before` were made by `kind`.
#[derive(Clone, Debug)]
pub struct Span {
    pub kind: &'static str,
    pub after: usize,
    pub before: usize,
}

thread_local! {
    static SPANS: RefCell<Option<Vec<Span>>> = const { RefCell::new(None) };
}

/// The number inside a tensor id, read from its `Debug` form (`TensorId(N)`),
/// the only public view of it. Another form (a candle upgrade) is an error
/// that says so, never a silent 0 that would tag every node alike.
pub fn id_number(id: TensorId) -> Result<usize> {
    let text = format!("{id:?}");
    text.strip_prefix("TensorId(")
        .and_then(|t| t.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "the op census reads tensor ids as `TensorId(N)`, but candle printed {text:?}: \
                 its Debug form changed (model/census.rs)"
            ))
        })
}

/// A fresh id from the global counter: every tensor made before this call has
/// a smaller one, every tensor made after it a larger one.
pub fn probe() -> Result<usize> {
    id_number(Tensor::zeros((), DType::U8, &Device::Cpu)?.id())
}

/// Runs `f`, tagging the tensors it makes as `kind` while a census records.
/// Scopes nest; a node belongs to its innermost scope.
pub fn scope<T>(kind: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if !SPANS.with(|s| s.borrow().is_some()) {
        return f();
    }
    let after = probe()?;
    let out = f()?;
    let before = probe()?;
    SPANS.with(|s| {
        if let Some(spans) = s.borrow_mut().as_mut() {
            spans.push(Span {
                kind,
                after,
                before,
            });
        }
    });
    Ok(out)
}

/// Records scopes on this thread until `finish`.
pub struct Recording(());

pub fn recording() -> Recording {
    SPANS.with(|s| *s.borrow_mut() = Some(Vec::new()));
    Recording(())
}

impl Recording {
    pub fn finish(self) -> Spans {
        let spans = SPANS.with(|s| s.borrow_mut().take()).unwrap_or_default();
        let probes = spans.iter().flat_map(|s| [s.after, s.before]).collect();
        Spans { spans, probes }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        SPANS.with(|s| s.borrow_mut().take());
    }
}

/// The recorded scopes.
pub struct Spans {
    spans: Vec<Span>,
    probes: HashSet<usize>,
}

impl Spans {
    /// The innermost scope that made tensor `id`, or `None` when none did.
    pub fn kind_of(&self, id: usize) -> Option<&'static str> {
        self.spans
            .iter()
            .filter(|s| s.after < id && id < s.before)
            .min_by_key(|s| s.before - s.after)
            .map(|s| s.kind)
    }

    /// Whether `id` is one of the scopes' probes rather than the model's.
    pub fn is_probe(&self, id: usize) -> bool {
        self.probes.contains(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_ids_read_as_the_counter_counts() {
        let first = probe().unwrap();
        let made = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        let id = id_number(made.id()).unwrap();
        assert!(
            first > 0 && first < id && id < probe().unwrap(),
            "{first} {id}"
        );
    }
}
