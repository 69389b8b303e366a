//! The hub code path for SQuAD, run against a local folder laid out like the
//! Hugging Face cache (no network): `datasets--rajpurkar--squad/refs/main` and
//! `snapshots/<commit>/plain_text/*.parquet`. One test, since it sets env vars.

use crate::common;

use squadlab::config::DataSource;
use squadlab::data::{load_source, LoadOptions, Split};

pub fn hub_dataset_loads_from_the_cache_and_offline_misses_say_what_to_fetch() {
    let cache = tempfile::tempdir().unwrap();
    let snapshot =
        common::fake_hub_repo(cache.path(), "datasets--rajpurkar--squad").join("plain_text");
    std::fs::create_dir_all(&snapshot).unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hub_squad/plain_text/validation-00000-of-00001.parquet"
    );
    std::fs::copy(fixture, snapshot.join("validation-00000-of-00001.parquet")).unwrap();
    std::env::set_var("HF_HUB_CACHE", cache.path());
    std::env::set_var("HF_HUB_OFFLINE", "1");

    let source = DataSource::hub("rajpurkar/squad");
    let data = load_source(&source, Split::Validation, &LoadOptions::default()).unwrap();
    assert_eq!(data.len(), 4);
    assert_eq!(
        data.contexts.len(),
        2,
        "contexts shared by their questions are stored once"
    );
    let q2 = &data.examples[1];
    assert_eq!(q2.id, "q2");
    assert_eq!(
        q2.answers
            .iter()
            .map(|a| a.text.as_str())
            .collect::<Vec<_>>(),
        ["Basel", "Strasbourg"]
    );
    let q3 = &data.examples[2];
    assert_eq!(
        (q3.answers[0].text.as_str(), q3.answers[0].answer_start),
        ("Zoë Müller", 0)
    );
    assert_eq!(data.title_of(q3), "Café");

    let limited = load_source(
        &source,
        Split::Validation,
        &LoadOptions {
            limit: Some(3),
            skip_bad_records: false,
            ..LoadOptions::default()
        },
    );
    assert_eq!(limited.unwrap().len(), 3);

    // The train split is not in this cache: offline, the error says what to fetch and where.
    let err = format!(
        "{:#}",
        load_source(&source, Split::Train, &LoadOptions::default()).unwrap_err()
    );
    assert!(
        err.contains("plain_text/train-00000-of-00001.parquet"),
        "{err}"
    );
    assert!(err.contains("HF_HUB_OFFLINE"), "{err}");
    assert!(err.contains("datasets--rajpurkar--squad"), "{err}");

    // A file in the cache that is not parquet is named in the error.
    std::fs::write(
        snapshot.join("validation-00000-of-00001.parquet"),
        b"not parquet",
    )
    .unwrap();
    let err = format!(
        "{:#}",
        load_source(&source, Split::Validation, &LoadOptions::default()).unwrap_err()
    );
    assert!(
        err.contains("validation-00000-of-00001.parquet") && err.contains("not a readable parquet"),
        "{err}"
    );
    squad_v2_loads_from_its_own_folder(cache.path());
}

/// `hub:rajpurkar/squad_v2` from a cache in the hub's layout (`squad_v2/`):
/// empty answer lists are unanswerable questions, refused by a v1.1 load
/// with the hint, kept by a v2 one. Run in the test above's process.
fn squad_v2_loads_from_its_own_folder(cache: &std::path::Path) {
    let snapshot = common::fake_hub_repo(cache, "datasets--rajpurkar--squad_v2").join("squad_v2");
    std::fs::create_dir_all(&snapshot).unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hub_squad_v2/squad_v2/validation-00000-of-00001.parquet"
    );
    std::fs::copy(fixture, snapshot.join("validation-00000-of-00001.parquet")).unwrap();
    let source = DataSource::hub("rajpurkar/squad_v2");
    let err = format!(
        "{:#}",
        load_source(&source, Split::Validation, &LoadOptions::default()).unwrap_err()
    );
    assert!(err.contains("version_2_with_negative: true"), "{err}");
    let v2 = LoadOptions {
        version_2_with_negative: true,
        ..LoadOptions::default()
    };
    let data = load_source(&source, Split::Validation, &v2).unwrap();
    assert_eq!(data.len(), 40);
    assert!(data.is_v2());
    // The same questions as the official file's first 40, answers and all.
    if let Some(dev) = common::squad2_file("dev-v2.0.json") {
        let json = squadlab::data::load_json(
            &dev,
            &LoadOptions {
                limit: Some(40),
                ..v2.clone()
            },
        )
        .unwrap();
        for (a, b) in data.examples.iter().zip(&json.examples) {
            assert_eq!(
                (&a.id, &a.question, &a.answers),
                (&b.id, &b.question, &b.answers)
            );
        }
        let impossible = data.examples.iter().filter(|e| e.is_impossible()).count();
        assert_eq!(
            impossible,
            json.examples.iter().filter(|e| e.is_impossible()).count()
        );
        assert_eq!(impossible, 23);
    }
}
