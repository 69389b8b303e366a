//! Where a tokenizer puts its special tokens around a question and a
//! context, and which token type each part gets: BERT's
//! `[CLS] q [SEP] c [SEP]` (types 0…0 1…1), RoBERTa's
//! `<s> q </s></s> c </s>` (all 0). Read from the tokenizer's own
//! post-processor by encoding one pair, so any tokenizer.json windows as
//! Hugging Face's fast tokenizer does.

use anyhow::{anyhow, bail, Result};
use tokenizers::Tokenizer;

/// One part of a window: special ids with their token types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Specials {
    pub ids: Vec<u32>,
    pub types: Vec<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairTemplate {
    pub before: Specials,
    pub question_type: u32,
    pub between: Specials,
    pub context_type: u32,
    pub after: Specials,
}

impl PairTemplate {
    /// BERT's: `[CLS] q [SEP] c [SEP]`, question 0 and context 1.
    pub fn bert(cls: u32, sep: u32) -> Self {
        Self {
            before: Specials {
                ids: vec![cls],
                types: vec![0],
            },
            question_type: 0,
            between: Specials {
                ids: vec![sep],
                types: vec![0],
            },
            context_type: 1,
            after: Specials {
                ids: vec![sep],
                types: vec![1],
            },
        }
    }

    /// Special tokens in a window.
    pub fn specials(&self) -> usize {
        self.before.ids.len() + self.between.ids.len() + self.after.ids.len()
    }

    /// The context's first position after a question of `question` tokens.
    pub fn context_offset(&self, question: usize) -> usize {
        self.before.ids.len() + question + self.between.ids.len()
    }

    /// Reads the template by encoding a pair through `tokenizer`'s
    /// post-processor and sorting its tokens by sequence id.
    pub fn of(tokenizer: &Tokenizer) -> Result<Self> {
        if tokenizer.get_post_processor().is_none() {
            bail!("it has no post-processor, so where its special tokens go is unknown");
        }
        let enc = tokenizer
            .encode(("What is it?", "It is a context."), true)
            .map_err(|e| anyhow!("cannot encode a question and context pair: {e}"))?;
        let (ids, types, seqs) = (enc.get_ids(), enc.get_type_ids(), enc.get_sequence_ids());
        let mut t = Self {
            before: Specials::default(),
            question_type: 0,
            between: Specials::default(),
            context_type: 0,
            after: Specials::default(),
        };
        // 0: before the question, 1: in it, 2: between, 3: in the context, 4: after.
        let mut part = 0;
        for i in 0..ids.len() {
            match (seqs[i], part) {
                (Some(0), 0 | 1) => {
                    part = 1;
                    t.question_type = types[i];
                }
                (Some(1), 1..=3) => {
                    part = 3;
                    t.context_type = types[i];
                }
                (None, 0) => push(&mut t.before, ids[i], types[i]),
                (None, 1 | 2) => {
                    part = 2;
                    push(&mut t.between, ids[i], types[i]);
                }
                (None, 3 | 4) => {
                    part = 4;
                    push(&mut t.after, ids[i], types[i]);
                }
                _ => bail!("its pair template interleaves the question and context"),
            }
        }
        if part < 3 {
            bail!("its pair encoding lost the question or the context");
        }
        Ok(t)
    }
}

fn push(s: &mut Specials, id: u32, ty: u32) {
    s.ids.push(id);
    s.types.push(ty);
}
