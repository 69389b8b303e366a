//! A streaming guard run before a SQuAD file is parsed: the first JSON string
//! longer than a limit, found in constant memory. Parsing a 200 MB context
//! would hold it (and serde's copies of it) in memory before any check ran.

use std::io::Read;

/// Where the first over-long string starts (1-based, as serde_json reports).
#[derive(Debug, PartialEq, Eq)]
pub struct LongString {
    pub line: usize,
    pub column: usize,
}

/// Scans JSON text for a string literal of more than `max_chars` characters.
/// Characters are Unicode scalar values, as Python's `len` counts them: an
/// escape is one, and a `\uXXXX` low surrogate completes its pair.
pub fn find_long_string<R: Read>(
    mut reader: R,
    max_chars: usize,
) -> std::io::Result<Option<LongString>> {
    let mut scan = Scanner::new(max_chars);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(found) = scan.feed(&buf[..n]) {
            return Ok(Some(found));
        }
    }
}

/// The same scan over bytes already in memory.
pub fn find_long_string_in(bytes: &[u8], max_chars: usize) -> Option<LongString> {
    Scanner::new(max_chars).feed(bytes)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Outside,
    Inside,
    /// After a backslash.
    Escape,
    /// Inside `\uXXXX`: hex digits still to come, and the value so far.
    Unicode(u8, u16),
}

struct Scanner {
    max_chars: usize,
    state: State,
    line: usize,
    column: usize,
    start: (usize, usize),
    chars: usize,
}

impl Scanner {
    fn new(max_chars: usize) -> Self {
        Self {
            max_chars,
            state: State::Outside,
            line: 1,
            column: 0,
            start: (1, 0),
            chars: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Option<LongString> {
        for &b in bytes {
            if b == b'\n' {
                self.line += 1;
                self.column = 0;
            } else {
                self.column += 1;
            }
            self.state = match self.state {
                State::Outside if b == b'"' => {
                    self.start = (self.line, self.column);
                    self.chars = 0;
                    State::Inside
                }
                State::Outside => State::Outside,
                State::Inside => match b {
                    b'"' => State::Outside,
                    b'\\' => State::Escape,
                    // UTF-8 continuation bytes are part of the character before.
                    _ if b & 0xC0 == 0x80 => State::Inside,
                    _ => self.count(State::Inside),
                },
                State::Escape if b == b'u' => State::Unicode(4, 0),
                State::Escape => self.count(State::Inside),
                State::Unicode(left, value) => {
                    let digit = (b as char).to_digit(16).unwrap_or(0) as u16;
                    let value = value << 4 | digit;
                    match left {
                        1 if (0xDC00..=0xDFFF).contains(&value) => State::Inside,
                        1 => self.count(State::Inside),
                        _ => State::Unicode(left - 1, value),
                    }
                }
            };
            if self.chars > self.max_chars {
                return Some(LongString {
                    line: self.start.0,
                    column: self.start.1,
                });
            }
        }
        None
    }

    fn count(&mut self, next: State) -> State {
        self.chars += 1;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn longest_allowed(json: &str) -> usize {
        (0..100)
            .find(|&max| find_long_string_in(json.as_bytes(), max).is_none())
            .unwrap()
    }

    #[test]
    fn counts_characters_as_python_does() {
        assert_eq!(longest_allowed(r#"{"a": "abc"}"#), 3);
        assert_eq!(longest_allowed(r#"["héllo", "x"]"#), 5);
        assert_eq!(longest_allowed(r#"["a\"b\\c\n"]"#), 6);
        assert_eq!(longest_allowed(r#"["\u00e9\ud83d\ude00!"]"#), 3);
        assert_eq!(longest_allowed("[\"😀\"]"), 1);
        assert_eq!(longest_allowed("[1, 2, true]"), 0);
    }

    #[test]
    fn names_where_the_long_string_starts_even_across_chunks() {
        let json = format!("{{\n  \"data\": [\n    \"{}\"]}}", "x".repeat(3_000_000));
        let found = find_long_string(json.as_bytes(), 1000).unwrap();
        assert_eq!(found, Some(LongString { line: 3, column: 5 }));
        assert_eq!(find_long_string(json.as_bytes(), 3_000_000).unwrap(), None);
    }
}
