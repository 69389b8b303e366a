//! Numeric checks through which no NaN passes.
//!
//! `f64::max` ignores a NaN (`0.0_f64.max(NaN)` is 0.0), so a fold of the
//! errors with it reports a tensor full of NaN as "max |Δ| 0"; `err < tol`
//! written as `!(err > tol)`, or a band's `contains` negated, passes a NaN
//! too; and `zip` silently compares the shorter of two series. Every
//! comparison of figures against a tolerance (`bench check`, the parity and
//! graph tests, the memory planner's ratio) goes through these functions
//! instead: a non-finite value, a length mismatch or nothing to compare is an
//! error naming the tensor or figure and the index, never a pass.

use std::fmt;
use std::ops::RangeInclusive;

/// Why figures could not be compared: the message names what and where.
#[derive(Clone, PartialEq, Eq)]
pub struct NumericError(String);

impl fmt::Display for NumericError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Debug prints the message, so that a test's `unwrap()` shows it as it is.
impl fmt::Debug for NumericError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NumericError {}

fn error(message: String) -> NumericError {
    NumericError(message)
}

/// `value` if it is finite, else an error naming `what`.
pub fn finite(what: &str, value: f64) -> Result<f64, NumericError> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(not_finite(what, value))
    }
}

fn not_finite(what: &str, value: f64) -> NumericError {
    error(format!(
        "{what} is {value}: a non-finite value fails every check"
    ))
}

/// The largest of `values`; an error at the first non-finite one (named
/// `what[i]`) or when there is none.
pub fn max_finite(what: &str, values: impl IntoIterator<Item = f64>) -> Result<f64, NumericError> {
    let mut worst: Option<f64> = None;
    for (i, v) in values.into_iter().enumerate() {
        // The name is formatted only for the error: a tensor may be large.
        if !v.is_finite() {
            return Err(not_finite(&format!("{what}[{i}]"), v));
        }
        worst = Some(worst.map_or(v, |w| w.max(v)));
    }
    worst.ok_or_else(|| error(format!("{what}: there is nothing to compare")))
}

/// The largest `|got − want|` over two series of the same length; an error
/// naming `what[i]` at the first non-finite value of either.
pub fn max_abs_diff<T: Copy + Into<f64>>(
    what: &str,
    got: &[T],
    want: &[T],
) -> Result<f64, NumericError> {
    max_finite(what, pairs(what, got, want)?.map(|(g, w)| (g - w).abs()))
}

/// The largest `|got − want| / max(|want|, floor)`; errors as
/// [`max_abs_diff`]'s. A `want` of 0 with a `floor` of 0 gives a non-finite
/// ratio, and so an error rather than a pass.
pub fn max_rel_diff<T: Copy + Into<f64>>(
    what: &str,
    got: &[T],
    want: &[T],
    floor: f64,
) -> Result<f64, NumericError> {
    let rel = pairs(what, got, want)?.map(|(g, w)| (g - w).abs() / w.abs().max(floor));
    max_finite(what, rel)
}

/// The pairs of two equally long series, each value checked finite first so
/// that the error says which side went wrong.
fn pairs<'a, T: Copy + Into<f64>>(
    what: &'a str,
    got: &'a [T],
    want: &'a [T],
) -> Result<impl Iterator<Item = (f64, f64)> + 'a, NumericError> {
    if got.len() != want.len() {
        return Err(error(format!(
            "{what}: {} values against {} expected",
            got.len(),
            want.len()
        )));
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w): (f64, f64) = (g.into(), w.into());
        if !g.is_finite() {
            return Err(not_finite(&format!("{what}[{i}] (got)"), g));
        }
        if !w.is_finite() {
            return Err(not_finite(&format!("{what}[{i}] (expected)"), w));
        }
    }
    Ok(got
        .iter()
        .zip(want)
        .map(|(g, w)| ((*g).into(), (*w).into())))
}

/// `numerator / denominator`, an error naming `what` when it is not finite
/// (a denominator of 0, or a non-finite operand).
pub fn ratio(what: &str, numerator: f64, denominator: f64) -> Result<f64, NumericError> {
    finite(what, numerator / denominator)
}

/// Whether `value` is at most `tolerance`; an error, never `true` or
/// `false`, when either is not finite.
pub fn within(what: &str, value: f64, tolerance: f64) -> Result<bool, NumericError> {
    let value = finite(what, value)?;
    let tolerance = finite(&format!("{what}'s tolerance"), tolerance)?;
    Ok(value <= tolerance)
}

/// Whether `value` lies in `band`; an error when it is not finite, so that
/// neither "in the band" nor "outside it" can be claimed for a NaN.
pub fn in_band(what: &str, value: f64, band: &RangeInclusive<f64>) -> Result<bool, NumericError> {
    Ok(band.contains(&finite(what, value)?))
}
