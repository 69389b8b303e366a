//! The few distributions the significance tests need, to double precision:
//! Student's t (quantiles, for seed-group intervals), χ² with one degree of
//! freedom and the fair binomial (tails, for McNemar's test). No statistics
//! crate: these are a page of well-known numerics, and the tests hold them to
//! scipy's values within 1e-9 (`tests/it/significance.rs`).

use std::f64::consts::PI;

/// ln Γ(x) for x > 0: Lanczos (g = 7, 9 terms), about 1e-15 relative.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // The reflection formula keeps the series where it is accurate.
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + G + 0.5;
    let series = C[1..]
        .iter()
        .enumerate()
        .fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// The regularized incomplete beta function I_x(a, b).
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The continued fraction converges fast on this side of the mean.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of I_x(a, b), by the modified Lentz method.
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let clamp = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / clamp(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let even = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / clamp(1.0 + even * d);
        c = clamp(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / clamp(1.0 + odd * d);
        c = clamp(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// P(T > t) for Student's t with `df` degrees of freedom, t ≥ 0.
pub fn student_t_upper_tail(t: f64, df: f64) -> f64 {
    0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
}

/// The t with P(T ≤ t) = p, for p in [0.5, 1): bisection on the tail, which
/// is monotone, to the last bit.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    let tail = 1.0 - p;
    let mut hi = 1.0;
    while student_t_upper_tail(hi, df) > tail && hi < 1e12 {
        hi *= 2.0;
    }
    let mut lo = 0.0;
    for _ in 0..2000 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if student_t_upper_tail(mid, df) > tail {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The regularized upper incomplete gamma function Q(a, x).
fn upper_incomplete_gamma(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        // The series for P(a, x); Q is its complement.
        let (mut term, mut sum, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        1.0 - sum * front
    } else {
        // The continued fraction for Q itself keeps tiny tails exact to the last digits.
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let step = d * c;
            h *= step;
            if (step - 1.0).abs() < 1e-16 {
                break;
            }
        }
        front * h
    }
}

/// P(X > x) for χ² with one degree of freedom.
pub fn chi_squared_1_upper_tail(x: f64) -> f64 {
    upper_incomplete_gamma(0.5, x / 2.0)
}

/// Two-sided p of `k` successes in `n` fair coin flips, as statsmodels'
/// exact McNemar: twice the smaller tail, capped at 1. Exact in integers up to
/// n = 62; `mcnemar` uses it below 25.
pub fn fair_binomial_two_sided(k: u64, n: u64) -> f64 {
    assert!(n <= 62, "the exact binomial is for small counts");
    let k = k.min(n - k);
    // C(n, 0) + … + C(n, k), each C(n, i) from the one before.
    let (mut choose, mut tail) = (1u64, 1u64);
    for i in 1..=k {
        choose = choose * (n - i + 1) / i;
        tail += choose;
    }
    (2.0 * tail as f64 / (1u64 << n) as f64).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_hits_known_values() {
        // Γ(5) = 24, Γ(1/2) = √π.
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-13);
        assert!((ln_gamma(0.5) - PI.sqrt().ln()).abs() < 1e-13);
    }

    #[test]
    fn quantiles_invert_the_tail() {
        // t with 1 degree of freedom is Cauchy: the 97.5% point is tan(0.475π).
        let t = student_t_quantile(0.975, 1.0);
        assert!((t - (0.475 * PI).tan()).abs() < 1e-9, "{t}");
        // χ²₁ at 3.841458820694124 is the 5% point.
        assert!((chi_squared_1_upper_tail(3.841_458_820_694_124) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn small_binomials_are_exact() {
        // 2 · (1 + 10 + 45) / 1024.
        assert_eq!(fair_binomial_two_sided(2, 10), 112.0 / 1024.0);
        assert_eq!(fair_binomial_two_sided(8, 10), 112.0 / 1024.0);
        assert_eq!(fair_binomial_two_sided(0, 0), 1.0);
        assert_eq!(fair_binomial_two_sided(5, 10), 1.0);
    }
}
