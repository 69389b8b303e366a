//! Turning long metric series into what a plot draws: EMA smoothing over the
//! whole series, then min/max decimation of just the visible range to about
//! two points per pixel column. The data itself is never thinned.

/// Exponential moving average with TensorBoard's debiasing, so the curve
/// starts at the data rather than at zero. It grows with its series:
/// appending n points costs n, not the whole series again.
#[derive(Clone, Debug)]
pub struct Ema {
    weight: f64,
    acc: f64,
    debias: f64,
    pub out: Vec<f64>,
}

impl Ema {
    pub fn new(weight: f64) -> Self {
        Self {
            weight,
            acc: 0.0,
            debias: 1.0,
            out: Vec::new(),
        }
    }

    pub fn weight(&self) -> f64 {
        self.weight
    }

    pub fn extend(&mut self, values: &[f64]) {
        self.out.reserve(values.len());
        for &v in values {
            if !v.is_finite() {
                self.out.push(v);
                continue;
            }
            self.acc = self.acc * self.weight + (1.0 - self.weight) * v;
            // Stop at zero rather than sink into subnormals, which are ~100× slower.
            self.debias = if self.debias < 1e-30 {
                0.0
            } else {
                self.debias * self.weight
            };
            self.out
                .push(self.acc / (1.0 - self.debias).max(f64::MIN_POSITIVE));
        }
    }
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
        let (a, b) = if min_i <= max_i {
            (min_i, max_i)
        } else {
            (max_i, min_i)
        };
        out.push([xs[a], ys[a]]);
        if b != a {
            out.push([xs[b], ys[b]]);
        }
    }
    out
}

/// Min/max decimation of a whole series that grows: buckets of a power-of-two
/// number of points, kept as points arrive (new points cost their own scan,
/// and doubling the bucket width merges pairs), so following a 100,000-step
/// run costs about the same each frame as following a short one.
#[derive(Clone, Debug, Default)]
pub struct Envelope {
    width: usize,
    /// Per bucket, the indices of its minimum and maximum.
    buckets: Vec<(usize, usize)>,
    covered: usize,
}

impl Envelope {
    /// Brings the envelope up to date with `ys`, which extends what it saw.
    pub fn update(&mut self, ys: &[f64], target: usize) {
        let target = target.max(1);
        if ys.len() < self.covered {
            *self = Self::default();
        }
        let mut width = self.width.max(1);
        while ys.len().div_ceil(width) > target {
            width *= 2;
        }
        while !self.buckets.is_empty() && self.width < width {
            self.buckets = self
                .buckets
                .chunks(2)
                .map(|pair| match pair {
                    // The first index wins ties, as in a scan.
                    [a, b] => (
                        if ys[b.0] < ys[a.0] { b.0 } else { a.0 },
                        if ys[b.1] > ys[a.1] { b.1 } else { a.1 },
                    ),
                    [a] => *a,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            self.width *= 2;
        }
        self.width = width;
        // The bucket holding the first unseen point may be partial: redo it.
        let first = self.covered / width;
        self.buckets.truncate(first);
        for b in first.. {
            let start = b * width;
            if start >= ys.len() {
                break;
            }
            let end = (start + width).min(ys.len());
            let (mut lo, mut hi) = (start, start);
            for i in start..end {
                if ys[i] < ys[lo] {
                    lo = i;
                }
                if ys[i] > ys[hi] {
                    hi = i;
                }
            }
            self.buckets.push((lo, hi));
        }
        self.covered = ys.len();
    }

    /// The points to draw: each bucket's extremes, in x order.
    pub fn points(&self, xs: &[f64], ys: &[f64]) -> Vec<[f64; 2]> {
        let mut out = Vec::with_capacity(2 * self.buckets.len());
        for &(lo, hi) in &self.buckets {
            let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
            out.push([xs[a], ys[a]]);
            if b != a {
                out.push([xs[b], ys[b]]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ema(values: &[f64], weight: f64) -> Vec<f64> {
        let mut e = Ema::new(weight);
        e.extend(values);
        e.out
    }

    #[test]
    fn ema_starts_at_the_data_and_follows_it() {
        let s = ema(&[2.0, 2.0, 2.0], 0.9);
        assert!(s.iter().all(|v| (v - 2.0).abs() < 1e-12), "{s:?}");
        let s = ema(&[0.0, 10.0], 0.5);
        // acc = 0.5·0 + 0.5·10 = 5, debiased by 1 - 0.5² = 0.75.
        assert!((s[1] - 5.0 / 0.75).abs() < 1e-12, "{s:?}");
        assert_eq!(ema(&[1.0, 3.0], 0.0), vec![1.0, 3.0]);
        // Extending in pieces gives the same curve as all at once.
        let values: Vec<f64> = (0..50_000).map(|i| (i as f64 * 0.37).sin()).collect();
        let mut growing = Ema::new(0.99);
        growing.extend(&values[..123]);
        growing.extend(&values[123..]);
        assert_eq!(growing.out, ema(&values, 0.99));
    }

    #[test]
    fn a_growing_envelope_matches_one_built_at_once() {
        let xs: Vec<f64> = (0..100_000).map(f64::from).collect();
        let ys: Vec<f64> = xs
            .iter()
            .map(|x| (x * 0.013).sin() * (x / 5e4) + (x * 7.1).cos() * 0.1)
            .collect();
        let mut growing = Envelope::default();
        let mut n = 0;
        for chunk in [1, 5, 900, 1, 20_000, 3, 50_000, 29_090] {
            n += chunk;
            growing.update(&ys[..n], 800);
        }
        assert_eq!(n, ys.len());
        let mut whole = Envelope::default();
        whole.update(&ys, 800);
        assert_eq!(growing.points(&xs, &ys), whole.points(&xs, &ys));
        let drawn = whole.points(&xs, &ys);
        assert!(drawn.len() <= 1600 && drawn.len() > 400, "{}", drawn.len());
        let max = ys.iter().cloned().fold(f64::MIN, f64::max);
        let min = ys.iter().cloned().fold(f64::MAX, f64::min);
        assert!(drawn.iter().any(|p| p[1] == max) && drawn.iter().any(|p| p[1] == min));
        assert!(drawn.windows(2).all(|w| w[0][0] < w[1][0]));
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
