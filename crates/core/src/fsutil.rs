//! File writes that a crash or a reader never sees half done.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Writes a temp file beside `path`, syncs it, then renames it into place.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// `path` with `.tmp` appended: the staging name for an atomic write.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Flushes every file directly inside `dir`, then the folder itself, to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let sync = |p: &Path| std::fs::File::open(p).and_then(|f| f.sync_all());
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            sync(&path).with_context(|| format!("cannot sync {}", path.display()))?;
        }
    }
    sync(dir).with_context(|| format!("cannot sync {}", dir.display()))
}

/// Serializes `value` as pretty RON (nested `depth` levels, then one line
/// each) and writes it atomically.
pub fn write_ron<T: serde::Serialize>(path: &Path, value: &T, depth: usize) -> Result<()> {
    let pretty = ron::ser::PrettyConfig::new()
        .struct_names(true)
        .depth_limit(depth);
    let text = ron::ser::to_string_pretty(value, pretty)
        .with_context(|| format!("cannot serialize {}", path.display()))?;
    write_atomically(path, text.as_bytes())
}

/// Reads a RON file; a parse error names `path:line:col`.
pub fn read_ron<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    ron::Options::default().from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}:{}:{}: {}",
            path.display(),
            e.span.start.line,
            e.span.start.col,
            e.code
        )
    })
}

/// Renames `dir` to a hidden `.deleting-NAME` beside it (clearing one an
/// earlier crash left), so a listing or a resume never sees it half deleted;
/// returns where it now is.
pub fn hide_for_deletion(dir: &Path) -> std::io::Result<PathBuf> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let trash = dir.with_file_name(format!(".deleting-{name}"));
    if trash.exists() {
        std::fs::remove_dir_all(&trash)?;
    }
    std::fs::rename(dir, &trash)?;
    Ok(trash)
}

/// Deletes a folder, hidden first: a process killed mid-delete leaves
/// nothing partial under the real name.
pub fn remove_dir_hidden_first(dir: &Path) -> std::io::Result<()> {
    std::fs::remove_dir_all(hide_for_deletion(dir)?)
}

/// Flushes a folder's entries (a rename into it) to disk.
pub fn sync_dir_only(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}
