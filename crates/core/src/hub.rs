//! The Hugging Face hub: models and datasets are fetched with hf-hub into the
//! standard cache, which honours `HF_HUB_CACHE`, `HF_HOME` and `HF_HUB_OFFLINE`.

use anyhow::{bail, Context, Result};
use hf_hub::{api::sync::ApiBuilder, Cache, Repo, RepoType};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoKind {
    Model,
    Dataset,
}

/// A repository on the hub, e.g. `google-bert/bert-base-uncased` or `rajpurkar/squad@main`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubRepo {
    pub kind: RepoKind,
    pub id: String,
    pub revision: Option<String>,
}

impl HubRepo {
    /// Parses `id[@revision]`, rejecting anything that is not a valid hub id.
    pub fn parse(kind: RepoKind, spec: &str) -> Result<Self> {
        let (id, revision) = match spec.split_once('@') {
            Some((id, rev)) => (id, Some(rev.to_string())),
            None => (spec, None),
        };
        validate_repo_id(id)?;
        if let Some(rev) = &revision {
            let ok = !rev.is_empty()
                && !rev.contains("..")
                && rev
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
            if !ok {
                bail!("invalid hub revision {rev:?} in {spec:?}");
            }
        }
        Ok(Self {
            kind,
            id: id.to_string(),
            revision,
        })
    }

    fn repo(&self) -> Repo {
        let kind = match self.kind {
            RepoKind::Model => RepoType::Model,
            RepoKind::Dataset => RepoType::Dataset,
        };
        match &self.revision {
            Some(rev) => Repo::with_revision(self.id.clone(), kind, rev.clone()),
            None => Repo::new(self.id.clone(), kind),
        }
    }

    /// The file if it is already in the local cache.
    pub fn cached(&self, filename: &str) -> Option<PathBuf> {
        cache().repo(self.repo()).get(filename)
    }

    /// The file from the cache, else downloaded into it (unless offline).
    pub fn fetch(&self, filename: &str) -> Result<PathBuf> {
        if let Some(path) = self.cached(filename) {
            return Ok(path);
        }
        let cache = cache();
        let where_ = cache.path().join(self.repo().folder_name());
        if offline() {
            bail!(
                "{} is not in the hub cache and HF_HUB_OFFLINE is set: fetch it on a machine with \
                 network (`hf download {}{} {filename}`) and copy the cache folder to {}, \
                 or point squadlab at a local folder",
                self.describe(filename),
                if self.kind == RepoKind::Dataset {
                    "--repo-type dataset "
                } else {
                    ""
                },
                self.id,
                where_.display()
            );
        }
        let api = ApiBuilder::from_cache(cache).with_progress(false).build()?;
        api.repo(self.repo()).get(filename).with_context(|| {
            format!(
                "could not download {} into {}; on a machine without network, copy a hub cache \
                 holding it there and set HF_HUB_OFFLINE=1",
                self.describe(filename),
                where_.display()
            )
        })
    }

    fn describe(&self, filename: &str) -> String {
        let kind = match self.kind {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        };
        format!("{filename} of the hub {kind} {}", self.id)
    }
}

/// The hub cache folder, as Python's huggingface_hub finds it.
pub fn cache() -> Cache {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(dir) if !dir.is_empty() => Cache::new(PathBuf::from(dir)),
        _ => Cache::from_env(),
    }
}

/// `HF_HUB_OFFLINE=1` (or true/yes/on) forbids network access.
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

/// Hub ids are `name` or `owner/name` of ASCII letters, digits, `-`, `_` and `.`.
pub fn validate_repo_id(id: &str) -> Result<()> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && !p.starts_with(['.', '-'])
            && !p.contains("..")
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() > 2 || !parts.iter().all(|p| part_ok(p)) {
        bail!("invalid hub id {id:?}: expected `name` or `owner/name` of letters, digits, `-`, `_` and `.`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_are_validated() {
        assert!(HubRepo::parse(RepoKind::Model, "google-bert/bert-base-uncased").is_ok());
        assert!(HubRepo::parse(RepoKind::Dataset, "rajpurkar/squad@main").is_ok());
        for bad in ["../etc", "a/b/c", "", "/abs", "a b", "x/..", "a@"] {
            assert!(
                HubRepo::parse(RepoKind::Model, bad).is_err(),
                "{bad} accepted"
            );
        }
    }
}
