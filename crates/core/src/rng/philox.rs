//! Philox 4×32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
//! 3", SC 2011), the counter-based generator cuRAND and PyTorch's CUDA
//! dropout use. A draw is a pure function of (key, counter), so a mask
//! element depends on the seed, the micro-batch, the dropout site and its own
//! index only: never on thread scheduling, and the same on the CPU as in a
//! GPU kernel, or in a captured CUDA graph that keeps its counter on the
//! device.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// The 4 words of block `counter` under `key`: ten rounds, the key bumped by
/// the Weyl constants between them (Random123's `philox4x32_R(10, …)`).
#[inline(always)]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let [mut c0, mut c1, mut c2, mut c3] = counter;
    let [mut k0, mut k1] = key;
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(W0);
            k1 = k1.wrapping_add(W1);
        }
        let p0 = u64::from(M0) * u64::from(c0);
        let p1 = u64::from(M1) * u64::from(c2);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0);
    }
    [c0, c1, c2, c3]
}

/// Where a dropout mask is drawn: the run's key, the micro-batch (`round`)
/// and the dropout site; an element's index picks its block and word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskStream {
    pub key: [u32; 2],
    pub round: u32,
    pub site: u32,
}

/// Dropout at one site: drop with probability `p`, each element's word
/// from `stream` at its flat index.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    pub p: f32,
    pub stream: MaskStream,
}

/// The generator's name as checkpoints and `run.ron` record it.
pub const NAME: &str = "philox4x32-10";

impl MaskStream {
    /// The key for a run's `seed`, mixed (SplitMix64) so that nearby seeds
    /// get unrelated keys.
    pub fn key_for_seed(seed: u64) -> [u32; 2] {
        let mut z = seed ^ 0x4452_4F50_4F55_5421; // "DROPOUT!"
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        [z as u32, (z >> 32) as u32]
    }

    /// Word `index` of this stream: block `index / 4`, word `index % 4`.
    pub fn word(&self, index: u64) -> u32 {
        self.block(index / 4)[(index % 4) as usize]
    }

    #[inline(always)]
    fn block(&self, block: u64) -> [u32; 4] {
        philox4x32_10(
            [block as u32, (block >> 32) as u32, self.site, self.round],
            self.key,
        )
    }

    /// Words `first..first + out.len()` into `out`.
    pub fn fill(&self, first: u64, out: &mut [u32]) {
        let mut i = 0;
        // A head that does not start a block.
        while i < out.len() && !(first + i as u64).is_multiple_of(4) {
            out[i] = self.word(first + i as u64);
            i += 1;
        }
        let mut block = (first + i as u64) / 4;
        while i + 4 <= out.len() {
            out[i..i + 4].copy_from_slice(&self.block(block));
            block += 1;
            i += 4;
        }
        while i < out.len() {
            out[i] = self.word(first + i as u64);
            i += 1;
        }
    }
}

/// The 32-bit threshold for dropping with probability `p`: a word below it
/// drops its element, so the kept fraction is 1 − p to within 2⁻³².
pub fn drop_threshold(p: f32) -> u32 {
    (f64::from(p.clamp(0.0, 1.0)) * 4_294_967_296.0).min(u32::MAX as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's known-answer vectors for philox4x32_10 (kat_vectors).
    #[test]
    fn known_answers() {
        let cases = [
            (
                [0u32; 4],
                [0u32; 2],
                [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8],
            ),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd],
            ),
            (
                [0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344],
                [0xa409_3822, 0x299f_31d0],
                [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1],
            ),
        ];
        for (counter, key, want) in cases {
            assert_eq!(philox4x32_10(counter, key), want, "{counter:x?} {key:x?}");
        }
    }

    #[test]
    fn a_fill_from_any_start_is_the_words_one_by_one() {
        let stream = MaskStream {
            key: MaskStream::key_for_seed(42),
            round: 7,
            site: 3,
        };
        for first in [0u64, 1, 2, 3, 5, 4_000_000_001] {
            let mut out = vec![0u32; 11];
            stream.fill(first, &mut out);
            let one_by_one: Vec<u32> = (0..11).map(|i| stream.word(first + i)).collect();
            assert_eq!(out, one_by_one, "from {first}");
        }
    }

    #[test]
    fn thresholds_keep_one_minus_p() {
        assert_eq!(drop_threshold(0.0), 0);
        assert_eq!(drop_threshold(0.5), 1 << 31);
        assert_eq!(drop_threshold(1.0), u32::MAX);
    }
}
