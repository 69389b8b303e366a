//! File writes that a crash or a reader never sees half done, and the
//! temporaries a killed writer leaves.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The prefix of every temporary file squadlab writes: a writer killed
/// mid-write leaves one, and `remove_stale_temporaries` knows it by name.
pub const TEMP_PREFIX: &str = ".squadlab-tmp-";

/// No write of squadlab's takes this long: a temporary file not touched for
/// this many seconds belongs to a writer that is gone, on whatever host.
pub const TEMP_STALE_AFTER_SECS: u64 = 3600;

/// The prefix of this process's temporary files: `TEMP_PREFIX`, then its pid
/// and host, so that one left by a process of this host that has died is
/// known at once.
pub fn temp_prefix() -> String {
    format!(
        "{TEMP_PREFIX}{}@{}@",
        std::process::id(),
        crate::host::hostname()
    )
}

/// Whether a temporary file (by name and age) can have no live writer: its
/// pid is gone on this host, or it is older than any write takes.
fn temp_is_stale(name: &str, age_secs: u64) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let mut parts = rest.splitn(3, '@');
    let (pid, host) = (parts.next(), parts.next());
    let dead_here = match (pid.and_then(|p| p.parse::<u32>().ok()), host) {
        (Some(pid), Some(host)) => host == crate::host::hostname() && !crate::host::pid_alive(pid),
        _ => false,
    };
    dead_here || age_secs >= TEMP_STALE_AFTER_SECS
}

/// Writes `bytes` to a temporary file of its own beside `path` (so two
/// writers of one file never share one), syncs it, renames it into place,
/// then syncs the folder so the rename survives a power cut.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_of(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix())
        .tempfile_in(dir)
        .with_context(|| {
            format!(
                "cannot write {}: no temporary file in {}",
                path.display(),
                dir.display()
            )
        })?;
    let write = |f: &mut std::fs::File| -> std::io::Result<()> {
        use std::io::Write;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write(tmp.as_file_mut()).with_context(|| format!("cannot write {}", tmp.path().display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    sync_dir_only(dir)
}

/// A fresh temporary name beside `path`, for writers that need a path
/// rather than bytes (safetensors): unique to this process and call.
pub fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    parent_of(path).join(format!(
        "{}{name}-{}",
        temp_prefix(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes the temporary files (by `TEMP_PREFIX`) under `dir`, `depth`
/// folders deep, that no live writer can still own: their process died on
/// this host, or they are untouched for `TEMP_STALE_AFTER_SECS`. Returns how
/// many went. Folders are left alone:
/// a checkpoint killed mid-write (`checkpoint-N.tmp/`) is told apart and
/// cleared by the trainer.
pub fn remove_stale_temporaries(dir: &Path, depth: usize) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let path = entry.path();
        if meta.is_dir() {
            if depth > 0 {
                removed += remove_stale_temporaries(&path, depth - 1);
            }
            continue;
        }
        let age = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .map_or(0, |a| a.as_secs());
        let name = entry.file_name();
        if temp_is_stale(&name.to_string_lossy(), age) && std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_of_one_file_each_stage_their_own_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.ron");
        // Many writers at once: each file read back is one writer's whole.
        std::thread::scope(|s| {
            for i in 0..8u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_atomically(path, &vec![b'a' + i; 10_000]).unwrap();
                    }
                });
            }
        });
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 10_000);
        assert!(
            bytes.iter().all(|&b| b == bytes[0]),
            "two writers' bytes interleaved"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("run.ron")],
            "no temporary is left"
        );
        assert_ne!(temp_path(&path), temp_path(&path));
    }

    #[test]
    fn only_old_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("checkpoints/checkpoint-3.tmp");
        std::fs::create_dir_all(&sub).unwrap();
        let elsewhere = |n: &str| format!("{TEMP_PREFIX}1@another-host@{n}");
        let old = dir.path().join(elsewhere("run.ron"));
        let fresh = dir.path().join(elsewhere("results.ron"));
        let deep = sub.join(elsewhere("model.safetensors"));
        let ours = dir.path().join(format!("{}x", temp_prefix()));
        let dead = dir.path().join(format!(
            "{TEMP_PREFIX}{}@{}@y",
            u32::MAX - 3,
            crate::host::hostname()
        ));
        let kept = dir.path().join("run.ron");
        for p in [&old, &fresh, &deep, &ours, &dead, &kept] {
            std::fs::write(p, b"x").unwrap();
        }
        let hour_ago = std::time::SystemTime::now()
            - std::time::Duration::from_secs(TEMP_STALE_AFTER_SECS + 5);
        for p in [&old, &deep, &kept] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        assert_eq!(remove_stale_temporaries(dir.path(), 2), 3);
        assert!(
            !old.exists() && !deep.exists(),
            "old ones go, from any host"
        );
        assert!(!dead.exists(), "a dead process's goes at once");
        assert!(
            fresh.exists() && ours.exists(),
            "a live writer's temporary stays"
        );
        assert!(
            kept.exists() && sub.exists(),
            "other files and folders stay"
        );
    }
}
