//! The bad-input corpus: every kind of broken file a researcher may point the
//! app at, fed to the real binary. Each must fail with a message naming the
//! file and what is wrong in it, exit with an error (never a panic), and
//! leave no output file behind.

use crate::common;

use common::{squadlab, tiny_task};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Runs the binary, which must fail cleanly; returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = squadlab().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} must fail with 1: {err}"
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    err
}

fn contains_all(err: &str, parts: &[&str]) {
    for part in parts {
        assert!(err.contains(part), "expected {part:?} in: {err}");
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Task {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    json: PathBuf,
    model: PathBuf,
}

fn task() -> Task {
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    Task {
        dir: tmp.path().to_path_buf(),
        _tmp: tmp,
        json,
        model,
    }
}

/// `squadlab features` on `data`, dumping windows to a file that must not appear.
fn features_fail(t: &Task, data: &Path, extra: &[&str]) -> String {
    features_fail_with(t, data, &t.model, extra)
}

fn features_fail_with(t: &Task, data: &Path, tokenizer: &Path, extra: &[&str]) -> String {
    let dump = t.dir.join("windows.jsonl");
    let mut args = vec![
        "features",
        "--data",
        s(data),
        "--tokenizer",
        s(tokenizer),
        "--max-length",
        "64",
        "--stride",
        "16",
        "--dump",
        s(&dump),
    ];
    args.extend_from_slice(extra);
    let err = fails(&args);
    assert!(!dump.exists(), "no partial dump for {}", data.display());
    err
}

fn squad_with(context: serde_json::Value, qa: serde_json::Value) -> serde_json::Value {
    json!({"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": [qa]}]}]})
}

/// The context "it is red ." with one answer "red" said to start at `start`.
fn red_at(start: serde_json::Value) -> Vec<u8> {
    red_at_with_text("red", start)
}

fn red_at_with_text(text: &str, start: impl Into<serde_json::Value>) -> Vec<u8> {
    let qa = json!({"id": "q1", "question": "what ?", "answers": [{"text": text, "answer_start": start.into()}]});
    serde_json::to_vec(&squad_with(json!("it is red ."), qa)).unwrap()
}

fn good_qa() -> serde_json::Value {
    json!({"id": "q1", "question": "what color is it ?", "answers": [{"text": "red", "answer_start": 6}]})
}

#[test]
fn broken_squad_files_are_named_with_what_is_wrong() {
    let t = task();
    let write = |name: &str, bytes: &[u8]| {
        let path = t.dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let good = std::fs::read(&t.json).unwrap();
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "truncated.json",
            good[..good.len() / 2].to_vec(),
            vec!["truncated.json:1:", "malformed SQuAD JSON", "EOF"],
        ),
        (
            "zero.json",
            Vec::new(),
            vec!["zero.json", "the file is empty"],
        ),
        (
            "latin1.json",
            b"{\"data\": [{\"title\": \"caf\xe9\"}]}".to_vec(),
            vec!["latin1.json", "not UTF-8", "offset 24"],
        ),
        (
            "wrong-type.json",
            red_at(json!("6")),
            vec![
                "wrong-type.json:1:",
                "invalid type: string \"6\", expected i64",
            ],
        ),
        (
            "context-number.json",
            serde_json::to_vec(&squad_with(json!(42), good_qa())).unwrap(),
            vec!["context-number.json:1:", "invalid type: integer `42`"],
        ),
        (
            "missing-key.json",
            serde_json::to_vec(&squad_with(
                json!("it is red ."),
                json!({"id": "q1", "answers": [{"text": "red", "answer_start": 6}]}),
            ))
            .unwrap(),
            vec!["missing-key.json:1:", "missing field `question`"],
        ),
        (
            "no-data.json",
            br#"{"version": "1.1"}"#.to_vec(),
            vec!["no-data.json:1:", "missing field `data`"],
        ),
        (
            "out-of-range.json",
            red_at(json!(40)),
            vec![
                "out-of-range.json",
                "bad record \"q1\"",
                "answer_start 40",
                "outside the context of 11 chars",
            ],
        ),
        (
            "negative.json",
            red_at(json!(-3)),
            vec!["negative.json", "answer_start -3"],
        ),
        (
            "mismatch.json",
            red_at(json!(3)),
            vec![
                "mismatch.json",
                "\"q1\"",
                "answer_start 3 points at \"is \"",
                "not at the answer text \"red\"",
            ],
        ),
        (
            "empty-answer.json",
            red_at_with_text("", 0),
            vec!["empty-answer.json", "\"q1\"", "answer 0: empty text"],
        ),
        (
            "empty-context.json",
            serde_json::to_vec(&squad_with(json!("  "), good_qa())).unwrap(),
            vec!["empty-context.json", "\"q1\"", "empty context"],
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = write(name, &bytes);
        let err = features_fail(&t, &path, &[]);
        contains_all(&err, &expected);
    }
}

/// Peak resident memory of a finished child, from `wait4`, in MiB.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its rusage
fn run_measuring_peak_rss(cmd: &mut std::process::Command) -> (i32, String, f64) {
    let child = cmd
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain integers, for which all zeroes is a value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the child is ours and not yet reaped; both pointers are to locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, err, usage.ru_maxrss as f64 / 1024.0)
}

#[test]
fn a_200_mb_context_fails_in_bounded_memory_naming_the_setting() {
    use std::io::Write;
    let t = task();
    let huge = t.dir.join("huge.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&huge).unwrap());
    write!(
        f,
        "{{\"data\": [{{\"title\": \"t\", \"paragraphs\": [{{\"context\": \""
    )
    .unwrap();
    let block = "the red cat is here . ".repeat(1000);
    let mut written = 0;
    while written < 200 << 20 {
        f.write_all(block.as_bytes()).unwrap();
        written += block.len();
    }
    write!(
        f,
        "\", \"qas\": [{{\"id\": \"q1\", \"question\": \"what ?\", \"answers\": [{{\"text\": \"the\", \"answer_start\": 0}}]}}]}}]}}]}}"
    )
    .unwrap();
    f.flush().unwrap();
    drop(f);
    assert!(std::fs::metadata(&huge).unwrap().len() > 200 << 20);

    let dump = t.dir.join("windows.jsonl");
    let (code, err, peak_mib) = run_measuring_peak_rss(squadlab().args([
        "features",
        "--data",
        s(&huge),
        "--tokenizer",
        s(&t.model),
        "--max-length",
        "64",
        "--stride",
        "16",
        "--dump",
        s(&dump),
    ]));
    assert_eq!(code, 1, "{err}");
    contains_all(
        &err,
        &[
            "huge.json:1:53",
            "more than 1000000 characters",
            "max_context_chars",
        ],
    );
    assert!(!dump.exists());
    eprintln!("peak RSS on the 200 MB file: {peak_mib:.1} MiB");
    assert!(
        peak_mib < 100.0,
        "the file is scanned, not loaded: peak RSS {peak_mib:.1} MiB"
    );

    // The limit is a setting: raised, a long (but not huge) context windows correctly.
    let long_context = "the red cat is here . ".repeat(60);
    let long = t.dir.join("long.json");
    let answer_start = long_context.find("red").unwrap();
    std::fs::write(
        &long,
        serde_json::to_vec(&squad_with(
            json!(long_context),
            json!({"id": "q1", "question": "what color ?", "answers": [{"text": "red", "answer_start": answer_start}]}),
        ))
        .unwrap(),
    )
    .unwrap();
    let err = features_fail(&t, &long, &["--max-context-chars", "0"]);
    contains_all(&err, &["--max-context-chars must be at least 1"]);
    let err = features_fail(&t, &long, &["--max-context-chars", "1000"]);
    contains_all(&err, &["long.json", "more than 1000 characters"]);
    let ok = common::squadlab_json(&[
        "features",
        "--data",
        s(&long),
        "--tokenizer",
        s(&t.model),
        "--max-length",
        "64",
        "--stride",
        "16",
        "--max-context-chars",
        "2000",
    ]);
    // 6 tokens per sentence × 60, windows of 64 − 6 question/special tokens, stride 16.
    assert_eq!(ok["windows"], 9, "{ok}");
}

#[test]
fn broken_configs_name_the_file_the_place_and_the_field() {
    let t = task();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown-key.ron",
            "RunConfig(\n    learning_rate: 3e-5,\n    epochs: 3,\n)".into(),
            vec!["unknown-key.ron:3:", "Unexpected field named `epochs`"],
        ),
        (
            "wrong-type.ron",
            "RunConfig(\n    max_seq_length: \"384\",\n)".into(),
            vec!["wrong-type.ron:2:", "Expected integer"],
        ),
        (
            "nested-unknown.ron",
            "RunConfig(\n    data: (\n        trian: \"x.json\",\n    ),\n)".into(),
            vec!["nested-unknown.ron:3:", "Unexpected field named `trian`"],
        ),
        (
            "out-of-range.ron",
            "RunConfig(\n    doc_stride: 500,\n    adam_beta2: 1.5,\n    data: (max_context_chars: 0),\n)"
                .into(),
            vec![
                "out-of-range.ron",
                "doc_stride (500) must be smaller than max_seq_length (384)",
                "adam_beta2 must be in [0, 1), got 1.5",
                "data.max_context_chars must be at least 1, got 0",
            ],
        ),
        (
            "missing-file.ron",
            "RunConfig(\n    data: (train: \"/nonexistent/train.json\"),\n)".into(),
            vec![
                "missing-file.ron",
                "data.train: file /nonexistent/train.json does not exist",
            ],
        ),
        (
            "bad-device.ron",
            "RunConfig(\n    device: \"tpu\",\n)".into(),
            vec!["bad-device.ron:2:", "unknown device \"tpu\""],
        ),
        (
            "bad-hub-id.ron",
            "RunConfig(\n    model: \"hub:../../etc/passwd\",\n)".into(),
            vec!["bad-hub-id.ron:2:", "../../etc/passwd"],
        ),
        (
            "truncated.ron",
            "RunConfig(\n    learning_rate: 3e-5,\n".into(),
            vec!["truncated.ron:2:", "Unexpected end of RON"],
        ),
    ];
    for (name, text, expected) in cases {
        let path = t.dir.join(name);
        std::fs::write(&path, text).unwrap();
        let err = fails(&["check-config", s(&path)]);
        contains_all(&err, &expected);
        // And `train` refuses it before creating any run.
        let store = t.dir.join("store");
        let err = fails(&["train", s(&path), "--store", s(&store)]);
        contains_all(&err, &[name]);
        assert!(!store.join("runs").exists(), "{name}: no run folder made");
    }
    let err = fails(&["check-config", s(&t.dir.join("absent.ron"))]);
    contains_all(&err, &["cannot read config", "absent.ron"]);
}

/// `squadlab eval` of a broken model folder; no predictions may be written.
fn eval_fails(t: &Task, model: &Path) -> String {
    let out = t.dir.join("pred.json");
    let err = fails(&[
        "eval",
        "--model",
        s(model),
        "--data",
        s(&t.json),
        "--max-length",
        "64",
        "--stride",
        "16",
        "--device",
        "cpu",
        "--out",
        s(&out),
    ]);
    assert!(!out.exists(), "no predictions from {}", model.display());
    err
}

/// A copy of the tiny model folder, changed by `change`.
fn broken_model(t: &Task, name: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let dir = t.dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&t.model).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    change(&dir);
    dir
}

fn edit_config(dir: &Path, key: &str, value: serde_json::Value) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config[key] = value;
    std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
}

#[test]
fn broken_model_folders_name_the_file_and_tensor() {
    let t = task();
    let no_config = broken_model(&t, "no-config", |d| {
        std::fs::remove_file(d.join("config.json")).unwrap()
    });
    contains_all(&eval_fails(&t, &no_config), &["no-config", "config.json"]);

    let truncated = broken_model(&t, "truncated", |d| {
        let weights = d.join("model.safetensors");
        let bytes = std::fs::read(&weights).unwrap();
        std::fs::write(&weights, &bytes[..bytes.len() * 2 / 3]).unwrap();
    });
    contains_all(
        &eval_fails(&t, &truncated),
        &[
            "truncated/model.safetensors",
            "not a readable safetensors file",
        ],
    );

    let reshaped = broken_model(&t, "reshaped", |d| {
        edit_config(d, "intermediate_size", json!(96))
    });
    contains_all(
        &eval_fails(&t, &reshaped),
        &[
            "bert.encoder.layer.0.intermediate.dense.weight has shape [128, 64]",
            "[96, 64]",
        ],
    );

    let bigger_vocab = broken_model(&t, "bigger-vocab", |d| {
        let mut vocab = std::fs::read_to_string(d.join("vocab.txt")).unwrap();
        for extra in 0..20 {
            vocab.push_str(&format!("extra{extra}\n"));
        }
        std::fs::write(d.join("vocab.txt"), vocab).unwrap();
    });
    contains_all(
        &eval_fails(&t, &bigger_vocab),
        &[
            "tokens but the model's vocab_size is",
            "do not belong together",
        ],
    );

    let relu = broken_model(&t, "relu", |d| edit_config(d, "hidden_act", json!("relu")));
    contains_all(
        &eval_fails(&t, &relu),
        &["relu/config.json", "hidden_act \"relu\" is not supported"],
    );

    let bad_json = broken_model(&t, "bad-config-json", |d| {
        std::fs::write(d.join("config.json"), b"{\"hidden_size\": 64,").unwrap()
    });
    contains_all(&eval_fails(&t, &bad_json), &["bad-config-json/config.json"]);
}

/// A pickle that runs `touch pickle-code-ran` under Python's `pickle.load`
/// (checked by hand with Python). candle's reader only rebuilds tensors.
#[test]
fn a_malicious_pickle_is_read_as_data_never_run() {
    let t = task();
    let evil = broken_model(&t, "evil", |d| {
        std::fs::remove_file(d.join("model.safetensors")).unwrap();
        std::fs::copy(
            "tests/fixtures/evil_pickle/pytorch_model.bin",
            d.join("pytorch_model.bin"),
        )
        .unwrap();
    });
    let out = squadlab()
        .current_dir(&t.dir)
        .args([
            "eval",
            "--model",
            s(&evil),
            "--data",
            s(&t.json),
            "--max-length",
            "64",
            "--stride",
            "16",
            "--device",
            "cpu",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("evil/pytorch_model.bin"), "{err}");
    for dir in [&t.dir, &evil] {
        assert!(!dir.join("pickle-code-ran").exists(), "the pickle ran code");
    }
}

#[test]
fn broken_tokenizers_are_named() {
    let t = task();
    let corrupt = t.dir.join("corrupt-tokenizer.json");
    std::fs::write(
        &corrupt,
        b"{\"model\": {\"type\": \"WordPiece\", \"vocab\": ",
    )
    .unwrap();
    contains_all(
        &features_fail_with(&t, &t.json, &corrupt, &[]),
        &["corrupt-tokenizer.json"],
    );

    let no_sep = t.dir.join("no-sep-tokenizer.json");
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100,
                  "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "red": 3, "the": 4}}
    });
    std::fs::write(&no_sep, serde_json::to_vec(&tokenizer).unwrap()).unwrap();
    contains_all(
        &features_fail_with(&t, &t.json, &no_sep, &[]),
        &["no-sep-tokenizer.json", "has no [SEP] token"],
    );

    let no_cls = t.dir.join("vocab-no-cls.txt");
    std::fs::write(&no_cls, "[PAD]\n[UNK]\n[SEP]\nred\n").unwrap();
    contains_all(
        &features_fail_with(&t, &t.json, &no_cls, &[]),
        &["vocab-no-cls.txt", "has no [CLS] token"],
    );
}

#[test]
fn broken_prediction_files_are_named_and_unknown_ids_warn() {
    let t = task();
    let score = |name: &str, text: &str, extra: &[&str]| {
        let path = t.dir.join(name);
        std::fs::write(&path, text).unwrap();
        let mut args = vec!["score", "--data", s(&t.json), "--predictions"];
        let p = path.to_str().unwrap().to_string();
        args.push(Box::leak(p.into_boxed_str()));
        args.extend_from_slice(extra);
        squadlab().args(&args).output().unwrap()
    };
    let failed = |out: std::process::Output| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        err
    };
    contains_all(
        &failed(score("number.json", r#"{"q0": "red", "q1": 7}"#, &[])),
        &[
            "number.json",
            "answer for id \"q1\" must be a string, found 7",
        ],
    );
    contains_all(
        &failed(score("null.json", r#"{"q0": null}"#, &[])),
        &[
            "null.json",
            "answer for id \"q0\" must be a string, found null",
        ],
    );
    contains_all(
        &failed(score(
            "dup.json",
            r#"{"q0": "red", "q1": "blue", "q0": "green"}"#,
            &[],
        )),
        &["dup.json", "id \"q0\" appears more than once"],
    );
    contains_all(
        &failed(score("list.json", r#"["red"]"#, &[])),
        &["list.json:1:", "a JSON object"],
    );
    contains_all(
        &failed(score("cut.json", r#"{"q0": "re"#, &[])),
        &["cut.json:1:", "malformed predictions JSON"],
    );

    // As the official script: unknown ids are ignored, with a warning.
    let text = r#"{"q0": "red", "nope": "x", "zzz": "y"}"#;
    let out = score("unknown.json", text, &["--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("ignored 2 predictions whose ids are not in the data"),
        "{err}"
    );
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["total"], 48);
    assert!(j["exact_match"].as_f64().unwrap() < 100.0);
    // --strict makes them an error naming them.
    contains_all(
        &failed(score("unknown.json", text, &["--strict"])),
        &[
            "unknown.json",
            "2 ids are not questions",
            "\"nope\", \"zzz\"",
            "--strict",
        ],
    );
}

#[test]
fn run_specs_never_reach_outside_the_store() {
    let t = task();
    let store = t.dir.join("store");
    let runs = store.join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    // A run folder *outside* the store, which `rm` must not touch.
    let outside = t.dir.join("outside-run");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("run.ron"), "RunRecord(id: \"outside-run\")").unwrap();
    for spec in [
        "..",
        ".",
        "../..",
        "/",
        "../outside-run",
        s(&outside),
        "/etc",
    ] {
        let err = fails(&["rm", spec, "--yes", "--store", s(&store)]);
        assert!(
            err.contains("no run") || err.contains("is not a run of the store"),
            "{spec}: {err}"
        );
    }
    assert!(outside.join("run.ron").is_file() && store.is_dir() && t.json.is_file());
    for spec in ["..", "../..", "/etc"] {
        let err = fails(&["show", spec, "--store", s(&store)]);
        assert!(err.contains("no run"), "{spec}: {err}");
    }
    // A name is a label, never a path: the folder is the run's id.
    let err = fails(&[
        "train",
        "/nonexistent.ron",
        "--name",
        "../../escape",
        "--store",
        s(&store),
    ]);
    assert!(err.contains("nonexistent.ron"), "{err}");
    assert!(!t.dir.join("escape").exists());
}

#[test]
fn hub_ids_are_validated_before_any_download() {
    let t = task();
    for (model, expected) in [
        ("hub:../../etc", "../../etc"),
        ("hub:a/b/c", "a/b/c"),
        ("hub:bad id", "bad id"),
        ("hub:", "invalid hub id \"\""),
    ] {
        let err = fails(&[
            "eval",
            "--model",
            model,
            "--data",
            s(&t.json),
            "--device",
            "cpu",
        ]);
        contains_all(&err, &[expected]);
    }
    let err = fails(&["features", "--data", "hub:../x", "--tokenizer", s(&t.model)]);
    contains_all(&err, &["--data", "../x"]);
}
