//! A fast path for BERT's WordPiece tokenization (clean text, split CJK,
//! strip accents, lowercase; split on whitespace and punctuation; greedy
//! longest-match WordPiece), giving exactly what the tokenizers crate gives.
//!
//! Text is cut at whitespace into chunks, which BERT tokenizes independently.
//! ASCII chunks take a byte loop; other chunks a per-character loop with the
//! tokenizers crate's own Unicode tables. A chunk that could hold an added
//! token (`[CLS]`…), or whose accents would be reordered by NFD, goes to the
//! crate itself, so no rule is approximated.

use super::encoded::Encoded;
use anyhow::{anyhow, Result};
use rustc_hash::FxHashMap;
use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{Model, Tokenizer};
use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::char::{canonical_combining_class, decompose_canonical};

pub struct BertWordPiece {
    vocab: FxHashMap<String, u32>,
    unk_id: u32,
    prefix: String,
    max_chars: usize,
    /// First characters of added tokens: a chunk holding one goes to the crate.
    added_starts: Vec<char>,
}

/// Per-call buffers: normalized characters with the original character each came from.
#[derive(Default)]
struct Scratch {
    norm: Vec<(char, u32)>,
    word: String,
    bounds: Vec<usize>,
    lookup: String,
}

impl BertWordPiece {
    /// `Some` when `tokenizer` is BERT's uncased pipeline, which this path reproduces.
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> Option<Self> {
        match tokenizer.get_normalizer()? {
            NormalizerWrapper::BertNormalizer(n)
                if n.clean_text
                    && n.handle_chinese_chars
                    && n.lowercase
                    && n.strip_accents != Some(false) => {}
            _ => return None,
        }
        if !matches!(
            tokenizer.get_pre_tokenizer()?,
            PreTokenizerWrapper::BertPreTokenizer(_)
        ) {
            return None;
        }
        let ModelWrapper::WordPiece(wp) = tokenizer.get_model() else {
            return None;
        };
        let vocab: FxHashMap<String, u32> = wp.get_vocab().into_iter().collect();
        let unk_id = *vocab.get(&wp.unk_token)?;
        let mut added_starts = Vec::new();
        for token in tokenizer.get_added_tokens_decoder().values() {
            let first = token.content.chars().next()?;
            if token.content.chars().any(char::is_whitespace) {
                return None;
            }
            added_starts.push(first);
        }
        Some(Self {
            vocab,
            unk_id,
            prefix: wp.continuing_subword_prefix.clone(),
            max_chars: wp.max_input_chars_per_word,
            added_starts,
        })
    }

    pub fn encode(&self, text: &str, crate_tokenizer: &Tokenizer) -> Result<Encoded> {
        let mut out = Encoded::default();
        let mut scratch = Scratch::default();
        let mut chunk: Option<(usize, u32)> = None;
        for (chars, (byte, c)) in (0u32..).zip(text.char_indices()) {
            if is_split_space(c) {
                if let Some((start, base)) = chunk.take() {
                    self.chunk(
                        &text[start..byte],
                        base,
                        &mut out,
                        &mut scratch,
                        crate_tokenizer,
                    )?;
                }
            } else if chunk.is_none() {
                chunk = Some((byte, chars));
            }
        }
        if let Some((start, base)) = chunk {
            self.chunk(
                &text[start..],
                base,
                &mut out,
                &mut scratch,
                crate_tokenizer,
            )?;
        }
        Ok(out)
    }

    /// One whitespace-free chunk starting at character `base` of the text.
    fn chunk(
        &self,
        s: &str,
        base: u32,
        out: &mut Encoded,
        sc: &mut Scratch,
        tok: &Tokenizer,
    ) -> Result<()> {
        if s.chars().any(|c| self.added_starts.contains(&c)) || !normalize(s, base, &mut sc.norm) {
            return crate_chunk(s, base, out, tok);
        }
        let norm = std::mem::take(&mut sc.norm);
        // Words: runs between spaces, each punctuation character on its own.
        let mut start = 0;
        for i in 0..=norm.len() {
            let boundary = i == norm.len() || norm[i].0 == ' ' || is_bert_punct(norm[i].0);
            if !boundary {
                continue;
            }
            if start < i {
                self.word(&norm[start..i], out, sc);
            }
            if i < norm.len() && norm[i].0 != ' ' {
                self.word(&norm[i..i + 1], out, sc);
            }
            start = i + 1;
        }
        sc.norm = norm;
        Ok(())
    }

    /// Greedy longest-match-first WordPiece, `[UNK]` for the whole word when a piece is missing.
    fn word(&self, chars: &[(char, u32)], out: &mut Encoded, sc: &mut Scratch) {
        let whole = (chars[0].1, chars[chars.len() - 1].1 + 1);
        if chars.len() > self.max_chars {
            out.ids.push(self.unk_id);
            out.offsets.push(whole);
            return;
        }
        sc.word.clear();
        sc.bounds.clear();
        for &(c, _) in chars {
            sc.bounds.push(sc.word.len());
            sc.word.push(c);
        }
        sc.bounds.push(sc.word.len());
        let first_piece = out.ids.len();
        let mut start = 0;
        while start < chars.len() {
            let mut end = chars.len();
            let found = loop {
                if end == start {
                    break None;
                }
                let piece = &sc.word[sc.bounds[start]..sc.bounds[end]];
                let id = if start == 0 {
                    self.vocab.get(piece)
                } else {
                    sc.lookup.clear();
                    sc.lookup.push_str(&self.prefix);
                    sc.lookup.push_str(piece);
                    self.vocab.get(sc.lookup.as_str())
                };
                if let Some(&id) = id {
                    break Some(id);
                }
                end -= 1;
            };
            let Some(id) = found else {
                out.ids.truncate(first_piece);
                out.offsets.truncate(first_piece);
                out.ids.push(self.unk_id);
                out.offsets.push(whole);
                return;
            };
            out.ids.push(id);
            out.offsets.push((chars[start].1, chars[end - 1].1 + 1));
            start = end;
        }
    }
}

/// Characters BERT's normalizer turns into spaces and its pre-tokenizer splits on.
fn is_split_space(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, ' ' | '\t' | '\n' | '\r');
    }
    c.is_whitespace() && !c.is_other()
}

/// BertNormalizer's `is_control`: removed by `clean_text`.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

fn is_bert_punct(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_ascii() && c.is_punctuation())
}

/// BertNormalizer's CJK ranges, padded with spaces.
fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B920..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// Normalizes a chunk into `norm`; false when the crate must handle it
/// (a kept character with a non-zero combining class would be reordered by NFD).
fn normalize(s: &str, base: u32, norm: &mut Vec<(char, u32)>) -> bool {
    norm.clear();
    if s.is_ascii() {
        for (k, b) in s.bytes().enumerate() {
            if !(b < 0x20 || b == 0x7f) {
                norm.push((b.to_ascii_lowercase() as char, base + k as u32));
            }
        }
        return true;
    }
    let mut exact = true;
    for (k, c) in s.chars().enumerate() {
        let orig = base + k as u32;
        if c == '\0' || c == '\u{fffd}' || is_control(c) {
            continue;
        }
        let cjk = is_chinese_char(c);
        if cjk {
            norm.push((' ', orig));
        }
        decompose_canonical(c, |d| {
            if d.is_mark_nonspacing() {
                return;
            }
            if canonical_combining_class(d) != 0 {
                exact = false;
            }
            norm.extend(d.to_lowercase().map(|l| (l, orig)));
        });
        if cjk {
            norm.push((' ', orig));
        }
    }
    exact
}

/// The crate's own tokenization of one chunk, offsets moved to the whole text.
fn crate_chunk(s: &str, base: u32, out: &mut Encoded, tok: &Tokenizer) -> Result<()> {
    let enc = tok
        .encode_char_offsets(s, false)
        .map_err(|e| anyhow!("{e}"))?;
    out.ids.extend_from_slice(enc.get_ids());
    out.offsets.extend(
        enc.get_offsets()
            .iter()
            .map(|&(a, b)| (base + a as u32, base + b as u32)),
    );
    Ok(())
}
