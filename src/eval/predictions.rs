//! The official predictions file: one JSON object `{question id: answer text}`.

use super::postprocess::Prediction;
use crate::fsutil::write_atomically;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;

pub fn load_predictions(path: &Path) -> Result<HashMap<String, String>> {
    let origin = path.display();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read predictions {origin}"))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{origin}:{}:{}: malformed predictions JSON: {e}",
            e.line(),
            e.column()
        )
    })?;
    let serde_json::Value::Object(map) = value else {
        bail!("{origin}: predictions must be a JSON object {{\"question id\": \"answer\"}}");
    };
    map.into_iter()
        .map(|(id, answer)| match answer {
            serde_json::Value::String(s) => Ok((id, s)),
            other => bail!("{origin}: the answer for id {id:?} must be a string, found {other}"),
        })
        .collect()
}

/// Writes `{id: answer}` in question order, atomically.
pub fn write_predictions(path: &Path, predictions: &[Prediction]) -> Result<()> {
    let map: serde_json::Map<String, serde_json::Value> = predictions
        .iter()
        .map(|p| (p.id.clone(), serde_json::Value::String(p.text.clone())))
        .collect();
    write_atomically(path, &serde_json::to_vec(&map)?)
}

/// Writes `{id: [{text, score, start_char, end_char}, …]}`, best first, atomically.
pub fn write_nbest(path: &Path, predictions: &[Prediction]) -> Result<()> {
    let map = predictions
        .iter()
        .map(|p| Ok((p.id.clone(), serde_json::to_value(&p.nbest)?)))
        .collect::<Result<serde_json::Map<String, serde_json::Value>>>()?;
    write_atomically(path, &serde_json::to_vec(&map)?)
}
