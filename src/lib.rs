//! squadlab: fine-tune BERT-family models on SQuAD v1.1 and track the experiments.
//!
//! One core serves both front ends: the CLI (`cli`) and, later, the desktop app.

pub mod cli;
pub mod config;
pub mod data;
pub mod eval;
pub mod faults;
pub mod fsutil;
#[cfg(feature = "gui")]
pub mod gui;
pub mod hub;
pub mod memory;
pub mod model;
pub mod report;
pub mod store;
pub mod sweep;
pub mod text;
pub mod train;
