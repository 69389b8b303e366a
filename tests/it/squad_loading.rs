//! Loading SQuAD JSON: every bad record, malformed file and limit gives a clear result.

use squadlab::data::{load_json, LoadOptions};
use std::path::PathBuf;

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn squad(qas: &str, context: &str) -> String {
    format!(
        r#"{{"version": "1.1", "data": [{{"title": "T", "paragraphs": [{{"context": {context:?}, "qas": [{qas}]}}]}}]}}"#
    )
}

fn qa(id: &str, text: &str, start: i64) -> String {
    format!(
        r#"{{"id": "{id}", "question": "What?", "answers": [{{"text": "{text}", "answer_start": {start}}}]}}"#
    )
}

fn load_err(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "bad.json", bytes);
    format!(
        "{:#}",
        load_json(&path, &LoadOptions::default()).unwrap_err()
    )
}

#[test]
fn good_records_load_with_shared_contexts() {
    let dir = tempfile::tempdir().unwrap();
    let qas = [qa("a", "Zoë", 0), qa("b", "café", 9)].join(",");
    let path = write(
        &dir,
        "ok.json",
        squad(&qas, "Zoë owns café Noir").as_bytes(),
    );
    let data = load_json(&path, &LoadOptions::default()).unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data.contexts.len(), 1);
    assert_eq!(data.examples[1].answers[0].answer_start, 9);
    assert_eq!(data.title_of(&data.examples[0]), "T");
}

#[test]
fn malformed_json_gives_its_position() {
    let msg = load_err(b"{\"data\": [\n  {\"title\": \"x\",, }]}");
    assert!(msg.contains("bad.json:2:"), "{msg}");
    assert!(msg.contains("malformed SQuAD JSON"), "{msg}");
    let msg = load_err(br#"{"data": [{"title": "x", "paragraphs": [{"qas": []}]}]}"#);
    assert!(msg.contains("missing field `context`"), "{msg}");
    let msg = load_err(br#"{"data": [{"title": "x", "paragraphs": [{"context": 5, "qas": []}]}]}"#);
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn empty_and_non_utf8_files_are_named() {
    assert!(load_err(b"").contains("the file is empty"));
    let msg = load_err(b"{\"data\": [\"\xff\xfe\"]}");
    assert!(
        msg.contains("not UTF-8") && msg.contains("offset 11"),
        "{msg}"
    );
}

#[test]
fn bad_records_name_their_id() {
    let out_of_range = squad(&qa("q-range", "Noir", 40), "Zoë owns café Noir");
    let msg = load_err(out_of_range.as_bytes());
    assert!(
        msg.contains("bad record \"q-range\"") && msg.contains("outside the context"),
        "{msg}"
    );

    let mismatched = squad(&qa("q-text", "Noir", 3), "Zoë owns café Noir");
    let msg = load_err(mismatched.as_bytes());
    assert!(
        msg.contains("\"q-text\"") && msg.contains("points at \" own\""),
        "{msg}"
    );

    let msg = load_err(squad(&qa("q-empty", "x", 0), "   ").as_bytes());
    assert!(msg.contains("\"q-empty\": empty context"), "{msg}");

    let dup = [qa("same", "Zoë", 0), qa("same", "Zoë", 0)].join(",");
    let msg = load_err(squad(&dup, "Zoë owns café Noir").as_bytes());
    assert!(msg.contains("\"same\": duplicate id"), "{msg}");

    let negative = squad(&qa("q-neg", "Zoë", -1), "Zoë owns café Noir");
    assert!(load_err(negative.as_bytes()).contains("\"q-neg\""));
}

#[test]
fn skip_bad_records_drops_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let qas = [
        qa("good", "Zoë", 0),
        qa("bad", "Noir", 3),
        qa("good2", "Noir", 14),
    ]
    .join(",");
    let path = write(
        &dir,
        "mixed.json",
        squad(&qas, "Zoë owns café Noir").as_bytes(),
    );
    let opts = LoadOptions {
        limit: None,
        skip_bad_records: true,
        ..LoadOptions::default()
    };
    let data = load_json(&path, &opts).unwrap();
    assert_eq!(
        data.examples
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["good", "good2"]
    );
    assert_eq!(data.skipped.len(), 1);
    assert!(data.skipped[0].starts_with("\"bad\""));
}

#[test]
fn limit_keeps_the_first_questions_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let qas = [qa("1", "Zoë", 0), qa("2", "Noir", 14), qa("3", "café", 9)].join(",");
    let path = write(
        &dir,
        "three.json",
        squad(&qas, "Zoë owns café Noir").as_bytes(),
    );
    let data = load_json(
        &path,
        &LoadOptions {
            limit: Some(2),
            skip_bad_records: false,
            ..LoadOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        data.examples
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        ["1", "2"]
    );
}
