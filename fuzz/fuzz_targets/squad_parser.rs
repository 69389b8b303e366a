//! `parse_json` on arbitrary bytes, twice: with the default options, and with
//! `skip_bad_records`, a `limit` and a small `max_context_chars` derived from
//! the input. What parses is checked record by record, then windowed with a
//! tiny WordPiece vocabulary (fast path checked against the tokenizers crate)
//! into a `FeatureSet` whose windows and labels are checked too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use squadlab::data::{
    parse_json, FeatureSet, LoadOptions, QaTokenizer, SquadDataset, WindowParams,
};
use std::collections::HashSet;
use std::sync::OnceLock;

const ORIGIN: &str = "fuzz.json";

/// Specials, letters and continuation letters, digits, a few words and
/// pieces, punctuation and two CJK characters: enough for real WordPiece
/// splits, `[UNK]`s and every branch of the fast path.
fn vocab() -> String {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(String::from)
        .to_vec();
    for c in 'a'..='z' {
        v.push(c.to_string());
        v.push(format!("##{c}"));
    }
    for c in '0'..='9' {
        v.push(c.to_string());
    }
    for w in [
        "the", "dog", "is", "in", "of", "what", "where", "who", "paris", "france", "cafe", "##s",
        "##ing", "##ed", "un", "##able", ".", ",", "?", "!", "-", "'", "\"", "(", ")", "北", "京",
        "e", "##e",
    ] {
        v.push(w.to_string());
    }
    v.join("\n") + "\n"
}

fn tokenizer() -> &'static QaTokenizer {
    static TOKENIZER: OnceLock<QaTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("squadlab-fuzz-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vocab.txt");
        std::fs::write(&path, vocab()).unwrap();
        let tok = QaTokenizer::from_path(&path).expect("the fuzz vocab loads");
        assert!(tok.has_fast_path());
        let _ = std::fs::remove_dir_all(&dir);
        tok
    })
}

/// FNV-1a: options and window sizes vary with the input, deterministically.
fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// What any loaded dataset must satisfy.
fn check_dataset(data: &SquadDataset, options: &LoadOptions) {
    assert!(!data.examples.is_empty(), "an Ok dataset holds questions");
    if let Some(limit) = options.limit {
        assert!(data.examples.len() <= limit);
    }
    let mut ids = HashSet::new();
    for ex in &data.examples {
        assert!(!ex.id.is_empty());
        assert!(ids.insert(ex.id.as_str()), "duplicate id {:?}", ex.id);
        assert!((ex.context as usize) < data.contexts.len());
        let _ = data.title_of(ex);
        let context = data.context_of(ex);
        assert!(!ex.answers.is_empty());
        for a in &ex.answers {
            let found: String = context
                .chars()
                .skip(a.answer_start)
                .take(chars(&a.text))
                .collect();
            assert_eq!(found, a.text, "answer_start points elsewhere");
        }
    }
    for c in &data.contexts {
        assert!((c.title as usize) < data.titles.len());
    }
}

/// The longest string (key or value, duplicates included) in a JSON
/// document, in characters, as serde_json decodes it.
struct Longest(usize);

impl<'de> serde::Deserialize<'de> for Longest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LongestVisitor)
    }
}

struct LongestVisitor;

impl<'de> serde::de::Visitor<'de> for LongestVisitor {
    type Value = Longest;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON")
    }
    fn visit_str<E>(self, s: &str) -> Result<Longest, E> {
        Ok(Longest(chars(s)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Longest, E> {
        Ok(Longest(0))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Longest, E> {
        Ok(Longest(0))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Longest, E> {
        Ok(Longest(0))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Longest, E> {
        Ok(Longest(0))
    }
    fn visit_unit<E>(self) -> Result<Longest, E> {
        Ok(Longest(0))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Longest, A::Error> {
        let mut n = 0;
        while let Some(Longest(m)) = a.next_element()? {
            n = n.max(m);
        }
        Ok(Longest(n))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Longest, A::Error> {
        let mut n = 0;
        while let Some((Longest(k), Longest(v))) = a.next_entry()? {
            n = n.max(k).max(v);
        }
        Ok(Longest(n))
    }
}

fn check_features(data: &SquadDataset, f: &FeatureSet, params: WindowParams) {
    let tok = tokenizer();
    for text in data
        .contexts
        .iter()
        .map(|c| c.text.as_str())
        .chain(data.examples.iter().map(|e| e.question.as_str()))
    {
        let fast = tok.encode(text).unwrap();
        let slow = tok.encode_with_crate(text).unwrap();
        assert_eq!(fast, slow, "fast path differs from the crate on {text:?}");
    }
    assert_eq!(f.first_window.len(), data.examples.len() + 1);
    assert_eq!(f.first_window[0], 0);
    assert_eq!(*f.first_window.last().unwrap() as usize, f.windows.len());
    for (i, ex) in data.examples.iter().enumerate() {
        let range = f.windows_of(i);
        assert!(!range.is_empty(), "question {i} has no window");
        let c = f.contexts[ex.context as usize].ids.len();
        let mut expected_start = 0;
        for w in range.clone() {
            let win = f.windows[w];
            assert_eq!(win.example as usize, i);
            assert!(win.context_start < win.context_end && win.context_end as usize <= c);
            if w > range.start {
                // Consecutive windows overlap by exactly the stride.
                let prev = f.windows[w - 1];
                assert_eq!(win.context_start, prev.context_end - params.stride as u32);
            } else {
                assert_eq!(win.context_start, expected_start);
            }
            expected_start = win.context_end;
            assert!(f.seq_len(w) <= params.max_length, "window {w} too long");
            let positions = f.context_positions(w);
            if (win.start_position, win.end_position) != (0, 0) {
                assert!(positions.contains(&(win.start_position as usize)));
                assert!(positions.contains(&(win.end_position as usize)));
            }
            assert_eq!(f.context_offsets(w, data).len(), positions.len());
            let t = f.tensors(w, data, params.max_length);
            assert_eq!(t.input_ids.len(), params.max_length);
            assert_eq!(
                t.attention_mask.iter().filter(|&&m| m == 1).count(),
                f.seq_len(w)
            );
        }
        assert_eq!(
            expected_start as usize, c,
            "the last window ends the context"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let h = hash(data);
    let default = LoadOptions::default();
    let parsed = parse_json(data, ORIGIN, &default);
    match &parsed {
        Ok(d) => check_dataset(d, &default),
        Err(e) => {
            let m = format!("{e:#}");
            assert!(m.starts_with(ORIGIN), "the error names no file: {m}");
        }
    }

    let small = LoadOptions {
        limit: Some(1 + (h % 3) as usize),
        skip_bad_records: true,
        max_context_chars: 1 + ((h >> 4) % 64) as usize,
    };
    let longest = serde_json::from_slice::<Longest>(data).ok().map(|l| l.0);
    match parse_json(data, ORIGIN, &small) {
        Ok(d) => {
            check_dataset(&d, &small);
            if let Some(longest) = longest {
                assert!(
                    longest <= small.max_context_chars,
                    "a string of {longest} chars passed"
                );
            }
        }
        Err(e) => {
            let m = format!("{e:#}");
            assert!(m.starts_with(ORIGIN), "the error names no file: {m}");
            if m.contains("exceeds max_context_chars") {
                if let Some(longest) = longest {
                    assert!(
                        longest > small.max_context_chars,
                        "the longest string has {longest} chars, yet: {m}"
                    );
                }
            }
        }
    }

    if let Ok(d) = parsed {
        let max_length = 4 + ((h >> 12) % 48) as usize;
        let params = WindowParams {
            max_length,
            stride: ((h >> 20) % (max_length as u64 + 1)) as usize,
        };
        match FeatureSet::build(&d, tokenizer(), params) {
            Ok(f) => check_features(&d, &f, params),
            Err(e) => assert!(!format!("{e:#}").is_empty()),
        }
    }
});
