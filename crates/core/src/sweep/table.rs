//! A sweep at a glance: its points as rows (seeds folded into mean ± sd and
//! a 95% interval), the best point, the points no different from it by the
//! comparison tests, and each axis's effect on F1.

use crate::report::diff_runs;
use crate::report::significance::{show_p, welch, ALPHA};
use crate::report::Stat;
use crate::store::{RunEntry, RunStatus, Shown};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One run of a point.
#[derive(Clone, Debug, PartialEq)]
pub struct PointRun {
    pub id: String,
    pub dir: PathBuf,
    pub seed: Option<u64>,
    pub shown: Shown,
    /// Steps done and planned, while it trains.
    pub progress: Option<(u64, u64)>,
    pub exact_match: Option<f64>,
    pub f1: Option<f64>,
    pub train_runtime: Option<f64>,
}

impl PointRun {
    pub fn is_finished(&self) -> bool {
        self.shown == Shown::Is(RunStatus::Finished) && self.f1.is_some()
    }
}

/// How a point compares with the best one.
#[derive(Clone, Debug, PartialEq)]
pub enum VsBest {
    Best,
    /// The tests find no difference at 0.05: the point may be as good.
    NotSignificant(String),
    Significant(String),
    /// No test applies yet (say why): unfinished runs, or one seed against several.
    Untested(String),
}

/// A point of the sweep: its axis values and its runs (one per seed).
#[derive(Clone, Debug, PartialEq)]
pub struct PointRow {
    /// Axis → value as RON text, the seed left out.
    pub point: BTreeMap<String, String>,
    pub runs: Vec<PointRun>,
    pub exact_match: Option<Stat>,
    pub f1: Option<Stat>,
    pub train_runtime: Option<Stat>,
    pub vs_best: VsBest,
}

impl PointRow {
    /// `finished 2/3`, `running 1`, …: the runs' statuses, counted.
    pub fn status(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &self.runs {
            *counts.entry(r.shown.as_str()).or_default() += 1;
        }
        counts
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn is_best(&self) -> bool {
        self.vs_best == VsBest::Best
    }

    fn finished_f1(&self) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|r| r.is_finished())
            .filter_map(|r| r.f1)
            .collect()
    }
}

/// The seed axis: it folds runs into a point instead of telling points apart.
pub const SEED_AXIS: &str = crate::store::SweepTag::SEED_AXIS;

/// The sweep's runs as points, in the order of their axis values. Each
/// point's scores are over its finished runs only.
pub fn point_rows(runs: &[RunEntry]) -> Vec<PointRow> {
    let mut by_point: BTreeMap<BTreeMap<String, String>, Vec<PointRun>> = BTreeMap::new();
    for e in runs {
        let Some(record) = &e.record else { continue };
        let Some(tag) = &record.sweep else { continue };
        let mut point = tag.point.clone();
        let seed = point
            .remove(SEED_AXIS)
            .and_then(|s| s.parse().ok())
            .or(record.config.as_ref().map(|c| c.seed));
        let o = &record.outcome;
        let progress = matches!(e.shown, Shown::Is(RunStatus::Running))
            .then(|| {
                let done = e.last_step.as_ref().map(|s| s.step).or(o.global_step)?;
                Some((done, o.total_steps?))
            })
            .flatten();
        by_point.entry(point).or_default().push(PointRun {
            id: e.id.clone(),
            dir: e.dir.clone(),
            seed,
            shown: e.shown,
            progress,
            exact_match: o.exact_match,
            f1: o.f1,
            train_runtime: o.train_runtime,
        });
    }
    let mut rows: Vec<PointRow> = by_point
        .into_iter()
        .map(|(point, mut runs)| {
            runs.sort_by_key(|r| (r.seed, r.id.clone()));
            let done: Vec<&PointRun> = runs.iter().filter(|r| r.is_finished()).collect();
            let stat = |f: fn(&PointRun) -> Option<f64>| {
                Stat::of(&done.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
            };
            PointRow {
                exact_match: stat(|r| r.exact_match),
                f1: stat(|r| r.f1),
                train_runtime: stat(|r| r.train_runtime),
                point,
                runs,
                vs_best: VsBest::Untested("no finished run yet".into()),
            }
        })
        .collect();
    mark_best(&mut rows);
    rows
}

/// Marks the point with the highest mean F1 as the best.
fn mark_best(rows: &mut [PointRow]) {
    let best = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.f1.as_ref()?.mean)))
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(i, _)| i);
    for (i, row) in rows.iter_mut().enumerate() {
        if Some(i) == best {
            row.vs_best = VsBest::Best;
        } else if row.f1.is_some() {
            row.vs_best = VsBest::Untested("not tested yet".into());
        }
    }
}

/// Tests every scored point against the best, with the comparison tests:
/// Welch's t-test on F1 over seeds when both points have two finished seeds
/// or more; McNemar's test and the paired bootstrap on the questions when
/// both have one run. Reads the runs' per-question scores for the latter.
pub fn test_against_best(rows: &mut [PointRow]) {
    let Some(best) = rows.iter().find(|r| r.is_best()).cloned() else {
        return;
    };
    let best_f1 = best.finished_f1();
    for row in rows.iter_mut().filter(|r| !r.is_best() && r.f1.is_some()) {
        let f1 = row.finished_f1();
        row.vs_best = match (best_f1.len(), f1.len()) {
            (a, b) if a >= 2 && b >= 2 => {
                let w = welch(&best_f1, &f1).expect("two values a side");
                let text = format!(
                    "Welch's t-test on F1 over seeds: p = {} ({} vs {} seeds)",
                    show_p(w.p_value),
                    a,
                    b
                );
                if w.p_value < ALPHA {
                    VsBest::Significant(text)
                } else {
                    VsBest::NotSignificant(text)
                }
            }
            (1, 1) => {
                let dir = |r: &PointRow| {
                    r.runs
                        .iter()
                        .find(|r| r.is_finished())
                        .map(|r| r.dir.clone())
                };
                match (dir(&best), dir(row)) {
                    (Some(a), Some(b)) => match diff_runs(&a, &b, Default::default()) {
                        Ok(d) => match d.tests {
                            Some(t) if t.significant => VsBest::Significant(t.verdict),
                            Some(t) => VsBest::NotSignificant(t.verdict),
                            None => VsBest::Untested(d.untested.unwrap_or_default()),
                        },
                        Err(e) => VsBest::Untested(format!("{e:#}")),
                    },
                    _ => VsBest::Untested("a run is missing".into()),
                }
            }
            (a, b) => VsBest::Untested(format!(
                "{b} finished seed(s) against the best's {a}: Welch's test needs two a side"
            )),
        };
    }
}

/// The axes the points vary, and the ones with a single value (fixed).
pub fn axes(rows: &[PointRow]) -> (Vec<String>, Vec<(String, String)>) {
    let mut values: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for row in rows {
        for (k, v) in &row.point {
            let seen = values.entry(k).or_default();
            if !seen.contains(&v.as_str()) {
                seen.push(v);
            }
        }
    }
    let mut varying = Vec::new();
    let mut fixed = Vec::new();
    for (axis, vals) in values {
        if vals.len() > 1 {
            varying.push(axis.to_string());
        } else {
            fixed.push((axis.to_string(), vals[0].to_string()));
        }
    }
    (varying, fixed)
}

/// A number, when an axis value is one.
pub fn numeric(value: &str) -> Option<f64> {
    value.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// F1 by value on one axis: mean ± sd over the finished runs that have it.
#[derive(Clone, Debug, PartialEq)]
pub struct AxisEffect {
    pub axis: String,
    /// (value, F1 over its runs), numbers in order, else text order.
    pub values: Vec<(String, Stat)>,
}

pub fn axis_effects(rows: &[PointRow], axes: &[String]) -> Vec<AxisEffect> {
    axes.iter()
        .map(|axis| {
            let mut by_value: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for row in rows {
                if let Some(v) = row.point.get(axis) {
                    by_value
                        .entry(v.clone())
                        .or_default()
                        .extend(row.finished_f1());
                }
            }
            let mut values: Vec<(String, Stat)> = by_value
                .into_iter()
                .filter_map(|(v, f1)| Some((v, Stat::of(&f1)?)))
                .collect();
            values.sort_by(|a, b| match (numeric(&a.0), numeric(&b.0)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                _ => a.0.cmp(&b.0),
            });
            AxisEffect {
                axis: axis.clone(),
                values,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Outcome, RunRecord, SweepTag};

    fn entry(id: &str, lr: &str, seed: u64, f1: Option<f64>) -> RunEntry {
        let point = [("learning_rate", lr), ("seed", &seed.to_string())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let status = if f1.is_some() {
            RunStatus::Finished
        } else {
            RunStatus::Queued
        };
        RunEntry {
            id: id.into(),
            dir: PathBuf::from(id),
            record: Some(RunRecord {
                id: id.into(),
                status,
                sweep: Some(SweepTag {
                    id: "s".into(),
                    point,
                }),
                outcome: Outcome {
                    f1,
                    exact_match: f1.map(|f| f - 10.0),
                    ..Outcome::default()
                },
                ..RunRecord::default()
            }),
            shown: Shown::Is(status),
            problems: Vec::new(),
            last_step: None,
        }
    }

    #[test]
    fn seeds_fold_into_points_and_the_best_is_tested_against_the_rest() {
        let runs = vec![
            entry("a", "1e-4", 42, Some(80.0)),
            entry("b", "1e-4", 43, Some(82.0)),
            entry("c", "5e-5", 42, Some(70.0)),
            entry("d", "5e-5", 43, Some(71.0)),
            entry("e", "2e-4", 42, Some(79.0)),
            entry("f", "2e-4", 43, Some(83.0)),
            entry("g", "3e-4", 42, None),
        ];
        let mut rows = point_rows(&runs);
        assert_eq!(rows.len(), 4);
        let lr = |r: &PointRow| r.point["learning_rate"].clone();
        let best: Vec<String> = rows.iter().filter(|r| r.is_best()).map(lr).collect();
        assert_eq!(best, ["1e-4"]);
        let f1 = rows
            .iter()
            .find(|r| lr(r) == "1e-4")
            .unwrap()
            .f1
            .clone()
            .unwrap();
        assert_eq!((f1.mean, f1.n), (81.0, 2));
        test_against_best(&mut rows);
        let verdict = |v: &str| rows.iter().find(|r| lr(r) == v).unwrap().vs_best.clone();
        assert!(
            matches!(verdict("2e-4"), VsBest::NotSignificant(_)),
            "{:?}",
            verdict("2e-4")
        );
        assert!(
            matches!(verdict("5e-5"), VsBest::Significant(_)),
            "{:?}",
            verdict("5e-5")
        );
        assert!(matches!(verdict("3e-4"), VsBest::Untested(_)));
        assert_eq!(
            rows.iter().find(|r| lr(r) == "3e-4").unwrap().status(),
            "queued 1"
        );

        let (varying, fixed) = axes(&rows);
        assert_eq!(
            (varying, fixed),
            (vec!["learning_rate".to_string()], vec![])
        );
        let effects = axis_effects(&rows, &["learning_rate".to_string()]);
        let order: Vec<&str> = effects[0].values.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(order, ["5e-5", "1e-4", "2e-4"], "numbers in numeric order");
        assert_eq!(effects[0].values[0].1.mean, 70.5);
    }
}
