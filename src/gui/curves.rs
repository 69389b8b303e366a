//! Turning long metric series into what a plot draws: EMA smoothing over the
//! whole series, then min/max decimation of just the visible range to about
//! two points per pixel column. The data itself is never thinned.

/// Exponential moving average with TensorBoard's debiasing, so the curve
/// starts at the data rather than at zero.
pub fn ema(values: &[f64], weight: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    let mut acc = 0.0;
    let mut debias = 1.0;
    for &v in values {
        if !v.is_finite() {
            out.push(v);
            continue;
        }
        acc = acc * weight + (1.0 - weight) * v;
        debias *= weight;
        out.push(acc / (1.0 - debias).max(f64::MIN_POSITIVE));
    }
    out
}

/// The points of `(xs, ys)` with x in `range` (plus one neighbour each side,
/// so lines reach the edges), decimated to at most `2 × buckets` points: each
/// bucket keeps its minimum and maximum, in x order, so spikes survive.
pub fn decimate(xs: &[f64], ys: &[f64], range: (f64, f64), buckets: usize) -> Vec<[f64; 2]> {
    let lo = xs.partition_point(|&x| x < range.0).saturating_sub(1);
    let hi = (xs.partition_point(|&x| x <= range.1) + 1).min(xs.len());
    if lo >= hi {
        return Vec::new();
    }
    let n = hi - lo;
    let buckets = buckets.max(1);
    if n <= 2 * buckets {
        return (lo..hi).map(|i| [xs[i], ys[i]]).collect();
    }
    let mut out = Vec::with_capacity(2 * buckets + 2);
    for b in 0..buckets {
        let start = lo + b * n / buckets;
        let end = lo + (b + 1) * n / buckets;
        if start >= end {
            continue;
        }
        let (mut min_i, mut max_i) = (start, start);
        for i in start..end {
            if ys[i] < ys[min_i] {
                min_i = i;
            }
            if ys[i] > ys[max_i] {
                max_i = i;
            }
        }
        let (a, b) = if min_i <= max_i { (min_i, max_i) } else { (max_i, min_i) };
        out.push([xs[a], ys[a]]);
        if b != a {
            out.push([xs[b], ys[b]]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_starts_at_the_data_and_follows_it() {
        let s = ema(&[2.0, 2.0, 2.0], 0.9);
        assert!(s.iter().all(|v| (v - 2.0).abs() < 1e-12), "{s:?}");
        let s = ema(&[0.0, 10.0], 0.5);
        // acc = 0.5·0 + 0.5·10 = 5, debiased by 1 - 0.5² = 0.75.
        assert!((s[1] - 5.0 / 0.75).abs() < 1e-12, "{s:?}");
        assert_eq!(ema(&[1.0, 3.0], 0.0), vec![1.0, 3.0]);
    }

    #[test]
    fn decimation_keeps_extremes_and_bounds_the_count() {
        let xs: Vec<f64> = (0..100_000).map(f64::from).collect();
        let mut ys: Vec<f64> = xs.iter().map(|x| (x / 1000.0).sin()).collect();
        ys[54_321] = 50.0;
        ys[7] = -50.0;
        let drawn = decimate(&xs, &ys, (0.0, 99_999.0), 800);
        assert!(drawn.len() <= 1600, "{}", drawn.len());
        assert!(drawn.contains(&[54_321.0, 50.0]));
        assert!(drawn.contains(&[7.0, -50.0]));
        assert!(drawn.windows(2).all(|w| w[0][0] < w[1][0]), "x order kept");
        // A zoomed-in range draws every point, with one neighbour each side.
        let zoom = decimate(&xs, &ys, (100.0, 199.0), 800);
        assert_eq!(zoom.first().unwrap()[0], 99.0);
        assert_eq!(zoom.last().unwrap()[0], 200.0);
        assert_eq!(zoom.len(), 102);
    }
}
