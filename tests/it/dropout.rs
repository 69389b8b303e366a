//! Dropout you can trust: with fixed seeds, the kept fraction is 1 − p within
//! a binomial bound, and masks are independent across layers, heads, windows
//! and steps (2×2 contingency χ² tests), for the generic dropout (hidden
//! states, and attention probabilities off the fused path) and the fused
//! attention kernel's, which must share the same statistics.
//!
//! Each check is also run on a deliberately broken mask and must reject it,
//! so none of these tests can pass by construction.

use candle_core::{Device, Tensor};
use squadlab::model::kernels::{attention, AttentionDropout};
use squadlab::model::layers::dropout;
use squadlab::rng::SeededRng;

/// Bound on |kept − n(1−p)| in binomial standard deviations: with fixed seeds
/// the outcome is deterministic; 5σ makes a false alarm a 1-in-3-million draw.
const SIGMAS: f64 = 5.0;
/// χ² with one degree of freedom at p = 0.001.
const CHI2_CRITICAL: f64 = 10.828;

/// Whether the number kept is within the binomial bound for keep rate `q`.
fn kept_fraction_ok(mask: &[bool], q: f64) -> Result<(), String> {
    let n = mask.len() as f64;
    let kept = mask.iter().filter(|&&k| k).count() as f64;
    let sd = (n * q * (1.0 - q)).sqrt();
    let z = (kept - n * q) / sd;
    if z.abs() <= SIGMAS {
        Ok(())
    } else {
        Err(format!(
            "kept {kept} of {n} ({:.5}), expected {q} (z = {z:.1})",
            kept / n
        ))
    }
}

/// Pearson's χ² for independence of two equally long binary sequences.
fn chi2(a: &[bool], b: &[bool]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mut table = [[0f64; 2]; 2];
    for (&x, &y) in a.iter().zip(b) {
        table[x as usize][y as usize] += 1.0;
    }
    let n = a.len() as f64;
    let rows = [table[0][0] + table[0][1], table[1][0] + table[1][1]];
    let cols = [table[0][0] + table[1][0], table[0][1] + table[1][1]];
    let mut stat = 0.0;
    for i in 0..2 {
        for j in 0..2 {
            let expected = rows[i] * cols[j] / n;
            if expected > 0.0 {
                stat += (table[i][j] - expected).powi(2) / expected;
            }
        }
    }
    stat
}

fn independent(a: &[bool], b: &[bool], what: &str) -> Result<(), String> {
    let stat = chi2(a, b);
    if stat < CHI2_CRITICAL {
        Ok(())
    } else {
        Err(format!("{what}: χ² = {stat:.1} ≥ {CHI2_CRITICAL}"))
    }
}

/// Lag-1 independence within one mask: element i against element i + 1.
fn serially_independent(mask: &[bool], what: &str) -> Result<(), String> {
    independent(&mask[..mask.len() - 1], &mask[1..], what)
}

/// The generic dropout's mask for `n` elements (true = kept), drawn from `rng`.
fn generic_mask(n: usize, p: f64, rng: &mut SeededRng) -> Vec<bool> {
    let ones = Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    let out = dropout(&ones, p, Some(rng)).unwrap();
    let scale = (1.0 / (1.0 - p)) as f32;
    out.to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(|v| {
            assert!(v == 0.0 || (v - scale).abs() < 1e-6, "dropout value {v}");
            v != 0.0
        })
        .collect()
}

const WINDOWS: usize = 4;
const HEADS: usize = 4;
const SEQ: usize = 64;

/// The fused attention kernel's mask, `[window][head]` blocks of SEQ × SEQ:
/// with q = k = 0 every probability is 1/SEQ, and with one-hot values
/// (key j writes column j of its head) the output is the dropped
/// probabilities themselves.
fn fused_masks(p: f32, seed: u64) -> Vec<Vec<Vec<bool>>> {
    let hidden = HEADS * SEQ;
    let zeros = Tensor::zeros(
        (WINDOWS, SEQ, hidden),
        candle_core::DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let v = Tensor::from_vec(one_hot_values(), (WINDOWS, SEQ, hidden), &Device::Cpu).unwrap();
    let keys = Tensor::ones((WINDOWS, SEQ), candle_core::DType::F32, &Device::Cpu).unwrap();
    let out = attention(
        &zeros,
        &zeros,
        &v,
        &keys,
        HEADS,
        Some(AttentionDropout { p, seed }),
        false,
    )
    .unwrap()
    .flatten_all()
    .unwrap()
    .to_vec1::<f32>()
    .unwrap();
    masks_from_context(&out, p)
}

/// Values where key j writes column j of its head: with q = k = 0, every
/// probability is 1/SEQ and the context is the dropped probabilities.
fn one_hot_values() -> Vec<f32> {
    let hidden = HEADS * SEQ;
    let mut v = vec![0f32; WINDOWS * SEQ * hidden];
    for w in 0..WINDOWS {
        for j in 0..SEQ {
            for h in 0..HEADS {
                v[(w * SEQ + j) * hidden + h * SEQ + j] = 1.0;
            }
        }
    }
    v
}

/// Such a context read back as kept flags, `[window][head]` blocks.
fn masks_from_context(out: &[f32], p: f32) -> Vec<Vec<Vec<bool>>> {
    let hidden = HEADS * SEQ;
    let kept = 1.0 / SEQ as f32 / (1.0 - p);
    (0..WINDOWS)
        .map(|w| {
            (0..HEADS)
                .map(|h| {
                    let mut block = Vec::with_capacity(SEQ * SEQ);
                    for i in 0..SEQ {
                        for j in 0..SEQ {
                            let x = out[(w * SEQ + i) * hidden + h * SEQ + j];
                            assert!(x == 0.0 || (x - kept).abs() < 1e-6, "probability {x}");
                            block.push(x != 0.0);
                        }
                    }
                    block
                })
                .collect()
        })
        .collect()
}

fn flat(masks: &[Vec<Vec<bool>>]) -> Vec<bool> {
    masks.iter().flatten().flatten().copied().collect()
}

#[test]
fn the_checks_reject_deliberately_broken_masks() {
    let mut rng = SeededRng::new(7);
    let good = generic_mask(1 << 16, 0.1, &mut rng);
    // Keeping 85% where 90% should be kept.
    let too_few: Vec<bool> = (0..1 << 16).map(|i| i % 20 >= 3).collect();
    assert!(kept_fraction_ok(&too_few, 0.9).is_err());
    // The same mask again, as a stream reused across layers or steps would give.
    assert!(independent(&good, &good, "reused").is_err());
    // A mask whose second half repeats its first, as a window or head reusing
    // another's stream would give.
    let mut halves = good[..1 << 15].to_vec();
    halves.extend_from_slice(&good[..1 << 15]);
    assert!(independent(&halves[..1 << 15], &halves[1 << 15..], "halves").is_err());
    // Drops in runs of two: serially dependent.
    let runs: Vec<bool> = good.iter().flat_map(|&k| [k, k]).collect();
    assert!(serially_independent(&runs, "runs").is_err());
    // And the good mask passes each of them.
    kept_fraction_ok(&good, 0.9).unwrap();
    serially_independent(&good, "good").unwrap();
}

#[test]
fn generic_dropout_keeps_one_minus_p_with_independent_masks() {
    for p in [0.1, 0.5] {
        let mut rng = SeededRng::new(42);
        // Three draws from one stream: three layers of a forward pass, or
        // three steps, each over several of the mask's parallel chunks.
        let n = 3 << 16;
        let masks: Vec<Vec<bool>> = (0..3).map(|_| generic_mask(n, p, &mut rng)).collect();
        for (i, m) in masks.iter().enumerate() {
            kept_fraction_ok(m, 1.0 - p).unwrap_or_else(|e| panic!("p {p}, draw {i}: {e}"));
            serially_independent(m, &format!("p {p}, draw {i}, lag 1")).unwrap();
            // Across the parallel chunks of one mask (windows of one batch).
            let chunk = 1 << 16;
            independent(&m[..chunk], &m[chunk..2 * chunk], "chunks 0 and 1").unwrap();
            independent(&m[chunk..2 * chunk], &m[2 * chunk..], "chunks 1 and 2").unwrap();
        }
        independent(&masks[0], &masks[1], &format!("p {p}: draws 0 and 1")).unwrap();
        independent(&masks[0], &masks[2], &format!("p {p}: draws 0 and 2")).unwrap();
        // A new run with the same seed draws the same masks; another seed, others.
        let mut again = SeededRng::new(42);
        assert_eq!(generic_mask(n, p, &mut again), masks[0]);
        let mut other = SeededRng::new(43);
        independent(
            &generic_mask(n, p, &mut other),
            &masks[0],
            "seeds 42 and 43",
        )
        .unwrap();
    }
}

#[test]
fn fused_attention_dropout_keeps_one_minus_p_independently_per_head_window_and_call() {
    let p = 0.1;
    // Two calls with seeds drawn from one stream, as two layers (or steps) draw them.
    let mut rng = SeededRng::new(42);
    let calls: Vec<_> = (0..2).map(|_| fused_masks(p, rng.next_u64())).collect();
    for (c, masks) in calls.iter().enumerate() {
        let all = flat(masks);
        kept_fraction_ok(&all, 1.0 - f64::from(p)).unwrap_or_else(|e| panic!("call {c}: {e}"));
        serially_independent(&all, &format!("call {c}, lag 1")).unwrap();
        for (w, heads) in masks.iter().enumerate() {
            for (h, head) in heads.iter().enumerate().skip(1) {
                independent(
                    &heads[0],
                    head,
                    &format!("call {c} window {w}: heads 0 and {h}"),
                )
                .unwrap();
            }
        }
        for w in 1..WINDOWS {
            independent(
                &masks[0][0],
                &masks[w][0],
                &format!("call {c}: windows 0 and {w}"),
            )
            .unwrap();
        }
        // Query rows of one head: row i against row i + 1.
        let block = &masks[1][1];
        independent(
            &block[..SEQ * (SEQ - 1)],
            &block[SEQ..],
            &format!("call {c}: adjacent rows"),
        )
        .unwrap();
    }
    independent(&flat(&calls[0]), &flat(&calls[1]), "calls 0 and 1").unwrap();
    // The backward pass redraws the mask from the seed: the same seed, the same mask.
    assert_eq!(fused_masks(p, 99), fused_masks(p, 99));
}

#[test]
fn fused_and_generic_attention_dropout_share_their_statistics() {
    let p = 0.1;
    let mut rng = SeededRng::new(5);
    let fused: Vec<bool> = (0..4)
        .flat_map(|_| flat(&fused_masks(p, rng.next_u64())))
        .collect();
    let mut rng = SeededRng::new(5);
    let generic: Vec<bool> = (0..4)
        .flat_map(|_| generic_mask(WINDOWS * HEADS * SEQ * SEQ, p as f64, &mut rng))
        .collect();
    // Two-proportion z-test on the kept fractions.
    let n = fused.len() as f64;
    let (a, b) = (
        fused.iter().filter(|&&k| k).count() as f64 / n,
        generic.iter().filter(|&&k| k).count() as f64 / n,
    );
    let pooled = (a + b) / 2.0;
    let z = (a - b) / (pooled * (1.0 - pooled) * 2.0 / n).sqrt();
    assert!(
        z.abs() < SIGMAS,
        "kept fused {a:.5}, generic {b:.5}: z = {z:.2}"
    );
    // The same share of kept-kept neighbours (lag 1) on both paths.
    let pairs =
        |m: &[bool]| m.windows(2).filter(|w| w[0] && w[1]).count() as f64 / (m.len() - 1) as f64;
    let (pf, pg) = (pairs(&fused), pairs(&generic));
    let keep = 1.0 - p as f64;
    let q = keep.powi(2);
    // Overlapping pairs share an element: each pair's variance plus twice the
    // covariance with its neighbour, keep³ − keep⁴.
    let sd = ((q * (1.0 - q) + 2.0 * (keep.powi(3) - keep.powi(4))) / n).sqrt();
    for (what, x) in [("fused", pf), ("generic", pg)] {
        assert!(
            ((x - q) / sd).abs() < SIGMAS,
            "{what}: kept pairs {x:.5}, expected {q:.5}"
        );
    }
}

// The lean step's dropout: Philox 4×32-10 words at (seed, micro-batch,
// site, element), through the one function every lean kernel masks with.

use squadlab::model::lean::cpu::{attention_on, dropout_in_place};
use squadlab::model::lean::{Dropout, StepInput};
use squadlab::rng::philox::MaskStream;

fn philox(seed: u64, round: u32, site: u32, p: f32) -> Dropout {
    Dropout {
        p,
        stream: MaskStream {
            key: MaskStream::key_for_seed(seed),
            round,
            site,
        },
    }
}

/// The lean hidden-state mask of `n` elements from flat index `first`.
fn lean_mask(d: Dropout, first: u64, n: usize) -> Vec<bool> {
    let mut x = vec![1f32; n];
    let mut words = vec![0u32; n];
    dropout_in_place(&mut x, d, first, &mut words);
    let scale = 1.0 / (1.0 - d.p);
    x.into_iter()
        .map(|v| {
            assert!(v == 0.0 || (v - scale).abs() < 1e-6, "dropout value {v}");
            v != 0.0
        })
        .collect()
}

#[test]
fn lean_dropout_keeps_one_minus_p_independently_per_site_round_seed_and_element() {
    let n = 3 << 16;
    for p in [0.1f32, 0.5] {
        let base = lean_mask(philox(42, 0, 0, p), 0, n);
        let q = 1.0 - f64::from(p);
        kept_fraction_ok(&base, q).unwrap_or_else(|e| panic!("p {p}: {e}"));
        serially_independent(&base, &format!("p {p}, lag 1")).unwrap();
        // The four words of one Philox block: element 4i against 4i + 1..3.
        for lag in 1..4 {
            let a: Vec<bool> = base.iter().step_by(4).copied().collect();
            let b: Vec<bool> = base.iter().skip(lag).step_by(4).copied().collect();
            let len = a.len().min(b.len());
            independent(
                &a[..len],
                &b[..len],
                &format!("p {p}: words 0 and {lag} of a block"),
            )
            .unwrap();
        }
        for (what, other) in [
            ("another site (layer)", philox(42, 0, 1, p)),
            ("another round (micro-batch)", philox(42, 1, 0, p)),
            ("another seed", philox(43, 0, 0, p)),
        ] {
            let m = lean_mask(other, 0, n);
            kept_fraction_ok(&m, q).unwrap_or_else(|e| panic!("p {p}, {what}: {e}"));
            independent(&base, &m, &format!("p {p}: {what}")).unwrap();
        }
        // A row of the mask drawn on its own is the same row of the whole:
        // what a GPU thread block, a CPU task or a resumed run draws agrees.
        let row = lean_mask(philox(42, 0, 0, p), 1000, 384);
        assert_eq!(row, base[1000..1384]);
    }
}

#[test]
fn the_checks_reject_a_broken_lean_stream() {
    let p = 0.1;
    let good = lean_mask(philox(42, 0, 0, p), 0, 1 << 16);
    // A kernel that ignored the round would draw every micro-batch's mask alike.
    let same_round = lean_mask(philox(42, 0, 0, p), 0, 1 << 16);
    assert!(independent(&good, &same_round, "round ignored").is_err());
    // One that dropped with words ≥ threshold (keeping p instead of 1 − p).
    let inverted: Vec<bool> = good.iter().map(|&k| !k).collect();
    assert!(kept_fraction_ok(&inverted, 0.9).is_err());
    // One that indexed by block rather than element: runs of four.
    let blocks: Vec<bool> = good.iter().step_by(4).flat_map(|&k| [k; 4]).collect();
    assert!(serially_independent(&blocks, "blocks").is_err());
}

/// The lean attention op's masks, `[window][head]` blocks of SEQ × SEQ, as
/// `fused_masks` reads them (q = k = 0, one-hot values).
fn lean_attention_masks(d: Dropout) -> Vec<Vec<Vec<bool>>> {
    let zeros = vec![0f32; WINDOWS * SEQ * HEADS * SEQ];
    let input = StepInput {
        b: WINDOWS,
        s: SEQ,
        attention_mask: vec![1; WINDOWS * SEQ],
        ..StepInput::default()
    };
    let v = one_hot_values();
    let out = attention_on(&input, [&zeros, &zeros, &v], HEADS * SEQ, HEADS, Some(d)).unwrap();
    masks_from_context(&out, d.p)
}

#[test]
fn lean_attention_dropout_keeps_one_minus_p_independently_per_head_window_and_layer() {
    let p = 0.1;
    let layers: Vec<_> = (0..2)
        .map(|l| lean_attention_masks(philox(42, 0, 1 + 3 * l, p)))
        .collect();
    for (l, masks) in layers.iter().enumerate() {
        let all = flat(masks);
        kept_fraction_ok(&all, 1.0 - f64::from(p)).unwrap_or_else(|e| panic!("layer {l}: {e}"));
        serially_independent(&all, &format!("layer {l}, lag 1")).unwrap();
        for (w, heads) in masks.iter().enumerate() {
            for (h, head) in heads.iter().enumerate().skip(1) {
                independent(
                    &heads[0],
                    head,
                    &format!("layer {l} window {w}: heads 0 and {h}"),
                )
                .unwrap();
            }
        }
        for w in 1..WINDOWS {
            independent(
                &masks[0][0],
                &masks[w][0],
                &format!("layer {l}: windows 0 and {w}"),
            )
            .unwrap();
        }
    }
    independent(&flat(&layers[0]), &flat(&layers[1]), "layers 0 and 1").unwrap();
    // The op draws the same mask from the same counters (its backward
    // pass redraws it so); the next micro-batch draws another.
    let d = philox(42, 0, 1, p);
    assert_eq!(lean_attention_masks(d), layers[0]);
    independent(
        &flat(&lean_attention_masks(philox(42, 1, 1, p))),
        &flat(&layers[0]),
        "rounds 0 and 1",
    )
    .unwrap();
}
