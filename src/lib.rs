//! squadlab: fine-tune BERT-family models on SQuAD v1.1 and track the experiments.
//!
//! This crate is the command line on top of the core (`squadlab-core`) and the
//! desktop app (`squadlab-app`, with the `gui` feature). It re-exports both,
//! so that `squadlab::store`, `squadlab::gui` and the rest name one thing
//! wherever they are used: the tests, the benches and the fuzz targets.

pub use squadlab_core::*;

pub mod cli;
#[cfg(feature = "gui")]
pub use squadlab_app as gui;
