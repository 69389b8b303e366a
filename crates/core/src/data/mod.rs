//! SQuAD data: loading and checking records, the model's tokenizer, and the
//! windows (features) fed to the model.

mod builder;
mod encoded;
mod hub_parquet;
mod load;
mod long_strings;
mod squad;
mod template;
pub mod tokenizer;
pub mod windows;
mod wordpiece;

pub use builder::LoadOptions;
pub use load::{load_json, load_source, parse_json};
pub use squad::{Answer, Context, Example, Split, SquadDataset, SQUAD_V1, SQUAD_V2};
pub use template::{PairTemplate, Specials};
pub use tokenizer::QaTokenizer;
pub use windows::{FeatureSet, Window, WindowParams};
