//! The run store on disk: one folder per run under `<store>/runs/<run-id>/`,
//! holding its config, its event log and everything the trainer writes.

mod recorder;

pub use recorder::RunRecorder;

use crate::config::RunConfig;
use crate::fsutil::write_atomically;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub const HOME_ENV: &str = "SQUADLAB_HOME";
pub const CONFIG_FILE: &str = "config.ron";
pub const EVENTS_FILE: &str = "metrics.jsonl";

/// The store: `explicit` if given, else `$SQUADLAB_HOME`, else `experiments/`.
pub fn store_root(explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os(HOME_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("experiments")),
    }
}

/// A new, unused run folder under `<store>/runs/`, named by UTC time and run name.
pub fn new_run_dir(store: &Path, config: &RunConfig) -> Result<PathBuf> {
    let runs = store.join("runs");
    std::fs::create_dir_all(&runs).with_context(|| format!("cannot create {}", runs.display()))?;
    let base = format!(
        "{}-{}",
        utc_stamp(std::time::SystemTime::now()),
        slug(&config.name)
    );
    for n in 0.. {
        let id = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = runs.join(id);
        // create_dir fails if it exists, so two launches never share a folder.
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    unreachable!("some suffix is free")
}

/// Makes `dir` ready for a new run, refusing one that already holds a run.
pub fn claim_run_dir(dir: &Path) -> Result<()> {
    if dir.join(EVENTS_FILE).exists() || dir.join(CONFIG_FILE).exists() {
        bail!(
            "{} already holds a run; choose another --out, or continue it with --resume CHECKPOINT",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes the run's config into its folder.
pub fn write_config(dir: &Path, config: &RunConfig) -> Result<()> {
    write_atomically(&dir.join(CONFIG_FILE), config.to_ron().as_bytes())
}

/// `YYYYMMDD-HHMMSS` in UTC.
pub fn utc_stamp(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Lowercase letters, digits and single dashes; `run` when nothing is left.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "run".into()
    } else {
        out.chars().take(40).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_utc_time_and_a_slug() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_885_512);
        assert_eq!(utc_stamp(t), "20261128-170512");
        let leap = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(utc_stamp(leap), "20000229-000000");
        assert_eq!(slug("MiniLM-L6 quick (CPU)"), "minilm-l6-quick-cpu");
        assert_eq!(slug("  "), "run");
    }
}
