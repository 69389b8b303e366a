//! Python-compatible string helpers: the reference pipeline and the official
//! scorer run in Python, so whitespace must mean what `str.isspace` means.

/// `str.isspace` in Python: Unicode White_Space plus the ASCII separators
/// U+001C..U+001F, which Rust's `char::is_whitespace` leaves out.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no arguments.
pub fn python_strip(s: &str) -> &str {
    s.trim_matches(is_python_space)
}

/// Python's `str.split()` with no arguments.
pub fn python_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(is_python_space).filter(|t| !t.is_empty())
}

/// Byte index of every char boundary of `s`, plus `s.len()` at the end, so that
/// character offsets (Python string indices) can slice the UTF-8 string.
pub fn char_boundaries(s: &str) -> Vec<usize> {
    let mut out: Vec<usize> = s.char_indices().map(|(b, _)| b).collect();
    out.push(s.len());
    out
}

/// `s[start..end]` in characters, as Python slices a `str`: out-of-range bounds clamp.
pub fn char_slice<'a>(s: &'a str, boundaries: &[usize], start: usize, end: usize) -> &'a str {
    let n = boundaries.len() - 1;
    let (start, end) = (start.min(n), end.min(n));
    if start >= end {
        return "";
    }
    &s[boundaries[start]..boundaries[end]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_and_split_follow_python() {
        assert_eq!(python_strip("\u{1f} a b\u{a0}\n"), "a b");
        let parts: Vec<_> = python_split("a\u{1c}b  c\u{2003}d").collect();
        assert_eq!(parts, ["a", "b", "c", "d"]);
    }

    #[test]
    fn char_slice_uses_characters() {
        let s = "héllo wörld";
        let b = char_boundaries(s);
        assert_eq!(char_slice(s, &b, 6, 11), "wörld");
        assert_eq!(char_slice(s, &b, 9, 99), "ld");
        assert_eq!(char_slice(s, &b, 5, 2), "");
    }
}
