//! From a sweep's axes to its points and their configs, refusing a bad axis
//! (an unknown field, an empty list, a log-uniform bound ≤ 0, a value that
//! does not fit the field) before anything is queued.

use super::spec::{Draw, Sweep, BASE_AXIS};
use crate::config::RunConfig;
use crate::rng::SeededRng;
use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::collections::BTreeMap;

/// One point of a sweep: axis → value.
pub type Point = BTreeMap<String, Value>;

/// A point's values as RON text, as run records keep them.
pub fn point_text(point: &Point) -> BTreeMap<String, String> {
    point
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                ron::to_string(v).unwrap_or_else(|_| v.to_string()),
            )
        })
        .collect()
}

/// Refuses a sweep whose axes cannot all be applied to every base.
pub fn validate(sweep: &Sweep, bases: &BTreeMap<String, RunConfig>) -> Result<()> {
    if sweep.grid.contains_key(BASE_AXIS) || sweep.random.contains_key(BASE_AXIS) {
        bail!("axis {BASE_AXIS}: give several bases as `base: Each({{label: file, …}})`");
    }
    for (label, base) in bases {
        validate_on(sweep, base).map_err(|e| match label.as_str() {
            "" => e,
            _ => anyhow!("base {label:?}: {e:#}"),
        })?;
    }
    Ok(())
}

fn validate_on(sweep: &Sweep, base: &RunConfig) -> Result<()> {
    for (axis, values) in &sweep.grid {
        if values.is_empty() {
            bail!("axis {axis}: the grid list is empty");
        }
        if sweep.random.contains_key(axis) {
            bail!("axis {axis} is both a grid and a random axis");
        }
        for v in values {
            apply_one(base, axis, &to_json(v)?)?;
        }
    }
    for (axis, draw) in &sweep.random {
        match draw {
            Draw::Uniform(lo, hi) if !(lo.is_finite() && hi.is_finite() && lo < hi) => {
                bail!("axis {axis}: Uniform({lo}, {hi}) needs finite bounds, low < high")
            }
            Draw::LogUniform(lo, hi) if !(*lo > 0.0 && lo < hi && hi.is_finite()) => {
                bail!("axis {axis}: LogUniform({lo}, {hi}) needs bounds above 0, low < high")
            }
            Draw::Choice(values) if values.is_empty() => {
                bail!("axis {axis}: the Choice list is empty")
            }
            Draw::Choice(values) => {
                for v in values {
                    apply_one(base, axis, &to_json(v)?)?;
                }
            }
            Draw::Uniform(lo, _) | Draw::LogUniform(lo, _) => {
                apply_one(base, axis, &Value::from(*lo))?;
            }
        }
    }
    let seed_axis = sweep.grid.contains_key("seed") || sweep.random.contains_key("seed");
    if seed_axis && !sweep.seeds.is_empty() {
        bail!("axis seed: give seeds either as `seeds` or as an axis, not both");
    }
    if sweep.trials == 0 && !sweep.random.is_empty() {
        bail!("trials: random axes need at least one trial");
    }
    Ok(())
}

fn to_json(v: &ron::Value) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| anyhow!("{v:?} is not a field value: {e}"))
}

/// The bases (several, as the `base` axis), times the grid's product, times
/// random draws `[from, to)` of the sweep's seeded stream (one empty draw
/// without random axes), times the seeds.
pub fn points(sweep: &Sweep, from: usize, to: usize) -> Result<Vec<Point>> {
    let labels = sweep.base_labels();
    let mut grid: Vec<Point> = if labels.is_empty() {
        vec![Point::new()]
    } else {
        labels
            .into_iter()
            .map(|label| Point::from([(BASE_AXIS.to_string(), Value::from(label))]))
            .collect()
    };
    for (axis, values) in &sweep.grid {
        let values: Vec<Value> = values.iter().map(to_json).collect::<Result<_>>()?;
        grid = grid
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.insert(axis.clone(), v.clone());
                    q
                })
            })
            .collect();
    }
    let draws = if sweep.random.is_empty() {
        // No random axes: the grid once, from the first expansion only.
        if from == 0 {
            vec![Point::new()]
        } else {
            Vec::new()
        }
    } else {
        draws(sweep, to)?.split_off(from.min(to))
    };
    let mut out = Vec::new();
    for g in &grid {
        for d in &draws {
            let mut p = g.clone();
            p.extend(d.clone());
            if sweep.seeds.is_empty() {
                out.push(p);
            } else {
                for seed in &sweep.seeds {
                    let mut q = p.clone();
                    q.insert("seed".into(), Value::from(*seed));
                    out.push(q);
                }
            }
        }
    }
    Ok(out)
}

/// The first `n` draws of the sweep's stream: the same for the same seed,
/// so `sweep add` continues where the last expansion stopped.
fn draws(sweep: &Sweep, n: usize) -> Result<Vec<Point>> {
    let mut rng = SeededRng::new(sweep.seed);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut p = Point::new();
        for (axis, draw) in &sweep.random {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let v = match draw {
                Draw::Uniform(lo, hi) => Value::from(lo + (hi - lo) * u),
                Draw::LogUniform(lo, hi) => Value::from((lo.ln() + (hi.ln() - lo.ln()) * u).exp()),
                Draw::Choice(values) => {
                    to_json(&values[((u * values.len() as f64) as usize).min(values.len() - 1)])?
                }
            };
            p.insert(axis.clone(), v);
        }
        out.push(p);
    }
    Ok(out)
}

/// The point's base (the one of a single base, or the one its `base` axis
/// names) with every other axis of `point` set, named after the sweep and point.
pub fn apply(
    bases: &BTreeMap<String, RunConfig>,
    sweep_name: &str,
    point: &Point,
) -> Result<RunConfig> {
    let label = match point.get(BASE_AXIS) {
        Some(Value::String(label)) => label.as_str(),
        Some(other) => bail!("axis {BASE_AXIS}: {other} is not a base's label"),
        None => "",
    };
    let Some(base) = bases.get(label) else {
        bail!(
            "axis {BASE_AXIS}: no base labelled {label:?}; the sweep has {}",
            bases
                .keys()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let mut config = base.clone();
    for (axis, v) in point.iter().filter(|(axis, _)| *axis != BASE_AXIS) {
        config = apply_one(&config, axis, v)?;
    }
    let values: Vec<String> = point_text(point)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    config.name = format!("{sweep_name} [{}]", values.join(", "));
    Ok(config)
}

/// `config` with the (dotted) field `axis` set to `value`.
fn apply_one(config: &RunConfig, axis: &str, value: &Value) -> Result<RunConfig> {
    let mut json = serde_json::to_value(config)?;
    let mut slot = &mut json;
    for part in axis.split('.') {
        slot = slot
            .as_object_mut()
            .and_then(|o| o.get_mut(part))
            .ok_or_else(|| anyhow!("axis {axis}: RunConfig has no field {axis}"))?;
    }
    *slot = value.clone();
    serde_json::from_value(json)
        .map_err(|e| anyhow!("axis {axis}: the value {value} does not fit the field: {e}"))
}
