//! Whether a difference between runs is real. Two runs scored on the same
//! questions are paired: McNemar's test on the questions whose exact match
//! flipped, and a paired bootstrap interval on ΔF1 over per-question scores.
//! A seed group gets a Student-t interval on its mean.

use super::distributions::{chi_squared_1_upper_tail, fair_binomial_two_sided, student_t_quantile};
use crate::rng::SeededRng;
use serde::{Deserialize, Serialize};

/// The level every test and interval here uses.
pub const ALPHA: f64 = 0.05;
/// Below this many flips McNemar's χ² is a poor approximation: use the exact binomial.
pub const EXACT_BELOW_FLIPS: usize = 25;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum McNemarMethod {
    /// Two-sided binomial on min(b, c) of b + c fair flips.
    ExactBinomial,
    /// (|b − c| − 1)² / (b + c) against χ² with one degree of freedom.
    ChiSquaredCorrected,
}

/// McNemar's test on exact-match flips between runs A and B.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// b: questions A gets right and B wrong.
    pub right_to_wrong: usize,
    /// c: questions A gets wrong and B right.
    pub wrong_to_right: usize,
    pub method: McNemarMethod,
    /// min(b, c) for the exact test, the corrected χ² otherwise (as statsmodels).
    pub statistic: f64,
    pub p_value: f64,
}

pub fn mcnemar(right_to_wrong: usize, wrong_to_right: usize) -> McNemar {
    let (b, c) = (right_to_wrong, wrong_to_right);
    let flips = b + c;
    let (method, statistic, p_value) = if flips < EXACT_BELOW_FLIPS {
        let k = b.min(c);
        (
            McNemarMethod::ExactBinomial,
            k as f64,
            fair_binomial_two_sided(k as u64, flips as u64),
        )
    } else {
        let stat = ((b as f64 - c as f64).abs() - 1.0).powi(2) / flips as f64;
        (
            McNemarMethod::ChiSquaredCorrected,
            stat,
            chi_squared_1_upper_tail(stat),
        )
    };
    McNemar {
        right_to_wrong: b,
        wrong_to_right: c,
        method,
        statistic,
        p_value,
    }
}

/// How a bootstrap is drawn: the defaults are the and the CLI's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BootstrapOptions {
    pub resamples: usize,
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        Self {
            resamples: 10_000,
            seed: 42,
        }
    }
}

/// A 95% paired percentile-bootstrap interval on F1(B) − F1(A), in F1 points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeltaInterval {
    /// F1(B) − F1(A) on the questions both scored.
    pub delta: f64,
    pub low: f64,
    pub high: f64,
    pub confidence: f64,
    pub resamples: usize,
    pub seed: u64,
}

impl DeltaInterval {
    pub fn contains_zero(&self) -> bool {
        self.low <= 0.0 && 0.0 <= self.high
    }
}

/// Resamples questions with replacement and takes the mean per-question
/// difference each time; the interval is the 2.5th and 97.5th percentiles,
/// interpolated linearly as numpy's default. `f1_a[i]` and `f1_b[i]` are
/// the same question's scores in [0, 1]. Sums run in a fixed order, so the
/// interval is the same on every CPU.
pub fn paired_bootstrap(f1_a: &[f64], f1_b: &[f64], options: BootstrapOptions) -> DeltaInterval {
    assert_eq!(f1_a.len(), f1_b.len(), "paired scores");
    let n = f1_a.len();
    let diffs: Vec<f64> = f1_a
        .iter()
        .zip(f1_b)
        .map(|(a, b)| 100.0 * (b - a))
        .collect();
    let delta = if n == 0 {
        0.0
    } else {
        diffs.iter().sum::<f64>() / n as f64
    };
    let [low, high] = bootstrap_mean_interval(&diffs, options);
    DeltaInterval {
        delta,
        low,
        high,
        confidence: 1.0 - ALPHA,
        resamples: options.resamples,
        seed: options.seed,
    }
}

/// The 95% percentile-bootstrap interval of the mean of `values`: resampled
/// with replacement `options.resamples` times from `options.seed`, the 2.5th
/// and 97.5th percentiles of the means, interpolated as numpy's default. Sums
/// run in a fixed order, so the interval is the same on every CPU.
pub fn bootstrap_mean_interval(values: &[f64], options: BootstrapOptions) -> [f64; 2] {
    let n = values.len();
    let mean = |sum: f64| if n == 0 { 0.0 } else { sum / n as f64 };
    let mut rng = SeededRng::new(options.seed);
    let mut means: Vec<f64> = (0..options.resamples)
        .map(|_| {
            let sum: f64 = (0..n)
                .map(|_| {
                    // Lemire's multiply-shift: an index in [0, n) from 64 random bits.
                    let i = ((rng.next_u64() as u128 * n as u128) >> 64) as usize;
                    values[i]
                })
                .sum();
            mean(sum)
        })
        .collect();
    means.sort_by(f64::total_cmp);
    [
        percentile(&means, ALPHA / 2.0),
        percentile(&means, 1.0 - ALPHA / 2.0),
    ]
}

/// numpy's linear percentile of sorted values, q in [0, 1].
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// Both paired tests and what they say together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairedTests {
    pub questions: usize,
    pub mcnemar: McNemar,
    pub delta_f1: DeltaInterval,
    /// False when McNemar's p ≥ 0.05 and the ΔF1 interval contains 0 ("n.s.").
    pub significant: bool,
    pub verdict: String,
}

pub fn paired_tests(
    exact_a: &[f64],
    exact_b: &[f64],
    f1_a: &[f64],
    f1_b: &[f64],
    options: BootstrapOptions,
) -> PairedTests {
    let (mut b, mut c) = (0, 0);
    for (a, bb) in exact_a.iter().zip(exact_b) {
        match (*a > 0.5, *bb > 0.5) {
            (true, false) => b += 1,
            (false, true) => c += 1,
            _ => {}
        }
    }
    let mcnemar = mcnemar(b, c);
    let delta_f1 = paired_bootstrap(f1_a, f1_b, options);
    let em_differs = mcnemar.p_value < ALPHA;
    let f1_differs = !delta_f1.contains_zero();
    let em = format!(
        "McNemar p = {} on {b} + {c} EM flips",
        show_p(mcnemar.p_value)
    );
    let f1 = format!(
        "ΔF1 {:+.2}, 95% CI [{:+.2}, {:+.2}]",
        delta_f1.delta, delta_f1.low, delta_f1.high
    );
    let verdict = match (em_differs, f1_differs) {
        (true, true) => format!("significant at 0.05: EM differs ({em}) and F1 differs ({f1})"),
        (false, false) => format!(
            "not significant at 0.05: EM does not differ ({em}) and the F1 interval contains 0 ({f1})"
        ),
        (true, false) => format!(
            "mixed at 0.05: EM differs ({em}) but the F1 interval contains 0 ({f1})"
        ),
        (false, true) => format!(
            "mixed at 0.05: F1 differs ({f1}) but EM does not ({em})"
        ),
    };
    PairedTests {
        questions: f1_a.len(),
        mcnemar,
        delta_f1,
        significant: em_differs || f1_differs,
        verdict,
    }
}

/// Welch's two-sided t-test on the means of two independent samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welch {
    pub t: f64,
    pub df: f64,
    pub p_value: f64,
}

/// Welch's test of `a` against `b`; None unless both have two values or more.
/// Two samples without spread are equal (p = 1) when their means are, and
/// apart (p = 0) when not.
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let moments = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var / n)
    };
    let ((ma, sa), (mb, sb)) = (moments(a), moments(b));
    let se2 = sa + sb;
    if se2 == 0.0 {
        let p_value = if ma == mb { 1.0 } else { 0.0 };
        return Some(Welch {
            t: 0.0,
            df: f64::NAN,
            p_value,
        });
    }
    let t = (ma - mb) / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (a.len() as f64 - 1.0) + sb * sb / (b.len() as f64 - 1.0));
    let p_value = (2.0 * super::distributions::student_t_upper_tail(t.abs(), df)).min(1.0);
    Some(Welch { t, df, p_value })
}

/// p-values as people read them: 0.031, 0.0004, 2.1e-12.
pub fn show_p(p: f64) -> String {
    // Below f64's normal range a p-value has underflowed (to 0 or near it).
    if p < f64::MIN_POSITIVE {
        return "< 1e-307".into();
    }
    if p >= 0.001 {
        format!("{p:.3}")
    } else if p >= 1e-4 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
}

/// A two-sided 95% Student-t interval on the mean of n values with sample
/// sd `std`: mean ± t(0.975, n − 1) · sd / √n. None below two values.
pub fn t_interval(mean: f64, std: f64, n: usize) -> Option<[f64; 2]> {
    if n < 2 || !std.is_finite() {
        return None;
    }
    let half = student_t_quantile(1.0 - ALPHA / 2.0, (n - 1) as f64) * std / (n as f64).sqrt();
    Some([mean - half, mean + half])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_flips_use_the_exact_binomial_and_many_the_corrected_chi_squared() {
        let few = mcnemar(2, 10);
        assert_eq!(few.method, McNemarMethod::ExactBinomial);
        assert_eq!(few.statistic, 2.0);
        let many = mcnemar(20, 40);
        assert_eq!(many.method, McNemarMethod::ChiSquaredCorrected);
        assert_eq!(many.statistic, 19.0f64.powi(2) / 60.0);
    }

    #[test]
    fn identical_runs_are_not_significant() {
        let scores = [1.0, 0.0, 0.5, 1.0];
        let t = paired_tests(
            &scores,
            &scores,
            &scores,
            &scores,
            BootstrapOptions::default(),
        );
        assert_eq!(t.mcnemar.p_value, 1.0);
        assert_eq!((t.delta_f1.low, t.delta_f1.high), (0.0, 0.0));
        assert!(!t.significant, "{}", t.verdict);
    }

    #[test]
    fn welch_matches_scipy() {
        // scipy.stats.ttest_ind(a, b, equal_var=False): the seed study's F1 values.
        let a = [39.18, 42.57, 28.40, 39.57, 42.65];
        let b = [28.42, 31.10, 31.63, 20.62, 38.13];
        let w = welch(&a, &b).unwrap();
        // scipy 1.x: t 2.201065086, df 7.952407954, p 0.059093509.
        assert!((w.t - 2.201_065_086).abs() < 1e-8, "{w:?}");
        assert!((w.df - 7.952_407_954).abs() < 1e-8, "{w:?}");
        assert!((w.p_value - 0.059_093_509).abs() < 1e-6, "{w:?}");
        assert!(welch(&a[..1], &b).is_none());
        assert_eq!(welch(&[1.0, 1.0], &[1.0, 1.0]).unwrap().p_value, 1.0);
    }

    #[test]
    fn percentiles_interpolate_as_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((percentile(&v, 0.025) - 1.1).abs() < 1e-12);
        assert!((percentile(&v, 0.975) - 4.9).abs() < 1e-12);
    }

    #[test]
    fn the_bootstrap_is_reproducible_from_its_seed() {
        let a: Vec<f64> = (0..200).map(|i| (i % 3) as f64 / 2.0).collect();
        let b: Vec<f64> = (0..200).map(|i| (i % 5) as f64 / 4.0).collect();
        let opts = BootstrapOptions {
            resamples: 500,
            seed: 7,
        };
        assert_eq!(
            paired_bootstrap(&a, &b, opts),
            paired_bootstrap(&a, &b, opts)
        );
        let other = paired_bootstrap(&a, &b, BootstrapOptions { seed: 8, ..opts });
        assert_ne!(paired_bootstrap(&a, &b, opts).low, other.low);
    }
}
