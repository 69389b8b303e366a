//! A breakdown (breakdown.rs) as a table for papers and tools: one row per
//! bucket and run, with the run's EM and F1 and their intervals, and for
//! every run after the first its ΔF1 against the first with McNemar's p.
//! The app's Analysis view and `squadlab breakdown --format` write it.

use super::breakdown::{Breakdown, BucketComparison, BucketRow, RunBreakdown};
use super::format::{tex_escape, Format};
use super::significance::show_p;
use anyhow::Result;

pub fn render_breakdown(b: &Breakdown, format: Format) -> Result<String> {
    Ok(match format {
        Format::Markdown => markdown(b),
        Format::Csv => csv(b),
        Format::Latex => latex(b),
        Format::Json => serde_json::to_string_pretty(b)? + "\n",
    })
}

/// One bucket of one run, with its comparison against the first run (none
/// for the first run itself, or where the two share no question there).
struct Line<'a> {
    run: &'a RunBreakdown,
    row: &'a BucketRow,
    against_first: Option<&'a BucketComparison>,
}

/// Bucket by bucket in the dimension's order, the runs in theirs.
fn lines(b: &Breakdown) -> Vec<Line<'_>> {
    let mut buckets: Vec<&str> = Vec::new();
    for run in &b.runs {
        for row in &run.rows {
            if !buckets.contains(&row.bucket.as_str()) {
                buckets.push(&row.bucket);
            }
        }
    }
    let order = |bucket: &str| {
        b.dimension
            .buckets()
            .iter()
            .position(|x| *x == bucket)
            .unwrap_or(usize::MAX)
    };
    buckets.sort_by_key(|bucket| order(bucket));
    let mut out = Vec::new();
    for bucket in buckets {
        for run in &b.runs {
            let Some(row) = run.rows.iter().find(|r| r.bucket == bucket) else {
                continue;
            };
            let against_first = b
                .comparisons
                .iter()
                .find(|c| c.run_id == run.run_id)
                .and_then(|c| c.rows.iter().find(|r| r.bucket == bucket));
            out.push(Line {
                run,
                row,
                against_first,
            });
        }
    }
    out
}

/// A run's name in the table: its name, with its id where another run of
/// the breakdown has the same name (or it has none).
pub fn run_label(b: &Breakdown, run: &RunBreakdown) -> String {
    let clash = b.runs.iter().filter(|r| r.name == run.name).count() > 1;
    if run.name.is_empty() {
        run.run_id.clone()
    } else if clash {
        format!("{} ({})", run.name, run.run_id)
    } else {
        run.name.clone()
    }
}

fn first_label(b: &Breakdown) -> String {
    b.runs.first().map(|r| run_label(b, r)).unwrap_or_default()
}

fn note(b: &Breakdown) -> String {
    let mut note = String::from(
        "EM and F1 in percent with 95% percentile-bootstrap intervals over the bucket's questions.",
    );
    if !b.comparisons.is_empty() {
        note += &format!(
            " ΔF1: against {} on the questions both scored, with a paired bootstrap interval; \
             *: McNemar's p on EM below 0.05 or an interval without 0.",
            first_label(b)
        );
    }
    note
}

const HEADERS: [&str; 8] = [
    "Bucket",
    "Run",
    "Questions",
    "EM",
    "F1",
    "F1 95% CI",
    "ΔF1 (95% CI)",
    "McNemar p",
];

fn cells(b: &Breakdown, line: &Line<'_>) -> [String; 8] {
    let (delta, p) = match line.against_first {
        Some(c) => (
            format!(
                "{:+.2} [{:+.2}, {:+.2}]{}",
                c.delta_f1.delta,
                c.delta_f1.low,
                c.delta_f1.high,
                if c.significant { " *" } else { "" }
            ),
            show_p(c.mcnemar.p_value),
        ),
        None => ("-".into(), "-".into()),
    };
    [
        line.row.bucket.clone(),
        run_label(b, line.run),
        line.row.count.to_string(),
        format!("{:.2}", line.row.exact_match),
        format!("{:.2}", line.row.f1),
        format!(
            "[{:.2}, {:.2}]",
            line.row.f1_interval[0], line.row.f1_interval[1]
        ),
        delta,
        p,
    ]
}

fn markdown(b: &Breakdown) -> String {
    let escape = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = format!("F1 and EM by {}.\n\n", b.by);
    out += &format!("| {} |\n", HEADERS.join(" | "));
    out += "|---|---|---:|---:|---:|---:|---:|---:|\n";
    for line in lines(b) {
        let row: Vec<String> = cells(b, &line).iter().map(|c| escape(c)).collect();
        out += &format!("| {} |\n", row.join(" | "));
    }
    out + &format!("\n{}\n", note(b))
}

/// RFC 4180, one line per bucket and run, numbers unrounded (in Rust's
/// shortest round-trip form, with an exponent for p-values like 3e-296).
fn csv(b: &Breakdown) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let header = [
        "by",
        "bucket",
        "run",
        "run_id",
        "count",
        "exact_match",
        "exact_match_ci95_low",
        "exact_match_ci95_high",
        "f1",
        "f1_ci95_low",
        "f1_ci95_high",
        "baseline",
        "compared_count",
        "delta_f1",
        "delta_f1_ci95_low",
        "delta_f1_ci95_high",
        "mcnemar_p",
        "significant",
    ];
    let mut out = header.join(",") + "\r\n";
    let baseline = b.runs.first().map_or("", |r| r.run_id.as_str());
    for line in lines(b) {
        let r = line.row;
        let c = line.against_first;
        let num = |v: Option<f64>| v.map_or_else(String::new, |v| format!("{v:?}"));
        let fields = [
            b.by.to_string(),
            r.bucket.clone(),
            run_label(b, line.run),
            line.run.run_id.clone(),
            r.count.to_string(),
            num(Some(r.exact_match)),
            num(Some(r.exact_match_interval[0])),
            num(Some(r.exact_match_interval[1])),
            num(Some(r.f1)),
            num(Some(r.f1_interval[0])),
            num(Some(r.f1_interval[1])),
            c.map_or_else(String::new, |_| baseline.to_string()),
            c.map_or_else(String::new, |c| c.count.to_string()),
            num(c.map(|c| c.delta_f1.delta)),
            num(c.map(|c| c.delta_f1.low)),
            num(c.map(|c| c.delta_f1.high)),
            num(c.map(|c| c.mcnemar.p_value)),
            c.map_or_else(String::new, |c| c.significant.to_string()),
        ];
        let row: Vec<String> = fields.iter().map(|f| field(f)).collect();
        out += &(row.join(",") + "\r\n");
    }
    out
}

/// A booktabs `table` that compiles on its own with `\usepackage{booktabs}`;
/// each bucket's name on its first row, a rule between buckets.
fn latex(b: &Breakdown) -> String {
    let mut out = String::from(
        "% Requires \\usepackage{booktabs}.\n\\begin{table}[t]\n\\centering\n\\begin{tabular}{llrrrrrr}\n\\toprule\n",
    );
    let headers: Vec<String> = HEADERS.iter().map(|h| tex_escape(h)).collect();
    out += &format!("{} \\\\\n", headers.join(" & "));
    let mut previous: Option<String> = None;
    for line in lines(b) {
        let mut row: Vec<String> = cells(b, &line).iter().map(|c| tex_escape(c)).collect();
        if previous.as_deref() == Some(line.row.bucket.as_str()) {
            row[0].clear();
        } else {
            out += "\\midrule\n";
        }
        previous = Some(line.row.bucket.clone());
        out += &format!("{} \\\\\n", row.join(" & "));
    }
    out += &format!(
        "\\bottomrule\n\\end{{tabular}}\n\\caption{{F1 and EM by {}. {}}}\n\\end{{table}}\n",
        tex_escape(b.by),
        tex_escape(&note(b))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::breakdown::{Dimension, RunComparison};
    use crate::report::significance::{DeltaInterval, McNemar, McNemarMethod};

    fn row(bucket: &str, count: usize, f1: f64) -> BucketRow {
        BucketRow {
            bucket: bucket.into(),
            count,
            exact_match: f1 - 10.0,
            f1,
            exact_match_interval: [f1 - 13.0, f1 - 7.0],
            f1_interval: [f1 - 2.5, f1 + 2.5],
        }
    }

    fn comparison(bucket: &str, delta: f64, p: f64) -> BucketComparison {
        BucketComparison {
            bucket: bucket.into(),
            count: 40,
            delta_f1: DeltaInterval {
                delta,
                low: delta - 1.0,
                high: delta + 1.0,
                confidence: 0.95,
                resamples: 100,
                seed: 1,
            },
            mcnemar: McNemar {
                right_to_wrong: 1,
                wrong_to_right: 9,
                method: McNemarMethod::ExactBinomial,
                statistic: 1.0,
                p_value: p,
            },
            significant: p < 0.05 || delta - 1.0 > 0.0,
        }
    }

    /// Two runs of one name (ids tell them apart), a bucket the first run
    /// lacks, and a significant and a null difference.
    fn sample() -> Breakdown {
        let run = |id: &str, rows| RunBreakdown {
            run_id: id.into(),
            name: "base_run".into(),
            rows,
        };
        Breakdown {
            by: "answer-length",
            dimension: Dimension::AnswerLength,
            runs: vec![
                run("a", vec![row("2", 40, 50.0)]),
                run("b", vec![row("1", 7, 61.0), row("2", 40, 55.25)]),
            ],
            comparisons: vec![RunComparison {
                baseline: "a".into(),
                run_id: "b".into(),
                rows: vec![comparison("2", 5.25, 0.0107)],
            }],
        }
    }

    #[test]
    fn tables_list_each_bucket_and_run_in_order_with_the_difference_marked() {
        let b = sample();
        let md = render_breakdown(&b, Format::Markdown).unwrap();
        let lines: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(
            lines[1..],
            [
                "| 1 | base_run (b) | 7 | 51.00 | 61.00 | [58.50, 63.50] | - | - |",
                "| 2 | base_run (a) | 40 | 40.00 | 50.00 | [47.50, 52.50] | - | - |",
                "| 2 | base_run (b) | 40 | 45.25 | 55.25 | [52.75, 57.75] | +5.25 [+4.25, +6.25] * | 0.011 |",
            ]
        );
        assert!(md.contains("against base_run (a)"));

        let csv = render_breakdown(&b, Format::Csv).unwrap();
        let rows: Vec<Vec<&str>> = csv
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(rows.len(), 4);
        assert!(rows.iter().all(|r| r.len() == rows[0].len()));
        let last = &rows[3];
        assert_eq!(last[..5], ["answer-length", "2", "base_run (b)", "b", "40"]);
        assert_eq!(
            last[11..],
            ["a", "40", "5.25", "4.25", "6.25", "0.0107", "true"]
        );
        // The first run's row has no comparison.
        assert_eq!(rows[2][11..].iter().filter(|c| c.is_empty()).count(), 7);

        let tex = render_breakdown(&b, Format::Latex).unwrap();
        assert!(tex.contains("base\\_run (a)"), "{tex}");
        assert!(!tex.contains("base_run"), "{tex}");
        // A rule before each bucket; the second run of a bucket leaves its name out.
        assert_eq!(tex.matches("\\midrule").count(), 2);
        assert!(tex.contains("\n & base\\_run (b) & 40 &"), "{tex}");
        let json: serde_json::Value =
            serde_json::from_str(&render_breakdown(&b, Format::Json).unwrap()).unwrap();
        assert_eq!(json["runs"][1]["rows"][0]["bucket"], "1");
    }
}
