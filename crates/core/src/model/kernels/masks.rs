//! Dropout masks from Philox words (`rng::philox`): the one place every
//! lean kernel drops, the CPU's twin of what a GPU kernel does per element.

use super::multiversion;
use crate::rng::philox::{drop_threshold, Dropout};

/// Inverted dropout of `x`, whose first element has flat index `first` at
/// its site (`words` is scratch of at least `x.len()`).
pub fn dropout_in_place(x: &mut [f32], d: Dropout, first: u64, words: &mut [u32]) {
    let words = &mut words[..x.len()];
    d.stream.fill(first, words);
    apply_mask(x, words, drop_threshold(d.p), 1.0 / (1.0 - d.p));
}

multiversion! {
    /// Kept elements (word ≥ threshold) scaled by `keep`, the rest zeroed.
    fn apply_mask(x: &mut [f32], words: &[u32], threshold: u32, keep: f32) {
        for (v, &w) in x.iter_mut().zip(words) {
            *v = if w >= threshold { *v * keep } else { 0.0 };
        }
    }
}
