//! The comparison table: runs (seed groups folded into mean ± std) beside the
//! published rows, with deltas against the matching BERT paper row.

use super::reference::{model_size, Reference, ReferenceResults, Role, SQUAD_V1, SQUAD_V2};
use super::significance::t_interval;
use crate::config::RunConfig;
use crate::family::Family;
use crate::store::{RunEntry, RunRecord};
use anyhow::{bail, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// Questions in the SQuAD v1.1 dev set, which every published v1.1 row scores.
pub const SQUAD_DEV_QUESTIONS: usize = 10_570;
/// Questions in the SQuAD 2.0 dev set.
pub const SQUAD2_DEV_QUESTIONS: usize = 11_873;

/// A value over one run or several (mean ± sample std), with a 95%
/// Student-t interval on the mean when there are two or more.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub std: Option<f64>,
    pub n: usize,
    pub ci95: Option<[f64; 2]>,
}

impl Stat {
    pub fn one(v: f64) -> Self {
        Self::new(v, None, 1)
    }

    pub fn new(mean: f64, std: Option<f64>, n: usize) -> Self {
        Self {
            mean,
            std,
            n,
            ci95: std.and_then(|s| t_interval(mean, s, n)),
        }
    }

    /// `[87.90, 89.10]`, or None for a single value.
    pub fn show_interval(&self, decimals: usize) -> Option<String> {
        let [lo, hi] = self.ci95?;
        Some(format!("[{lo:.decimals$}, {hi:.decimals$}]"))
    }

    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        });
        Some(Self::new(mean, std, n))
    }

    /// `88.50` or `88.50 ± 0.16`.
    pub fn show(&self, decimals: usize) -> String {
        match self.std {
            Some(s) => format!("{:.*} ± {:.*}", decimals, self.mean, decimals, s),
            None => format!("{:.*}", decimals, self.mean),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    Reference,
    Run,
    SeedGroup,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub label: String,
    pub kind: RowKind,
    /// The run ids behind the row.
    pub runs: Vec<String>,
    pub model: String,
    /// The runs' model family (none for published rows and old records).
    pub family: Option<crate::model::Family>,
    pub seeds: Vec<u64>,
    /// Dev questions scored: a subset's EM/F1 is not the full dev set's.
    pub eval_questions: Option<usize>,
    pub exact_match: Option<Stat>,
    pub f1: Option<Stat>,
    /// The paper row the deltas are measured from.
    pub baseline: Option<String>,
    pub delta_exact_match: Option<f64>,
    pub delta_f1: Option<f64>,
    pub train_runtime: Option<Stat>,
    pub samples_per_second: Option<Stat>,
    pub hardware: String,
    pub source: String,
    /// "1.1" or "2.0": a v2 row is never measured from a v1.1 row.
    pub squad_version: String,
    /// SQuAD 2.0: EM and F1 on the answerable and the unanswerable questions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_ans_f1: Option<Stat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_ans_f1: Option<Stat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_ans_exact: Option<Stat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_ans_exact: Option<Stat>,
}

#[derive(Clone, Debug, Default)]
pub struct TableOptions {
    /// Fold runs that differ only in seed into one mean ± std row.
    pub group_seeds: bool,
    pub include_references: bool,
    /// Measure deltas from this reference row instead of the size-matched paper row.
    pub baseline: Option<String>,
}

/// The runs' rows in the order given; with the published rows, grouped by
/// family, each family's published rows first.
pub fn comparison_rows(
    runs: &[RunEntry],
    refs: &ReferenceResults,
    options: &TableOptions,
) -> Result<Vec<Row>> {
    let forced = match &options.baseline {
        Some(id) => match refs.get(id) {
            Some(r) => Some(r),
            None => bail!(
                "--baseline {id:?} is not a reference row; known: {}",
                refs.results
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        None => None,
    };
    let mut runs_rows = Vec::new();
    for group in groups(runs, options.group_seeds)? {
        let records: Vec<&RunRecord> = group.iter().filter_map(|e| e.record.as_ref()).collect();
        let mut row = run_row(&group, &records);
        // Each run beside its own family's paper row at its size; a run of
        // unknown family (an import of an unnamed model) has none.
        let paper = forced.or_else(|| {
            let family = row.family?;
            model_size(&row.model).and_then(|s| refs.paper_for(family, s, &row.squad_version))
        });
        set_deltas(&mut row, paper);
        runs_rows.push(row);
    }
    if !options.include_references {
        return Ok(runs_rows);
    }
    // The published rows of the runs' families and SQuAD versions (BERT's
    // v1.1 when none says), each just above its runs, in the order their
    // runs come.
    let mut groups: Vec<(Family, String)> = Vec::new();
    for r in &runs_rows {
        if let Some(family) = r.family {
            let key = (family, r.squad_version.clone());
            if !groups.contains(&key) {
                groups.push(key);
            }
        }
    }
    if groups.is_empty() {
        groups.push((Family::Bert, SQUAD_V1.to_string()));
    }
    let mut rows = Vec::new();
    for (family, version) in &groups {
        for r in refs
            .results
            .iter()
            .filter(|r| r.family == *family && r.version == *version)
        {
            // Published rows always compare with the paper row of their own size.
            let mut row = reference_row(r);
            if r.role != Role::Paper {
                set_deltas(&mut row, refs.paper_for(r.family, &r.size, &r.version));
            }
            rows.push(row);
        }
        rows.extend(
            runs_rows
                .iter()
                .filter(|r| r.family == Some(*family) && r.squad_version == *version)
                .cloned(),
        );
    }
    rows.extend(runs_rows.into_iter().filter(|r| r.family.is_none()));
    Ok(rows)
}

impl Row {
    /// The runs (or the published seeds) behind the row's numbers.
    pub fn runs_n(&self) -> usize {
        self.f1
            .as_ref()
            .or(self.exact_match.as_ref())
            .map_or(0, |s| s.n)
    }
}

fn reference_row(r: &Reference) -> Row {
    let with_std = |v: Option<f64>, std: Option<f64>| {
        v.map(|mean| Stat::new(mean, std, r.seeds.unwrap_or(1) as usize))
    };
    Row {
        label: r.label.clone(),
        kind: RowKind::Reference,
        runs: Vec::new(),
        model: format!("{}-{}", r.family.model_type(), r.size),
        family: Some(r.family),
        seeds: Vec::new(),
        eval_questions: Some(if r.version == SQUAD_V2 {
            SQUAD2_DEV_QUESTIONS
        } else {
            SQUAD_DEV_QUESTIONS
        }),
        exact_match: with_std(r.exact_match, None),
        f1: with_std(r.f1, r.f1_std),
        baseline: None,
        delta_exact_match: None,
        delta_f1: None,
        train_runtime: r.train_runtime.map(Stat::one),
        samples_per_second: None,
        hardware: r.hardware.clone().unwrap_or_default(),
        source: r.source.clone(),
        squad_version: r.version.clone(),
        has_ans_f1: None,
        no_ans_f1: None,
        has_ans_exact: None,
        no_ans_exact: None,
    }
}

fn run_row(group: &[&RunEntry], records: &[&RunRecord]) -> Row {
    let values = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
        Stat::of(&records.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
    };
    let first = records[0];
    let v2 = |f: &dyn Fn(&crate::schema::V2Breakdown) -> Option<f64>| {
        let values: Vec<f64> = records
            .iter()
            .filter_map(|r| r.outcome.squad_v2.as_ref().and_then(f))
            .collect();
        Stat::of(&values)
    };
    let kind = if group.len() > 1 {
        RowKind::SeedGroup
    } else {
        RowKind::Run
    };
    let mut label = first.name.clone();
    if label.is_empty() {
        label = group[0].id.clone();
    }
    let seeds: Vec<u64> = records
        .iter()
        .filter_map(|r| r.config.as_ref().map(|c| c.seed))
        .collect();
    if kind == RowKind::SeedGroup {
        // A sweep's runs are named for their point, seed included: the
        // group is the point without it.
        if let Some(tag) = &first.sweep {
            label = tag.point_label();
        }
        label = format!("{label} ({} seeds)", group.len());
    }
    let mut hardware: Vec<String> = records.iter().filter_map(|r| r.device.clone()).collect();
    hardware.dedup();
    let mut sources: Vec<String> = records
        .iter()
        .map(|r| match &r.kind {
            crate::store::RunKind::Trained => format!("squadlab {}", r.versions.git_sha),
            crate::store::RunKind::Imported { predictions } => format!("imported {predictions}"),
        })
        .collect();
    sources.sort();
    sources.dedup();
    Row {
        label,
        kind,
        runs: group.iter().map(|e| e.id.clone()).collect(),
        model: first.model(),
        family: first
            .family
            .or_else(|| Family::from_model_id(&first.model())),
        seeds,
        eval_questions: records
            .iter()
            .filter_map(|r| r.outcome.eval_questions)
            .max(),
        exact_match: values(&|r| r.outcome.exact_match),
        f1: values(&|r| r.outcome.f1),
        baseline: None,
        delta_exact_match: None,
        delta_f1: None,
        train_runtime: values(&|r| r.outcome.train_runtime),
        samples_per_second: values(&|r| r.outcome.train_samples_per_second),
        hardware: hardware.join(", "),
        source: sources.join("; "),
        squad_version: first.squad_version().to_string(),
        has_ans_f1: v2(&|b| b.has_ans_f1),
        no_ans_f1: v2(&|b| b.no_ans_f1),
        has_ans_exact: v2(&|b| b.has_ans_exact),
        no_ans_exact: v2(&|b| b.no_ans_exact),
    }
}

fn set_deltas(row: &mut Row, paper: Option<&Reference>) {
    let Some(paper) = paper else { return };
    row.baseline = Some(paper.id.clone());
    let delta = |ours: &Option<Stat>, theirs: Option<f64>| Some(ours.as_ref()?.mean - theirs?);
    row.delta_exact_match = delta(&row.exact_match, paper.exact_match);
    row.delta_f1 = delta(&row.f1, paper.f1);
}

/// Runs in the order given; with `fold`, runs whose configs differ only in
/// seed (and settings that do not change the result) share one group.
fn groups(runs: &[RunEntry], fold: bool) -> Result<Vec<Vec<&RunEntry>>> {
    let mut out: Vec<(Option<String>, Vec<&RunEntry>)> = Vec::new();
    for entry in runs {
        let Some(record) = &entry.record else {
            bail!("run {} is damaged and cannot be compared", entry.id);
        };
        let key = record
            .config
            .as_ref()
            .filter(|_| fold && entry.is_scored())
            .map(|c| seed_group_key(c, record.warmup_steps_as_run()));
        match out.iter_mut().find(|(k, _)| key.is_some() && *k == key) {
            Some((_, members)) => members.push(entry),
            None => out.push((key, vec![entry])),
        }
    }
    Ok(out.into_iter().map(|(_, members)| members).collect())
}

/// The run's course, seed left out, and the warmup steps its schedule was
/// derived with (the same config gave 16 under the old floor rule and 17
/// under Hugging Face's ceil): runs with equal keys form a seed group.
fn seed_group_key(c: &RunConfig, warmup_steps: Option<u64>) -> String {
    let course = RunConfig {
        seed: 0,
        ..c.course()
    }
    .to_ron();
    format!("{course}\nwarmup_steps as run: {warmup_steps:?}")
}

/// Config keys (dotted paths) whose values differ between the runs, with each
/// run's value; `name` is left out, runs without a config show `-`.
pub fn differing_keys(configs: &[Option<&RunConfig>]) -> Vec<(String, Vec<String>)> {
    let flat: Vec<BTreeMap<String, String>> = configs
        .iter()
        .map(|c| {
            let mut out = BTreeMap::new();
            if let Some(c) = c {
                flatten("", &serde_json::to_value(c).unwrap_or_default(), &mut out);
            }
            out
        })
        .collect();
    let mut keys: Vec<&String> = flat.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| *k != "name")
        .filter_map(|k| {
            let values: Vec<String> = flat
                .iter()
                .map(|m| m.get(k).cloned().unwrap_or_else(|| "-".into()))
                .collect();
            // Imported runs have no config: they neither make nor hide a difference.
            let mut present = values
                .iter()
                .zip(configs)
                .filter(|(_, c)| c.is_some())
                .map(|(v, _)| v);
            let first = present.next()?;
            present.any(|v| v != first).then(|| (k.clone(), values))
        })
        .collect()
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.into(), s.clone());
        }
        serde_json::Value::Null => {
            out.insert(prefix.into(), "none".into());
        }
        // Learning rates read as 2e-5, not 0.00002.
        serde_json::Value::Number(n) if n.is_f64() => {
            let v = n.as_f64().unwrap_or_default();
            let text = if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) {
                format!("{v:e}")
            } else {
                format!("{v}")
            };
            out.insert(prefix.into(), text);
        }
        other => {
            out.insert(prefix.into(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_std() {
        let s = Stat::of(&[80.0, 81.0, 82.0]).unwrap();
        assert_eq!((s.mean, s.std, s.n), (81.0, Some(1.0), 3));
        // 81 ± t(0.975, 2) · 1 / √3, t(0.975, 2) = (2p − 1)·√(2 / 4p(1 − p)) = 4.302652729749461.
        let [lo, hi] = s.ci95.unwrap();
        assert!((hi - 81.0 - 4.302_652_729_749_461 / 3f64.sqrt()).abs() < 1e-12);
        assert!((81.0 - lo - (hi - 81.0)).abs() < 1e-12);
        assert_eq!(Stat::one(88.5).ci95, None);
        assert_eq!(s.show(2), "81.00 ± 1.00");
        assert_eq!(Stat::of(&[88.5]).unwrap().show(1), "88.5");
        assert!(Stat::of(&[]).is_none());
    }

    #[test]
    fn only_differing_keys_are_listed() {
        let a = RunConfig::default();
        let b = RunConfig {
            learning_rate: 5e-5,
            name: "other".into(),
            ..a.clone()
        };
        let diff = differing_keys(&[Some(&a), Some(&b), None]);
        let keys: Vec<&str> = diff.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&"learning_rate"), "{keys:?}");
        assert!(!keys.contains(&"name"));
        let lr = &diff.iter().find(|(k, _)| k == "learning_rate").unwrap().1;
        assert_eq!(lr, &vec!["2e-5".to_string(), "5e-5".into(), "-".into()]);
    }

    #[test]
    fn each_run_is_measured_from_its_own_familys_paper_row() {
        use crate::config::ModelSource;
        use crate::family::Family;
        use crate::store::{RunEntry, RunStatus, Shown};
        let run = |id: &str, model: &str, family: Option<Family>| {
            let mut record = RunRecord {
                id: id.into(),
                status: RunStatus::Finished,
                family,
                config: Some(RunConfig {
                    model: ModelSource::try_from(model.to_string()).unwrap(),
                    ..RunConfig::default()
                }),
                ..RunRecord::default()
            };
            record.outcome.exact_match = Some(80.0);
            record.outcome.f1 = Some(88.0);
            RunEntry {
                id: id.into(),
                dir: id.into(),
                record: Some(record),
                shown: Shown::Is(RunStatus::Finished),
                problems: Vec::new(),
                last_step: None,
            }
        };
        let runs = [
            run("a", "bert-base-uncased", Some(Family::Bert)),
            run("b", "roberta-base", Some(Family::Roberta)),
            // A record from before families: the model id says RoBERTa.
            run("c", "FacebookAI/roberta-base", None),
            run("d", "bert-base-uncased", None),
        ];
        let rows = comparison_rows(
            &runs,
            &ReferenceResults::builtin(),
            &TableOptions::default(),
        )
        .unwrap();
        let baselines: Vec<Option<&str>> = rows.iter().map(|r| r.baseline.as_deref()).collect();
        assert_eq!(
            baselines,
            [
                Some("paper-base"),
                Some("paper-roberta-base"),
                Some("paper-roberta-base"),
                Some("paper-base")
            ]
        );
        assert_eq!(rows[2].family, Some(Family::Roberta));

        // Published rows: those of the runs' families, BERT's and RoBERTa's.
        let with_refs = TableOptions {
            include_references: true,
            ..TableOptions::default()
        };
        let rows = comparison_rows(&runs, &ReferenceResults::builtin(), &with_refs).unwrap();
        let published: Vec<&Row> = rows
            .iter()
            .filter(|r| r.kind == RowKind::Reference)
            .collect();
        assert!(published.iter().any(|r| r.label == "RoBERTa-base (single)"));
        assert!(published.iter().any(|r| r.family == Some(Family::Bert)));
        assert!(published
            .iter()
            .all(|r| matches!(r.family, Some(Family::Bert | Family::Roberta))));
    }
}
