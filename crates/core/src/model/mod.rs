//! BERT-family models: where they come from, how they are shaped, their
//! trainable parameters and the QA model itself.

mod batch;
mod bert;
mod bert_config;
pub mod census;
mod checkpoint;
pub mod cuda_layout;
pub mod cuda_tuning;
mod device;
mod family_keys;
pub mod fused;
pub mod kernels;
pub mod layers;
pub mod layout;
pub mod lean;
mod params;
mod source;

pub use crate::family::{position_ids, position_padding_row, Family};
pub use batch::WindowBatch;
pub use bert::{qa_loss, Batch, BertQa};
pub use bert_config::{Activation, BertConfig};
pub use checkpoint::{load_qa_model, save_pretrained, LoadedModel, TokenizerFile};
pub use device::{compute_dtype, describe, select_device, CUDA_BUILT};
pub use params::{expected_shapes, param_specs, LoadReport, Params};
pub use source::{locate_model, pip_package_dir, ModelFiles};
