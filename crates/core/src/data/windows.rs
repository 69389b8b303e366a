//! Windows (features) of question + context, by the reference's rules: the
//! stripped question, `only_second` truncation with a stride, padding to
//! `max_length`, and start/end labels from the offset search, (0,0) when the
//! answer is not wholly inside the window.
//!
//! A window is stored as a range of its context's tokens: every context and every
//! question is tokenized once and windows are cut from them, which is both faster
//! than tokenizing pairs and immune to the tokenizers crate's pair-overflow bug.

use super::squad::SquadDataset;
use super::tokenizer::{Encoded, PairTemplate, QaTokenizer};
use crate::text::python_strip;
use anyhow::{bail, Result};
use rayon::prelude::*;
use std::ops::Range;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowParams {
    pub max_length: usize,
    pub stride: usize,
}

impl Default for WindowParams {
    fn default() -> Self {
        Self {
            max_length: 384,
            stride: 128,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub example: u32,
    /// Context tokens `context_start..context_end` fill this window.
    pub context_start: u32,
    pub context_end: u32,
    /// Label positions from the first answer; (0,0) when it is not inside.
    pub start_position: u32,
    pub end_position: u32,
}

pub struct FeatureSet {
    pub params: WindowParams,
    /// The tokenizer's special tokens around question and context.
    pub template: PairTemplate,
    pub pad_id: u32,
    /// Per example, its stripped question's tokens.
    pub questions: Vec<Encoded>,
    /// Per dataset context.
    pub contexts: Vec<Encoded>,
    pub windows: Vec<Window>,
    /// Windows of example `i` are `first_window[i]..first_window[i + 1]`.
    pub first_window: Vec<u32>,
}

/// One padded window as the model sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowTensors {
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    pub attention_mask: Vec<u32>,
}

impl FeatureSet {
    pub fn build(
        data: &SquadDataset,
        tokenizer: &QaTokenizer,
        params: WindowParams,
    ) -> Result<Self> {
        if params.stride >= params.max_length {
            bail!(
                "doc_stride ({}) must be smaller than max_seq_length ({})",
                params.stride,
                params.max_length
            );
        }
        let contexts: Vec<Encoded> = data
            .contexts
            .par_iter()
            .map(|c| tokenizer.encode(&c.text))
            .collect::<Result<_>>()?;
        let questions: Vec<Encoded> = data
            .examples
            .par_iter()
            .map(|e| tokenizer.encode(python_strip(&e.question)))
            .collect::<Result<_>>()?;
        let per_example: Vec<Vec<Window>> = (0..data.examples.len())
            .into_par_iter()
            .map(|i| {
                let ex = &data.examples[i];
                example_windows(
                    i as u32,
                    &questions[i],
                    &contexts[ex.context as usize],
                    ex,
                    params,
                    &tokenizer.template,
                )
                .map_err(|e| anyhow::anyhow!("{}: question {:?}: {e}", data.origin, ex.id))
            })
            .collect::<Result<_>>()?;
        let mut first_window = Vec::with_capacity(per_example.len() + 1);
        let mut windows = Vec::with_capacity(per_example.iter().map(Vec::len).sum());
        for w in per_example {
            first_window.push(windows.len() as u32);
            windows.extend(w);
        }
        first_window.push(windows.len() as u32);
        Ok(Self {
            params,
            template: tokenizer.template.clone(),
            pad_id: tokenizer.pad_id,
            questions,
            contexts,
            windows,
            first_window,
        })
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    pub fn windows_of(&self, example: usize) -> Range<usize> {
        self.first_window[example] as usize..self.first_window[example + 1] as usize
    }

    pub fn zero_labelled(&self) -> usize {
        self.windows
            .iter()
            .filter(|w| w.start_position == 0 && w.end_position == 0)
            .count()
    }

    /// Positions of the context tokens within window `w` (sequence id 1).
    pub fn context_positions(&self, w: usize) -> Range<usize> {
        let win = &self.windows[w];
        let first = self
            .template
            .context_offset(self.questions[win.example as usize].ids.len());
        first..first + (win.context_end - win.context_start) as usize
    }

    /// The longest of these windows, in tokens: what a batch of them pads to
    /// with dynamic padding.
    pub fn longest(&self, windows: &[usize]) -> usize {
        windows.iter().map(|&w| self.seq_len(w)).max().unwrap_or(0)
    }

    /// Real tokens in window `w`: question and context with the template's
    /// special tokens (BERT's [CLS] question [SEP] context [SEP]).
    pub fn seq_len(&self, w: usize) -> usize {
        self.context_positions(w).end + self.template.after.ids.len()
    }

    /// Character offsets of the context tokens of window `w`, in position order
    /// from `context_positions(w).start`.
    pub fn context_offsets<'a>(&'a self, w: usize, data: &SquadDataset) -> &'a [(u32, u32)] {
        let win = &self.windows[w];
        let ctx = data.examples[win.example as usize].context as usize;
        &self.contexts[ctx].offsets[win.context_start as usize..win.context_end as usize]
    }

    /// Character offsets into the context of position `pos`, `None` outside the context.
    pub fn offset(&self, w: usize, pos: usize, data: &SquadDataset) -> Option<(u32, u32)> {
        let range = self.context_positions(w);
        range
            .contains(&pos)
            .then(|| self.context_offsets(w, data)[pos - range.start])
    }

    /// Window `w` padded to `pad_to` positions (at least its real length).
    pub fn tensors(&self, w: usize, data: &SquadDataset, pad_to: usize) -> WindowTensors {
        let win = &self.windows[w];
        let ex = &data.examples[win.example as usize];
        let q = &self.questions[win.example as usize].ids;
        let c = &self.contexts[ex.context as usize].ids
            [win.context_start as usize..win.context_end as usize];
        let t = &self.template;
        let len = q.len() + c.len() + t.specials();
        let pad_to = pad_to.max(len);
        let mut input_ids = Vec::with_capacity(pad_to);
        let mut token_type_ids = Vec::with_capacity(pad_to);
        for (ids, types) in [
            (&t.before.ids[..], &t.before.types[..]),
            (q, &vec![t.question_type; q.len()][..]),
            (&t.between.ids[..], &t.between.types[..]),
            (c, &vec![t.context_type; c.len()][..]),
            (&t.after.ids[..], &t.after.types[..]),
        ] {
            input_ids.extend_from_slice(ids);
            token_type_ids.extend_from_slice(types);
        }
        input_ids.resize(pad_to, self.pad_id);
        token_type_ids.resize(pad_to, 0);
        let mut attention_mask = vec![0; pad_to];
        attention_mask[..len].fill(1);
        WindowTensors {
            input_ids,
            token_type_ids,
            attention_mask,
        }
    }
}

/// Windows of one example and their labels.
fn example_windows(
    example: u32,
    question: &Encoded,
    context: &Encoded,
    ex: &super::squad::Example,
    params: WindowParams,
    template: &PairTemplate,
) -> Result<Vec<Window>> {
    let (q, c) = (question.ids.len(), context.ids.len());
    if c == 0 {
        bail!("the context has no tokens");
    }
    // Room for context tokens beside the question and the special tokens.
    let specials = template.specials();
    let keep = if q + c + specials <= params.max_length {
        c
    } else {
        let keep = params.max_length.saturating_sub(q + specials);
        if keep <= params.stride {
            bail!(
                "the question has {q} tokens, which leaves {keep} context tokens per window with \
                 max_seq_length {} and doc_stride {}; a window must hold more context tokens than \
                 the stride: raise max_seq_length or lower doc_stride",
                params.max_length,
                params.stride
            );
        }
        keep
    };
    // Labels follow the first answer; a question without one (at inference) gets (0, 0).
    let span = ex.answers.first().map(|a| {
        let start = a.answer_start as u32;
        (start, start + a.text.chars().count() as u32)
    });
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let stop = (start + keep).min(c);
        let (s, e) = match span {
            Some((start_char, end_char)) => label(
                &context.offsets[start..stop],
                template.context_offset(q),
                start_char,
                end_char,
            ),
            None => (0, 0),
        };
        out.push(Window {
            example,
            context_start: start as u32,
            context_end: stop as u32,
            start_position: s,
            end_position: e,
        });
        if stop == c {
            return Ok(out);
        }
        // Only reached when the context overflows one window, where `keep`
        // exceeds the stride; a context that fits may be shorter than the
        // stride, and `keep - stride` would underflow (fuzz crash, see
        // tests/it/fuzz_regressions.rs).
        start += keep - params.stride;
    }
}

/// The reference's offset search, on a window whose context tokens (offsets
/// `offsets`) begin at position `first`.
fn label(offsets: &[(u32, u32)], first: usize, start_char: u32, end_char: u32) -> (u32, u32) {
    let last = offsets.len() - 1;
    if offsets[0].0 > start_char || offsets[last].1 < end_char {
        return (0, 0);
    }
    let mut i = 0;
    while i <= last && offsets[i].0 <= start_char {
        i += 1;
    }
    let start = first + i - 1;
    let mut j = last as isize;
    while j >= 0 && offsets[j as usize].1 >= end_char {
        j -= 1;
    }
    let end = (first as isize + j + 1) as usize;
    (start as u32, end as u32)
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn label_follows_the_offset_search() {
        // Tokens: "the"(0,3) "big"(4,7) "dog"(8,11), context starting at position 5.
        let off = [(0, 3), (4, 7), (8, 11)];
        assert_eq!(label(&off, 5, 4, 7), (6, 6));
        assert_eq!(label(&off, 5, 4, 11), (6, 7));
        // Answer starting mid-token snaps to the token holding it.
        assert_eq!(label(&off, 5, 5, 11), (6, 7));
        // Outside the window: (0, 0).
        assert_eq!(label(&off, 5, 4, 12), (0, 0));
    }
}
