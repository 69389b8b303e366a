//! Every integration test that can share a process with the others, one
//! module per subject, in one binary: one link of candle, tokenizers, parquet
//! and eframe instead of one per file. Tests that need a process of their
//! own are in tests/serial.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod best_model;
mod breakdown;
mod chaos;
mod claims;
mod cli;
mod dropout;
mod dynamic_padding;
mod families;
mod faults;
mod fuzz_regressions;
mod generic_graph;
mod gui;
mod gui_analysis;
mod kernels;
mod layering;
mod model;
mod model_parity;
mod numeric_checks;
mod optimizer;
mod parity;
mod philox_cuda_host;
mod postprocess;
mod schedules;
mod scoring;
mod significance;
mod slurm;
mod squad2;
mod squad_loading;
mod store_report;
mod store_runs;
mod sweep;
mod tensorboard;
mod tokenizer_fast_path;
mod train;
mod train_cli;
mod windows_parity;
mod worker;
