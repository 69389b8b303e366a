//! Comparison, diff and export on fixture runs: imported predictions with
//! known right and wrong answers, and records of runs that differ in learning
//! rate or only in seed.

use crate::common;

use squadlab::config::{ModelSource, RunConfig};
use squadlab::eval::{EvalResults, QuestionResult, RESULTS_FILE};
use squadlab::store::{Outcome, RunRecord, RunStatus};
use std::path::{Path, PathBuf};

const COLORS: [&str; 8] = [
    "red", "blue", "green", "yellow", "black", "white", "pink", "brown",
];

/// The tiny task's gold answer for question `c`.
fn gold(c: usize) -> &'static str {
    COLORS[(c * 3) % COLORS.len()]
}

struct Fixture {
    _tmp: tempfile::TempDir,
    store: PathBuf,
    import_a: String,
    import_b: String,
}

impl Fixture {
    fn store(&self) -> String {
        self.store.display().to_string()
    }
}

/// A run record as a finished bert-base training run would leave it.
fn trained(
    store: &Path,
    id: &str,
    name: &str,
    (lr, seed): (f64, u64),
    (em, f1, secs): (f64, f64, f64),
) {
    let dir = store.join("runs").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let config = RunConfig {
        name: name.into(),
        model: ModelSource::try_from("google-bert/bert-base-uncased".to_string()).unwrap(),
        learning_rate: lr,
        seed,
        ..RunConfig::default()
    };
    RunRecord {
        id: id.into(),
        name: name.into(),
        status: RunStatus::Finished,
        device: Some("cuda:0 (fixture)".into()),
        outcome: Outcome {
            exact_match: Some(em),
            f1: Some(f1),
            train_runtime: Some(secs),
            train_samples_per_second: Some(88_524.0 * 3.0 / secs),
            ..Outcome::default()
        },
        config: Some(config),
        ..RunRecord::default()
    }
    .save(&dir)
    .unwrap();
    EvalResults {
        exact_match: em,
        f1,
        total: 1,
        unanswered: 0,
        questions: vec![QuestionResult {
            id: "q0".into(),
            exact_match: 1.0,
            f1: 1.0,
        }],
    }
    .save(&dir.join(RESULTS_FILE))
    .unwrap();
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let (json, _) = common::tiny_task(tmp.path());
    let store = tmp.path().join("store");
    let import = |name: &str, right: &dyn Fn(usize) -> bool| {
        let predictions: serde_json::Map<String, serde_json::Value> = (0..48)
            .map(|c| {
                let answer = if right(c) { gold(c) } else { "purple" };
                (format!("q{c}"), answer.into())
            })
            .collect();
        common::import_predictions(&store, &json, name, &predictions)
    };
    let import_a = import("system A", &|c| c < 30);
    let import_b = import("system B", &|c| c >= 10);
    let runs = [
        ("base lr 3e-5", (3e-5, 42), (80.0, 88.0, 4000.0)),
        ("base lr 3e-5", (3e-5, 43), (82.0, 89.0, 4200.0)),
        ("lr 5e-5, \"hot\"", (5e-5, 42), (79.0, 87.0, 4100.0)),
    ];
    for (id, (name, course, outcome)) in TRAINED.iter().zip(runs) {
        trained(&store, id, name, course, outcome);
    }
    Fixture {
        _tmp: tmp,
        store,
        import_a,
        import_b,
    }
}

const TRAINED: [&str; 3] = [
    "20260101-000000-s042",
    "20260101-000001-s043",
    "20260101-000002-hot0",
];

#[test]
fn import_scores_and_diff_lists_the_flipped_questions() {
    let f = fixture();
    let runs = common::squadlab_json(&["runs", "--store", &f.store()]);
    let a = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == f.import_a.as_str())
        .unwrap();
    assert_eq!(a["status"], "finished");
    assert_eq!(a["exact_match"], 30.0 / 48.0 * 100.0);

    let d = common::squadlab_json(&["diff", &f.import_a, &f.import_b, "--store", &f.store()]);
    let diff = &d["diff"];
    assert_eq!(diff["both_right"], 20);
    assert_eq!(diff["both_wrong"], 0);
    let ids = |key: &str| -> Vec<String> {
        diff[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids("right_to_wrong"),
        (0..10).map(|c| format!("q{c}")).collect::<Vec<_>>()
    );
    assert_eq!(
        ids("wrong_to_right"),
        (30..48).map(|c| format!("q{c}")).collect::<Vec<_>>()
    );
    // McNemar on 10 + 18 flips: χ² (|10 − 18| − 1)² / 28, p from scipy.stats.chi2.sf(1.75, 1).
    assert_eq!(diff["mcnemar"]["method"], "chi_squared_corrected");
    assert_eq!(diff["mcnemar"]["statistic"], 1.75);
    assert!((diff["mcnemar"]["p_value"].as_f64().unwrap() - 0.185_876_732_365_872_1).abs() < 1e-12);
    // B gains 8 of 48 questions net, ΔF1 = +16.67 points, but on 48
    // questions the interval is wide enough to hold 0: not significant.
    let delta = &diff["delta_f1"];
    let (lo, hi) = (
        delta["low"].as_f64().unwrap(),
        delta["high"].as_f64().unwrap(),
    );
    assert!((delta["delta"].as_f64().unwrap() - 800.0 / 48.0).abs() < 1e-9);
    assert!(lo < 0.0 && 800.0 / 48.0 < hi, "[{lo}, {hi}]");
    assert_eq!(diff["significant"], false, "{}", diff["verdict"]);
    assert!(diff["verdict"]
        .as_str()
        .unwrap()
        .starts_with("not significant at 0.05"));
    let first = &diff["right_to_wrong"][0];
    assert_eq!(
        (first["answer_a"].as_str(), first["answer_b"].as_str()),
        (Some("red"), Some("purple"))
    );

    // The text form gives the counts.
    let out = common::squadlab()
        .args(["diff", "system A", "system B", "--store", &f.store()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("right → wrong (A right, B wrong): 10"),
        "{text}"
    );
    assert!(
        text.contains("wrong → right (A wrong, B right): 18"),
        "{text}"
    );

    // Paired tests need the same questions: a run scored on one is refused, by count.
    let other = common::squadlab()
        .args(["diff", "system A", TRAINED[0], "--store", &f.store()])
        .output()
        .unwrap();
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        err.contains("not scored on the same questions (A 48, B 1, 1 in common)"),
        "{err}"
    );

    // Imported runs are read-only.
    let resume = common::squadlab()
        .args(["resume", &f.import_a, "--store", &f.store()])
        .output()
        .unwrap();
    assert!(!resume.status.success());
    assert!(String::from_utf8_lossy(&resume.stderr).contains("imported predictions"));
}

#[test]
fn compare_shows_differing_keys_seed_groups_and_deltas_against_the_paper() {
    let f = fixture();
    let mut args = vec!["compare"];
    args.extend(TRAINED);
    args.push(&f.import_a);
    let store = f.store();
    args.extend(["--store", &store]);
    let c = common::squadlab_json(&args);
    let keys: Vec<&str> = c["differing_config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["learning_rate", "seed"], "{c}");
    let rows = c["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "the two seeds fold into one row: {c}");
    let group = &rows[0];
    assert_eq!(group["kind"], "seed_group");
    assert_eq!(group["seeds"], serde_json::json!([42, 43]));
    assert_eq!(group["exact_match"]["mean"], 81.0);
    let std = group["exact_match"]["std"].as_f64().unwrap();
    assert!((std - 2f64.sqrt()).abs() < 1e-12, "{std}");
    assert_eq!(group["baseline"], "paper-base");
    assert!((group["delta_exact_match"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    assert!((group["delta_f1"].as_f64().unwrap() - 0.0).abs() < 1e-9);
    assert_eq!(rows[1]["kind"], "run");
    assert!((rows[1]["delta_f1"].as_f64().unwrap() + 1.5).abs() < 1e-9);
    assert_eq!(
        rows[2]["baseline"],
        serde_json::Value::Null,
        "no paper row for an import"
    );
    assert_eq!(
        rows[2]["eval_questions"], 48,
        "the import scored the tiny task's questions"
    );

    // --no-group keeps every run on its own row.
    args.push("--no-group");
    let c = common::squadlab_json(&args);
    assert_eq!(c["rows"].as_array().unwrap().len(), 4);
}

/// RFC 4180 records: quoted fields may hold commas, doubled quotes and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => {
                assert!(field.is_empty(), "a quote inside an unquoted field");
                quoted = true;
            }
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => assert_eq!(chars.next(), Some('\n'), "CR without LF"),
            (false, '\n') => panic!("a bare LF ends a record"),
            (false, c) => field.push(c),
        }
        if !quoted && ch == '\r' {
            record.push(std::mem::take(&mut field));
            records.push(std::mem::take(&mut record));
        }
    }
    assert!(!quoted, "unterminated quote");
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

fn export(f: &Fixture, format: &str) -> String {
    let out = f.store.parent().unwrap().join(format!("table.{format}"));
    let mut args = vec!["export"];
    args.extend(TRAINED);
    let (store, path) = (f.store(), out.display().to_string());
    args.extend([
        "--store",
        &store,
        "--format",
        format,
        "--out",
        &path,
        "--baseline",
        "paper-base",
    ]);
    let report = common::squadlab_json(&args);
    assert_eq!(
        report["rows"],
        7 + 2,
        "BERT's seven published rows (the runs' family) and two of ours"
    );
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn exported_tables_parse_in_every_format() {
    let f = fixture();

    let csv = export(&f, "csv");
    let records = parse_csv(&csv);
    assert_eq!(records.len(), 1 + 9);
    let header = &records[0];
    assert!(
        records.iter().all(|r| r.len() == header.len()),
        "{records:?}"
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let paper = records
        .iter()
        .find(|r| r[0] == "BERT paper, BERT-base (single)")
        .unwrap();
    assert_eq!(
        (paper[col("em")].as_str(), paper[col("f1")].as_str()),
        ("80.8", "88.5")
    );
    let nvidia = records.iter().find(|r| r[0].starts_with("NVIDIA")).unwrap();
    assert_eq!(
        (nvidia[col("f1")].as_str(), nvidia[col("f1_std")].as_str()),
        ("90.68", "0.16")
    );
    assert_eq!(nvidia[col("n")], "10");
    assert_eq!(paper[col("eval_questions")], "10570");
    // Published rows keep their own size's paper row whatever --baseline says.
    let notebook_large = records
        .iter()
        .find(|r| r[0] == "Reference notebook, bert-large-uncased")
        .unwrap();
    assert_eq!(notebook_large[col("baseline")], "paper-large");
    let hot = records
        .iter()
        .find(|r| r[0] == "lr 5e-5, \"hot\"")
        .expect("quotes round-trip");
    assert_eq!(hot[col("em")].parse::<f64>().unwrap(), 79.0);
    assert_eq!(hot[col("delta_em")].parse::<f64>().unwrap(), 79.0 - 80.8);
    let group = records
        .iter()
        .find(|r| r[col("kind")] == "seed_group")
        .unwrap();
    assert_eq!(group[col("seeds")], "42 43");
    assert_eq!(group[col("em")].parse::<f64>().unwrap(), 81.0);
    // Two seeds, EM 80 and 82: 81 ± t(0.975, 1) · √2 / √2, t = 12.706204736174698 (scipy).
    let t1 = 12.706_204_736_174_698;
    assert_eq!(group[col("n")], "2");
    let em_lo: f64 = group[col("em_ci95_low")].parse().unwrap();
    let em_hi: f64 = group[col("em_ci95_high")].parse().unwrap();
    assert!((em_lo - (81.0 - t1)).abs() < 1e-9 && (em_hi - (81.0 + t1)).abs() < 1e-9);
    assert_eq!(hot[col("em_ci95_low")], "", "one run has no interval");
    // The published NVIDIA row: F1 90.68 ± 0.16 over 10 seeds.
    assert!(nvidia[col("f1_ci95_low")].starts_with("90.565"));

    let md = export(&f, "md");
    let table: Vec<&str> = md.lines().take_while(|l| l.starts_with('|')).collect();
    assert_eq!(table.len(), 2 + 9);
    let cells = |line: &str| line.replace("\\|", "").matches('|').count() - 1;
    assert!(table.iter().all(|l| cells(l) == 13), "{md}");
    assert!(table[1]
        .split('|')
        .skip(1)
        .all(|c| c.is_empty() || c.starts_with("---")));
    assert!(md.contains("| 81.00 ± 1.41 |"), "{md}");
    assert!(md.contains("| [68.29, 93.71] |"), "{md}");
    assert!(md.contains("| [90.57, 90.79] |"), "{md}");
    assert!(md.contains("Sources:") && md.contains("arXiv:1810.04805"));

    let tex = export(&f, "tex");
    check_latex(&tex);
    if let Some(pdf) = compile_latex(&tex, f.store.parent().unwrap()) {
        assert!(pdf.is_file());
    }

    let json: serde_json::Value = serde_json::from_str(&export(&f, "json")).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[0]["exact_match"]["mean"], 80.8);
}

/// booktabs structure: the rules in order, one `&` fewer than columns on every
/// row, every brace closed, nothing special left unescaped.
fn check_latex(tex: &str) {
    let pos = |s: &str| tex.find(s).unwrap_or_else(|| panic!("{s} missing:\n{tex}"));
    assert!(pos("\\begin{tabular}{llrrrrrrrrrrl}") < pos("\\toprule"));
    assert!(pos("\\toprule") < pos("\\midrule"));
    assert!(pos("\\midrule") < pos("\\bottomrule"));
    assert!(pos("\\bottomrule") < pos("\\end{tabular}"));
    let rows: Vec<&str> = tex.lines().filter(|l| l.ends_with("\\\\")).collect();
    assert_eq!(rows.len(), 1 + 9);
    for row in &rows {
        let unescaped = row.replace("\\&", "").matches('&').count();
        assert_eq!(unescaped, 12, "{row}");
    }
    let depth = tex
        .replace("\\{", "")
        .replace("\\}", "")
        .chars()
        .try_fold(0i32, |d, c| {
            let d = d + i32::from(c == '{') - i32::from(c == '}');
            (d >= 0).then_some(d)
        });
    assert_eq!(depth, Some(0), "braces balance");
    for line in tex.lines().filter(|l| !l.starts_with('%')) {
        assert!(!line.replace("\\%", "").contains('%'), "{line}");
        assert!(!line.replace("\\_", "").contains('_'), "{line}");
    }
    assert!(tex.contains("$\\pm$") && tex.contains("$\\Delta$"));
}

/// Compiles the table with pdflatex when it is installed; `None` when not.
fn compile_latex(table: &str, dir: &Path) -> Option<PathBuf> {
    let available = std::process::Command::new("pdflatex")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!("pdflatex not installed: checked the LaTeX's structure only");
        return None;
    }
    let doc = format!(
        "\\documentclass{{article}}\n\\usepackage[utf8]{{inputenc}}\n\\usepackage{{booktabs}}\n\\begin{{document}}\n{table}\\end{{document}}\n"
    );
    std::fs::write(dir.join("table.tex"), doc).unwrap();
    let out = std::process::Command::new("pdflatex")
        .args(["-interaction=nonstopmode", "-halt-on-error", "table.tex"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pdflatex failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Some(dir.join("table.pdf"))
}

/// A finished run of the 10%-warmup protocol (161 steps) at `seed`, whose
/// record says `warmup` steps were derived (none: a record from before
/// squadlab kept them, when the ratio was floored to 16).
fn warmup_run(store: &Path, id: &str, seed: u64, warmup: Option<u64>, f1: f64) {
    let dir = store.join("runs").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    RunRecord {
        id: id.into(),
        status: RunStatus::Finished,
        outcome: Outcome {
            exact_match: Some(f1 - 10.0),
            f1: Some(f1),
            total_steps: Some(161),
            ..Outcome::default()
        },
        config: Some(RunConfig {
            warmup_ratio: 0.1,
            seed,
            ..RunConfig::default()
        }),
        warmup_steps: warmup,
        ..RunRecord::default()
    }
    .save(&dir)
    .unwrap();
}

#[test]
fn runs_derived_with_other_warmup_steps_never_fold_into_one_seed_group() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    warmup_run(&store, "20260101-000000-old1", 42, None, 38.0);
    warmup_run(&store, "20260101-000001-old2", 43, Some(16), 39.0);
    warmup_run(&store, "20260101-000002-new1", 44, Some(17), 30.0);
    warmup_run(&store, "20260101-000003-new2", 45, Some(17), 32.0);
    let store_arg = store.display().to_string();
    let c = common::squadlab_json(&[
        "compare",
        "20260101-000000-old1",
        "20260101-000001-old2",
        "20260101-000002-new1",
        "20260101-000003-new2",
        "--store",
        &store_arg,
    ]);
    let rows = c["rows"].as_array().unwrap();
    let seeds: Vec<&serde_json::Value> = rows
        .iter()
        .filter(|r| r["kind"] == "seed_group")
        .map(|r| &r["seeds"])
        .collect();
    assert_eq!(
        seeds,
        vec![&serde_json::json!([42, 43]), &serde_json::json!([44, 45])],
        "the floor-rule runs (one legacy record, one recording 16) fold apart from the ceil-rule ones: {c}"
    );
}
