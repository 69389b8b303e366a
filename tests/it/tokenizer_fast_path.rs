//! The BERT fast path must give exactly what the tokenizers crate gives,
//! ids and character offsets, on text that exercises every normalization rule.

use crate::common;

use squadlab::data::QaTokenizer;

const TRICKY: &[&str] = &[
    "",
    "   ",
    "Café naïve Ångström façade",
    "北京大学 in 東京, 한국어 and 中文。",
    "a\u{0}b\u{1}c\u{7f}d \u{b}x\u{c}y\u{1c}z",
    "a\u{a0}b\u{2003}c\u{3000}d\u{85}e\u{2028}f",
    "1990–1995 — “quoted” ‘single’ «guillemets» …",
    "[CLS] x [SEP]y [MASK][PAD] [UNK]z [notatoken]",
    "e\u{301}te\u{301} o\u{308}\u{301}",
    "İstanbul ΣΊΣΥΦΟΣ Σίσυφος ß ﬁ ligature Ⅻ",
    "😀 ok 👍🏽 a\u{200b}b \u{feff}bom",
    "مرحبا بالعالم नमस्ते दुनिया",
    "U.S.A. $1,000.50 don't e-mail @home #tag 50% a+b=c <x> ~y^ `z` {q}|r\\s",
    "\tleading and trailing\n\r\n",
    "supercalifragilisticexpialidocious-antidisestablishmentarianism",
    "\u{1d165}\u{1d166} music \u{16ff0}",
];

fn check(tok: &QaTokenizer, what: &str) {
    assert!(tok.has_fast_path(), "{what} should take the fast path");
    let long_word = "x".repeat(150);
    let long_mixed = format!("{} tail", "ab".repeat(60));
    for text in TRICKY
        .iter()
        .copied()
        .chain([long_word.as_str(), long_mixed.as_str()])
    {
        let fast = tok.encode(text).unwrap();
        let slow = tok.encode_with_crate(text).unwrap();
        assert_eq!(fast, slow, "{what}: {text:?}");
    }
}

#[test]
fn fast_path_equals_the_crate_on_the_bert_uncased_vocabulary() {
    let Some(tok) = common::bert_uncased_tokenizer() else {
        return;
    };
    check(&tok, "all-MiniLM-L6-v2 tokenizer.json");
}

#[test]
fn fast_path_equals_the_crate_on_a_small_vocab_txt() {
    let dir = tempfile::tempdir().unwrap();
    let vocab =
        "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nab\n##b\n##c\ncafe\nx\n##x\n.\n,\n北\n京\n";
    std::fs::write(dir.path().join("vocab.txt"), vocab).unwrap();
    let tok = QaTokenizer::from_path(&dir.path().join("vocab.txt")).unwrap();
    check(&tok, "vocab.txt");
}
