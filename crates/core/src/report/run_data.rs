//! The questions a run was scored on, with their passages and gold answers:
//! read again from the validation file its record names, else from its
//! config's source (a hub dataset in the cache), with the run's SQuAD version
//! and article range.

use crate::data::{load_json, load_source, LoadOptions, Split, SquadDataset, SQUAD_V2};
use crate::store::RunRecord;
use anyhow::{anyhow, Result};
use std::path::Path;

pub fn eval_dataset(record: &RunRecord) -> Result<SquadDataset> {
    let config = record.config.as_ref();
    let options = LoadOptions {
        limit: None,
        skip_bad_records: true,
        version_2_with_negative: record.squad_version() == SQUAD_V2,
        articles: config
            .and_then(|c| c.data.eval_articles)
            .map(|(from, to)| from..to),
        ..LoadOptions::default()
    };
    let validation = record.data.iter().find(|d| d.split == "validation");
    match validation.filter(|d| d.path.ends_with(".json") && Path::new(&d.path).is_file()) {
        Some(file) => load_json(Path::new(&file.path), &options),
        None => {
            let config = config.ok_or_else(|| {
                anyhow!(
                    "run {} records no validation file that exists here{}",
                    record.id,
                    validation.map_or(String::new(), |d| format!(" (it used {})", d.path))
                )
            })?;
            load_source(&config.data.validation, Split::Validation, &options)
        }
    }
}
