//! The model's tokenizer (WordPiece, byte-level BPE, SentencePiece: any
//! tokenizer.json), used only to split text into ids with character offsets
//! as the fast tokenizer gives them (trimmed, for byte-level BPE). Windows
//! and padding are ours (see windows.rs), with the special tokens where the
//! tokenizer's own pair template puts them (template.rs), so the truncation
//! and padding a tokenizer.json may embed are switched off.

pub use super::encoded::Encoded;
pub use super::template::PairTemplate;
use super::wordpiece::BertWordPiece;
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

pub struct QaTokenizer {
    inner: Tokenizer,
    /// The exact fast path for BERT-style tokenizers; `None` for others.
    fast: Option<BertWordPiece>,
    /// Where the special tokens go around a question and a context.
    pub template: PairTemplate,
    pub pad_id: u32,
    pub vocab_size: usize,
    pub origin: PathBuf,
}

impl QaTokenizer {
    /// A `tokenizer.json`, a BERT `vocab.txt` (uncased WordPiece rules), or a model
    /// folder holding either (tokenizer.json preferred).
    pub fn from_path(path: &Path) -> Result<Self> {
        if path.is_dir() {
            for name in ["tokenizer.json", "vocab.txt"] {
                if path.join(name).is_file() {
                    return Self::from_path(&path.join(name));
                }
            }
            bail!(
                "{}: holds neither tokenizer.json nor vocab.txt",
                path.display()
            );
        }
        if !path.is_file() {
            bail!("tokenizer {} does not exist", path.display());
        }
        let is_vocab = path.extension().is_some_and(|e| e == "txt");
        let mut inner = if is_vocab {
            bert_uncased_from_vocab(path)?
        } else {
            from_json(path)?
        };
        let padding = inner.get_padding().map(|p| p.pad_id);
        inner
            .with_truncation(None)
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        inner.with_padding(None);
        let id = |token: &str| inner.token_to_id(token);
        let pad_id = padding
            .or_else(|| id("[PAD]"))
            .or_else(|| id("<pad>"))
            .ok_or_else(|| {
                anyhow!(
                    "tokenizer {} has no padding token ([PAD] or <pad>) and no padding setting",
                    path.display()
                )
            })?;
        let template = match (PairTemplate::of(&inner), id("[CLS]"), id("[SEP]")) {
            (Ok(t), _, _) => t,
            // A tokenizer.json without a post-processor, with BERT's tokens.
            (Err(_), Some(cls), Some(sep)) => PairTemplate::bert(cls, sep),
            (Err(e), cls, _) => bail!(
                "tokenizer {}: {e}, and it has no {} token for BERT's [CLS] q [SEP] c [SEP]",
                path.display(),
                if cls.is_none() { "[CLS]" } else { "[SEP]" }
            ),
        };
        Ok(Self {
            fast: BertWordPiece::from_tokenizer(&inner),
            template,
            pad_id,
            vocab_size: inner.get_vocab_size(true),
            inner,
            origin: path.to_path_buf(),
        })
    }

    /// Whether the exact BERT fast path serves this tokenizer.
    pub fn has_fast_path(&self) -> bool {
        self.fast.is_some()
    }

    /// Tokens of `text` without special tokens, with character offsets.
    pub fn encode(&self, text: &str) -> Result<Encoded> {
        match &self.fast {
            Some(fast) => fast
                .encode(text, &self.inner)
                .map_err(|e| anyhow!("tokenizer {}: {e}", self.origin.display())),
            None => self.encode_with_crate(text),
        }
    }

    /// The tokenizers crate's own answer, which the fast path must equal.
    pub fn encode_with_crate(&self, text: &str) -> Result<Encoded> {
        let enc = self
            .inner
            .encode_char_offsets(text, false)
            .map_err(|e| anyhow!("tokenizer {}: {e}", self.origin.display()))?;
        Ok(Encoded {
            ids: enc.get_ids().to_vec(),
            offsets: enc
                .get_offsets()
                .iter()
                .map(|&(s, e)| (s as u32, e as u32))
                .collect(),
        })
    }
}

fn from_json(path: &Path) -> Result<Tokenizer> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read tokenizer {}", path.display()))?;
    Tokenizer::from_bytes(&bytes)
        .map_err(|e| anyhow!("{}: not a valid tokenizer.json: {e}", path.display()))
}

/// bert-base-uncased's rules: clean text, split CJK, lowercase and strip accents.
fn bert_uncased_from_vocab(path: &Path) -> Result<Tokenizer> {
    let file = path
        .to_str()
        .ok_or_else(|| anyhow!("{}: path is not UTF-8", path.display()))?;
    let model = WordPiece::from_file(file)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| anyhow!("{}: not a valid WordPiece vocab.txt: {e}", path.display()))?;
    use tokenizers::Model as _;
    // Marking a token special that the vocabulary lacks would invent an id
    // past the model's embeddings.
    let vocab = model.get_vocab();
    for needed in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] {
        if !vocab.contains_key(needed) {
            bail!("tokenizer {} has no {needed} token", path.display());
        }
    }
    let specials: Vec<AddedToken> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .filter(|t| vocab.contains_key(**t))
        .map(|t| AddedToken::from(*t, true))
        .collect();
    let id = |t: &str| (t.to_string(), vocab[t]);
    let mut tok = Tokenizer::new(model);
    tok.with_normalizer(Some(BertNormalizer::new(true, true, None, true)));
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    tok.with_post_processor(Some(BertProcessing::new(id("[SEP]"), id("[CLS]"))));
    tok.add_special_tokens(&specials);
    Ok(tok)
}
