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
