//! SQuAD data: loading and checking records, the model's tokenizer, and the
//! windows (features) fed to the model.

mod builder;
mod hub_parquet;
mod long_strings;
mod squad;
pub mod tokenizer;
pub mod windows;
mod wordpiece;

pub use builder::{LoadOptions, DEFAULT_MAX_CONTEXT_CHARS};
pub use squad::{
    load_json, load_source, parse_json, Answer, Context, Example, Split, SquadDataset,
};
pub use tokenizer::QaTokenizer;
pub use windows::{FeatureSet, Window, WindowParams};
