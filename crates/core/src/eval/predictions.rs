//! The official predictions file: one JSON object `{question id: answer text}`.

use super::postprocess::Prediction;
use crate::fsutil::write_atomically;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use std::path::Path;

/// Reads `{id: answer}`; an answer that is not a string, or an id given twice
/// (JSON allows it, and a reader would silently keep one), is an error.
pub fn load_predictions(path: &Path) -> Result<HashMap<String, String>> {
    let origin = path.display();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read predictions {origin}"))?;
    let Entries(entries) = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{origin}:{}:{}: malformed predictions JSON: {e}",
            e.line(),
            e.column()
        )
    })?;
    let mut map = HashMap::with_capacity(entries.len());
    for (id, answer) in entries {
        let serde_json::Value::String(answer) = answer else {
            bail!("{origin}: the answer for id {id:?} must be a string, found {answer}");
        };
        if map.insert(id.clone(), answer).is_some() {
            bail!("{origin}: id {id:?} appears more than once; which answer counts is ambiguous");
        }
    }
    Ok(map)
}

/// A JSON object's entries in file order, duplicates kept; a parse error
/// says where.
pub(super) fn json_entries(text: &str) -> Result<Vec<(String, serde_json::Value)>> {
    let Entries(entries) = serde_json::from_str(text)
        .map_err(|e| anyhow!("{}:{}: malformed JSON: {e}", e.line(), e.column()))?;
    Ok(entries)
}

/// A JSON object's entries in file order, duplicates kept.
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object {\"question id\": \"answer\"}")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        d.deserialize_map(Visitor)
    }
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
