//! Branch-free `exp`, `erf` and sums that vectorise (libm's are scalar calls,
//! and a plain float sum never vectorises, since reordering changes it).
//! The polynomials use `mul_add`: one FMA instruction in the kernels'
//! AVX2/AVX-512 builds (a slow libm call only on CPUs without FMA).

/// Lanes of the blocked sums: one AVX-512 register of f32.
const LANES: usize = 16;

/// e^x to about 2 ulp (Cephes' `expf`); 0 below -87, where f32 underflows.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    let clamped = x.clamp(-87.0, 88.0);
    let n = (clamped * LOG2E + 0.5).floor();
    let r = n.mul_add(-0.693_359_4, clamped);
    let r = n.mul_add(2.121_944_4e-4, r);
    let mut p = 1.987_569_2e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let y = (p * r).mul_add(r, r) + 1.0;
    // 2ⁿ built in the exponent bits. `n as i32` would saturate lane by lane
    // in scalar code; adding 1.5·2²³ puts n (|n| ≤ 127) in the low mantissa
    // bits instead, which vectorises.
    const MAGIC: f32 = 12_582_912.0;
    let n_int = (n + MAGIC).to_bits().wrapping_sub(MAGIC.to_bits());
    let scale = f32::from_bits(n_int.wrapping_add(127) << 23);
    if x < -87.0 {
        0.0
    } else {
        y * scale
    }
}

/// erf(x) to a few ulp: the rational approximation Eigen and XLA use for f32.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10f32;
    p = p.mul_add(x2, 2.770_681_4e-8);
    p = p.mul_add(x2, -2.101_024e-6);
    p = p.mul_add(x2, -5.692_506_4e-5);
    p = p.mul_add(x2, -7.349_906_3e-4);
    p = p.mul_add(x2, -2.954_600_2e-3);
    p = p.mul_add(x2, -1.609_603_3e-2);
    let mut q = -1.456_607_2e-5f32;
    q = q.mul_add(x2, -2.133_740_6e-4);
    q = q.mul_add(x2, -1.682_827e-3);
    q = q.mul_add(x2, -7.373_329_4e-3);
    q = q.mul_add(x2, -1.426_474e-2);
    x * p / q
}

/// Σ xᵢ, in 16 interleaved partial sums (the order is fixed, so the result is too).
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for j in 0..LANES {
            acc[j] += c[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Σ xᵢ·yᵢ, blocked as `sum`.
#[inline(always)]
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let xs = x.chunks_exact(LANES);
    let ys = y.chunks_exact(LANES);
    let tail: f32 = xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in xs.zip(ys) {
        for j in 0..LANES {
            acc[j] += a[j] * b[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_match_libm() {
        let mut worst_exp = 0f64;
        let mut worst_erf = 0f64;
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.005;
            let e = f64::from(x).exp();
            // Below −87 the result is 0 by design (f32 would go subnormal); above 88, f32 overflows.
            if x > -87.0 && x < 88.0 {
                worst_exp = worst_exp.max(((f64::from(exp(x)) - e) / e).abs());
            }
            let r = libm_erf(f64::from(x));
            worst_erf = worst_erf.max((f64::from(erf(x)) - r).abs());
        }
        assert!(worst_exp < 3e-7, "exp relative error {worst_exp}");
        assert!(worst_erf < 5e-7, "erf absolute error {worst_erf}");
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(f32::MIN), 0.0);
    }

    /// erf from its series (|x| < 3) or continued fraction, in f64.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 3.0 {
            // erfc(x) ≈ e^{-x²}/(x√π) · (1 − 1/(2x²) + 3/(4x⁴)); ample at |x| > 3.
            let a = x.abs();
            let tail = (-a * a).exp() / (a * std::f64::consts::PI.sqrt())
                * (1.0 - 1.0 / (2.0 * a * a) + 3.0 / (4.0 * a.powi(4)));
            return x.signum() * (1.0 - tail);
        }
        let mut term = x;
        let mut total = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            total += term / (2 * n + 1) as f64;
        }
        total * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn blocked_reductions_equal_plain_ones() {
        let x: Vec<f32> = (0..100).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let y: Vec<f32> = (0..100).map(|i| (i % 7) as f32).collect();
        assert_eq!(sum(&x), x.iter().sum::<f32>());
        assert_eq!(
            dot(&x, &y),
            x.iter().zip(&y).map(|(a, b)| a * b).sum::<f32>()
        );
    }
}
