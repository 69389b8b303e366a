//! BERT-family models: where they come from and how they are shaped.

mod bert_config;
mod source;

pub use bert_config::BertConfig;
pub use source::{locate_model, ModelFiles};
