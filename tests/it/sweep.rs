//! Sweeps: expansion into queued runs, re-expansion of an edited file, more
//! random draws from the same stream, bad axes refused with nothing queued,
//! and a small sweep trained by workers to its status and best run.

use crate::common;

use common::{spawn_worker, squadlab_json, tiny_run_config, tiny_task};
use squadlab::store::{RunRecord, RunStatus, Store};
use squadlab::sweep::{self, expand, spec::Sweep};
use std::path::Path;

fn write_sweep(dir: &Path, body: &str) -> std::path::PathBuf {
    let file = dir.join("sweep.ron");
    std::fs::write(
        &file,
        format!("Sweep(name: \"tiny sweep\", base: File(\"base.ron\"), {body})"),
    )
    .unwrap();
    file
}

/// The tiny task's config as `base.ron` beside a sweep file, and a store.
fn tiny_sweep_dir(
    tmp: &Path,
    config: impl FnOnce(squadlab::config::RunConfig) -> squadlab::config::RunConfig,
) -> Store {
    let (json, model) = tiny_task(tmp);
    std::fs::write(
        tmp.join("base.ron"),
        config(tiny_run_config(&json, &model)).to_ron(),
    )
    .unwrap();
    Store::open(Some(&tmp.join("store")))
}

fn records(store: &Store) -> Vec<RunRecord> {
    store
        .list()
        .unwrap()
        .into_iter()
        .filter_map(|e| e.record)
        .collect()
}

#[test]
fn a_sweep_expands_re_expands_and_draws_more_from_the_same_stream() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tiny_sweep_dir(tmp.path(), |c| c);
    let axes = r#"grid: {"learning_rate": [1e-3, 5e-4], "num_train_epochs": [2.0, 3.0]},
        random: {"warmup_ratio": Uniform(0.0, 0.2), "weight_decay": LogUniform(1e-4, 1e-1)},
        trials: 2, seed: 7, seeds: [42, 43]"#;
    let file = write_sweep(tmp.path(), &format!("{axes}, run_cap: Some(14)"));
    let first = sweep::start(&store, &file).unwrap();
    // 2 × 2 grid points × 2 draws × 2 seeds = 16, capped at 14 runs.
    assert_eq!((first.queued.len(), first.over_cap), (14, 2));
    let recs = records(&store);
    assert_eq!(recs.len(), 14);
    for r in &recs {
        assert_eq!(r.status, RunStatus::Queued);
        let tag = r.sweep.as_ref().expect("the record names its sweep");
        assert_eq!(tag.id, "tiny-sweep");
        let c = r.config.as_ref().unwrap();
        // The config is the point.
        assert_eq!(tag.point["seed"], c.seed.to_string());
        assert_eq!(
            tag.point["learning_rate"].parse::<f64>().unwrap(),
            c.learning_rate
        );
        assert!((0.0..0.2).contains(&c.warmup_ratio));
        assert!((1e-4..1e-1).contains(&c.weight_decay));
    }

    // Started again unchanged: nothing new. Edited (a third epoch count, a
    // higher cap): only the new points.
    assert!(sweep::start(&store, &file).unwrap().queued.is_empty());
    let edited = axes.replace("[2.0, 3.0]", "[2.0, 3.0, 4.0]");
    write_sweep(tmp.path(), &format!("{edited}, run_cap: Some(100)"));
    let second = sweep::start(&store, &file).unwrap();
    assert_eq!(
        second.queued.len(),
        24 - 14,
        "the 2 capped and the 8 of epochs 4"
    );
    assert_eq!(second.existing, 14);

    // Two more draws continue the stream: they are the draws a sweep of
    // four trials makes third and fourth.
    let added = sweep::add(&store, "tiny-sweep", 2).unwrap();
    assert_eq!(added.queued.len(), 2 * 3 * 2 * 2);
    let saved = Sweep::load(&tmp.path().join("store/sweeps/tiny-sweep/sweep.ron")).unwrap();
    let four = expand::points(&saved, 0, 4).unwrap();
    let later: Vec<String> = four
        .iter()
        .filter(|p| p["seed"] == 42 && p["learning_rate"] == 1e-3 && p["num_train_epochs"] == 2.0)
        .skip(2)
        .map(|p| p["warmup_ratio"].to_string())
        .collect();
    let queued_later: Vec<String> = records(&store)
        .iter()
        .filter(|r| added.queued.contains(&r.id))
        .map(|r| r.config.as_ref().unwrap())
        .filter(|c| c.seed == 42 && c.learning_rate == 1e-3 && c.num_train_epochs == 2.0)
        .map(|c| serde_json::Value::from(c.warmup_ratio).to_string())
        .collect();
    let mut sorted = queued_later.clone();
    sorted.sort();
    let mut expected = later.clone();
    expected.sort();
    assert_eq!(sorted, expected);

    // Labels cannot remove a run's sweep.
    let one = &added.queued[0];
    squadlab_json(&[
        "edit",
        one,
        "--name",
        "renamed",
        "--tag",
        "x",
        "--store",
        &store.root.display().to_string(),
    ]);
    let r = RunRecord::load(&store.root.join("runs").join(one)).unwrap();
    assert_eq!(r.name, "renamed");
    assert_eq!(r.sweep.unwrap().id, "tiny-sweep");
}

#[test]
fn a_bad_axis_is_refused_by_name_and_nothing_is_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tiny_sweep_dir(tmp.path(), |c| c);
    for (body, says) in [
        (
            r#"grid: {"lerning_rate": [1e-3]}"#,
            "axis lerning_rate: RunConfig has no field lerning_rate",
        ),
        (
            r#"grid: {"learning_rate": []}"#,
            "axis learning_rate: the grid list is empty",
        ),
        (
            r#"random: {"learning_rate": LogUniform(0.0, 1e-3)}"#,
            "axis learning_rate: LogUniform(0, 0.001) needs bounds above 0",
        ),
        (
            r#"grid: {"per_device_train_batch_size": [8, 1.5]}"#,
            "axis per_device_train_batch_size: the value 1.5 does not fit the field",
        ),
        (r#"grid: {"learning_rate": [1e-3, -1.0]}"#, "learning_rate"),
    ] {
        let file = write_sweep(tmp.path(), body);
        let err = format!("{:#}", sweep::start(&store, &file).unwrap_err());
        assert!(err.contains(says), "{body}: {err}");
        assert!(records(&store).is_empty(), "{body}: nothing queued");
    }
    // Several bases: each must load, and `base` is theirs alone to vary.
    for (base, body, says) in [
        ("Each({})", "", "base: Each({}) names no config"),
        (
            r#"Each({"a": "base.ron", "b": "missing.ron"})"#,
            "",
            "base \"b\"",
        ),
        (
            r#"Each({"a": "base.ron"})"#,
            r#"grid: {"base": ["a"]}"#,
            "axis base: give several bases as `base: Each(",
        ),
        (
            r#"Each({"a": "base.ron", "": "base.ron"})"#,
            "",
            "base: Each has an empty label",
        ),
    ] {
        let file = tmp.path().join("each.ron");
        std::fs::write(
            &file,
            format!("Sweep(name: \"each\", base: {base}, {body})"),
        )
        .unwrap();
        let err = format!("{:#}", sweep::start(&store, &file).unwrap_err());
        assert!(err.contains(says), "{base} {body}: {err}");
        assert!(records(&store).is_empty(), "{base}: nothing queued");
    }
}

#[test]
fn a_sweep_trained_by_workers_reports_its_status_and_best_run() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_sweep_dir(tmp.path(), |c| squadlab::config::RunConfig {
        max_steps: Some(4),
        save_strategy: squadlab::config::SaveStrategy::No,
        ..c
    });
    let root = tmp.path().join("store");
    let root_arg = root.display().to_string();
    let file = write_sweep(
        tmp.path(),
        r#"grid: {"learning_rate": [1e-3, 3e-3]}, seeds: [1, 2]"#,
    );
    let started = squadlab_json(&[
        "sweep",
        "start",
        &file.display().to_string(),
        "--store",
        &root_arg,
    ]);
    assert_eq!(started["queued"].as_array().unwrap().len(), 4);
    let workers: Vec<_> = (0..2).map(|_| spawn_worker(&root, &[])).collect();
    for w in workers {
        assert!(w.wait_with_output().unwrap().status.success());
    }
    let status = squadlab_json(&["sweep", "status", "tiny-sweep", "--store", &root_arg]);
    assert_eq!(status["runs"], 4);
    assert_eq!(status["by_status"]["finished"], 4);
    let best = &status["best"];
    let best_f1 = best["f1"].as_f64().unwrap();
    let store = Store::open(Some(&root));
    let top = records(&store)
        .iter()
        .filter_map(|r| r.outcome.f1)
        .fold(f64::MIN, f64::max);
    // (Read through RON in one process and JSON in the other: equal to print precision.)
    assert!((best_f1 - top).abs() < 1e-9, "best {best_f1}, top {top}");
    // The sweep's table: its four runs, the point's axes among the keys that differ.
    let table = squadlab_json(&[
        "compare",
        "sweep:tiny-sweep",
        "--no-group",
        "--store",
        &root_arg,
    ]);
    assert_eq!(table["runs"].as_array().unwrap().len(), 4);
    let keys: Vec<&str> = table["differing_config"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["key"].as_str())
        .collect();
    assert!(
        keys.contains(&"learning_rate") && keys.contains(&"seed"),
        "{keys:?}"
    );
    let listed = squadlab_json(&["sweep", "ls", "--store", &root_arg]);
    assert_eq!(listed[0]["sweep"], "tiny-sweep");
    assert_eq!(listed[0]["runs"], 4);
}

/// An `#SBATCH` line's words as sbatch reads them (`_get_argument` in
/// Slurm's sbatch/opt.c): split at unquoted whitespace, `"` and `'` quote,
/// `\` escapes the next character, and an unquoted `#` ends the line.
fn sbatch_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            word.get_or_insert_with(String::new).extend(chars.next());
        } else if let Some(q) = quote {
            if c == q {
                quote = None;
            } else {
                word.get_or_insert_with(String::new).push(c);
            }
        } else if c == '"' || c == '\'' {
            quote = Some(c);
            word.get_or_insert_with(String::new);
        } else if c == '#' {
            break;
        } else if c.is_whitespace() {
            words.extend(word.take());
        } else {
            word.get_or_insert_with(String::new).push(c);
        }
    }
    words.extend(word);
    words
}

fn sbatch_files(store: &Store) -> usize {
    let dir = store.root.join("sweeps").join("tiny-sweep");
    std::fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "sbatch"))
            .count()
    })
}

#[test]
fn slurm_inputs_are_quoted_or_refused_by_name_before_anything_is_written() {
    use squadlab::sweep::slurm::SlurmOptions;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a store's folder with spaces");
    std::fs::create_dir_all(&dir).unwrap();
    let store = tiny_sweep_dir(&dir, |c| c);
    let file = write_sweep(&dir, "");
    sweep::start(&store, &file).unwrap();

    // A space (and a quote) in the store's path: Slurm reads the whole path,
    // and bash parses the script.
    let good = SlurmOptions {
        partition: Some("gpu-a100".into()),
        account: Some("proj_1".into()),
        time: Some("1-02:00:00".into()),
        ..SlurmOptions::default()
    };
    let array = sweep::slurm_array(&store, "tiny-sweep", &good, false).unwrap();
    let script = std::fs::read_to_string(&array.script).unwrap();
    let output = script
        .lines()
        .filter_map(|l| l.strip_prefix("#SBATCH"))
        .flat_map(sbatch_words)
        .find(|w| w.starts_with("--output="))
        .unwrap_or_else(|| panic!("no --output in\n{script}"));
    let logs = std::path::absolute(store.root.join("sweeps/tiny-sweep")).unwrap();
    assert_eq!(
        output,
        format!("--output={}/slurm-%A_%a.out", logs.display()),
        "{script}"
    );
    for flag in [
        "--partition=gpu-a100",
        "--account=proj_1",
        "--time=1-02:00:00",
    ] {
        assert!(
            script.contains(&format!("#SBATCH {flag}\n")),
            "{flag}: {script}"
        );
    }
    let parsed = std::process::Command::new("bash")
        .arg("-n")
        .arg(&array.script)
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "bash -n: {}\n{script}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    assert_eq!(sbatch_files(&store), 1);

    // A value that would change the script is refused by its field's name,
    // and no script is written.
    for (options, field) in [
        (
            SlurmOptions {
                partition: Some("debug\n#SBATCH --x".into()),
                ..SlurmOptions::default()
            },
            "slurm.partition",
        ),
        (
            SlurmOptions {
                account: Some("a b".into()),
                ..SlurmOptions::default()
            },
            "slurm.account",
        ),
        (
            SlurmOptions {
                time: Some("1:00;rm".into()),
                ..SlurmOptions::default()
            },
            "slurm.time",
        ),
    ] {
        let err = sweep::slurm_array(&store, "tiny-sweep", &options, false)
            .map(|a| a.script)
            .expect_err(field);
        let err = format!("{err:#}");
        assert!(err.starts_with(&format!("{field}: ")), "{field}: {err}");
        assert_eq!(sbatch_files(&store), 1, "{field}: a script was written");
    }

    // So is a store path with a newline, which no #SBATCH line can hold.
    let dir = tmp.path().join("new\nline");
    std::fs::create_dir_all(&dir).unwrap();
    let store = tiny_sweep_dir(&dir, |c| c);
    sweep::start(&store, &write_sweep(&dir, "")).unwrap();
    let err = sweep::slurm_array(&store, "tiny-sweep", &good, false)
        .map(|a| a.script)
        .expect_err("a newline in the store path");
    let err = format!("{err:#}");
    assert!(
        err.starts_with("slurm --output: ") && err.contains("newline"),
        "{err}"
    );
    assert_eq!(sbatch_files(&store), 0, "a script was written");
}

#[test]
fn sweep_start_refuses_bad_slurm_options_before_queueing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tiny_sweep_dir(tmp.path(), |c| c);
    let file = write_sweep(tmp.path(), "");
    let out = common::squadlab()
        .args(["sweep", "start", "--slurm", "--account", "a b", "--store"])
        .arg(&store.root)
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("slurm.account: "), "{stderr}");
    assert!(records(&store).is_empty(), "runs were queued");
    assert_eq!(sbatch_files(&store), 0, "a script was written");
}

/// The shipped family comparison: four bases, each the family's preset,
/// three seeds each; once trained, one export folds each family's seeds
/// under that family's published rows.
#[test]
fn the_families_sweep_queues_twelve_runs_and_exports_one_family_table() {
    use squadlab::config::RunConfig;
    use squadlab::model::Family;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let root_arg = root.display().to_string();
    let started = squadlab_json(&[
        "sweep",
        "start",
        "experiments/sweeps/families-base.ron",
        "--store",
        &root_arg,
    ]);
    assert_eq!(started["queued"].as_array().unwrap().len(), 12, "{started}");
    let store = Store::open(Some(&root));
    let presets = [
        ("roberta-base", "experiments/roberta-base-squad.ron"),
        ("distilbert-base", "experiments/distilbert-base-squad.ron"),
        ("electra-base", "experiments/electra-base-squad.ron"),
        ("albert-base-v2", "experiments/albert-base-v2-squad.ron"),
    ];
    let mut per_base = std::collections::BTreeMap::<String, Vec<u64>>::new();
    for r in records(&store) {
        let tag = r.sweep.as_ref().unwrap();
        let label: String = ron::from_str(&tag.point["base"]).unwrap();
        let preset = presets.iter().find(|(l, _)| *l == label).unwrap().1;
        let config = r.config.clone().unwrap();
        // The run is its family's preset with the point's seed, nothing else.
        let expected = RunConfig {
            seed: config.seed,
            name: config.name.clone(),
            ..RunConfig::load(Path::new(preset)).unwrap()
        };
        assert_eq!(config, expected, "{label}");
        per_base.entry(label).or_default().push(config.seed);
    }
    for seeds in per_base.values_mut() {
        seeds.sort();
        assert_eq!(seeds, &[42, 43, 44]);
    }
    assert_eq!(per_base.len(), 4);

    // Each run finished with its own scores: family k's F1 is 85 + k + seed − 43.
    let families = [
        Family::Roberta,
        Family::DistilBert,
        Family::Electra,
        Family::Albert,
    ];
    for entry in store.list().unwrap() {
        let mut r = entry.record.unwrap();
        let label: String = ron::from_str(&r.sweep.as_ref().unwrap().point["base"]).unwrap();
        let k = presets.iter().position(|(l, _)| *l == label).unwrap() as f64;
        let seed = r.config.as_ref().unwrap().seed as f64;
        r.status = RunStatus::Finished;
        r.family = Some(families[k as usize]);
        r.outcome.exact_match = Some(77.0 + k + seed - 43.0);
        r.outcome.f1 = Some(85.0 + k + seed - 43.0);
        r.save(&entry.dir).unwrap();
    }

    let table = tmp.path().join("table.json");
    let wrote = squadlab_json(&[
        "export",
        "sweep:families-base",
        "--format",
        "json",
        "--out",
        &table.display().to_string(),
        "--store",
        &root_arg,
    ]);
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&table).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(wrote["rows"], rows.len());
    let refs = squadlab::report::ReferenceResults::builtin();
    // Families in the order of the sweep's runs; under each, its published
    // rows, then one row of its three seeds.
    let mut seen_families = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let family = row["family"].as_str().unwrap().to_string();
        if row["kind"] == "seed_group" {
            assert!(
                rows[i - 1]["family"] == row["family"],
                "a family's published rows sit just above its runs: {rows:?}"
            );
            seen_families.push(family.clone());
            let label = row["label"].as_str().unwrap();
            assert!(
                label.starts_with("families-base [base=\"") && label.ends_with("\"] (3 seeds)"),
                "{label}"
            );
            let k = presets
                .iter()
                .position(|(l, _)| label.contains(&format!("\"{l}\"")))
                .unwrap() as f64;
            let f1 = &row["f1"];
            assert_eq!(f1["n"], 3);
            assert!((f1["mean"].as_f64().unwrap() - (85.0 + k)).abs() < 1e-9);
            assert!((f1["std"].as_f64().unwrap() - 1.0).abs() < 1e-9);
            // 95% t interval, t(0.975, 2) = 4.3027: ± 4.3027 / √3.
            let half = f1["ci95"][1].as_f64().unwrap() - f1["mean"].as_f64().unwrap();
            assert!((half - 4.302_652_729_749_461 / 3f64.sqrt()).abs() < 1e-9);
            // Measured from its own family's paper row at base size.
            let f: Family = serde_json::from_value(row["family"].clone()).unwrap();
            let paper = refs.paper_for(f, "base", "1.1");
            let paper = paper.unwrap_or_else(|| panic!("no paper row for {f:?}"));
            assert_eq!(row["baseline"], paper.id.as_str());
            let delta = row["delta_f1"].as_f64();
            match paper.f1 {
                Some(theirs) => assert!((delta.unwrap() - (85.0 + k - theirs)).abs() < 1e-9),
                // ELECTRA's README gives EM only: no ΔF1.
                None => assert_eq!(delta, None),
            }
            let em = paper.exact_match.unwrap();
            let delta_em = row["delta_exact_match"].as_f64().unwrap();
            assert!((delta_em - (77.0 + k - em)).abs() < 1e-9);
        } else {
            assert_eq!(row["kind"], "reference", "{row}");
        }
    }
    let mut expected: Vec<String> = families
        .iter()
        .map(|f| {
            serde_json::to_value(f)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    expected.sort();
    let mut got = seen_families.clone();
    got.sort();
    assert_eq!(got, expected);
}
