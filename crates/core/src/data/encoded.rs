//! A tokenized text, as both tokenizers give it: the tokenizers crate
//! (data/tokenizer.rs) and the exact BERT fast path (data/wordpiece.rs).

/// Token ids and character offsets (Python string indices) of one text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub offsets: Vec<(u32, u32)>,
}
