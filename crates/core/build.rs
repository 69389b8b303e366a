//! Records what the binary was built from, for every run's `run.ron`:
//! the git commit of the source (with `-dirty` when it had local changes)
//! and the candle version locked in the workspace's Cargo.lock. This crate
//! sits two folders below the workspace root; the commit covers every crate.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("../..");
    let mut watched: Vec<String> = [
        ".git/HEAD",
        ".git/index",
        ".git/packed-refs",
        "Cargo.lock",
        "src",
        "crates",
    ]
    .map(String::from)
    .to_vec();
    // A commit moves the branch HEAD names, not HEAD itself.
    let head = std::fs::read_to_string(root.join(".git/HEAD")).unwrap_or_default();
    if let Some(branch) = head.trim().strip_prefix("ref: ") {
        watched.push(format!(".git/{branch}"));
    }
    for path in watched {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(&root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let sha = match git(&["rev-parse", "HEAD"]) {
        Some(sha) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{sha}-dirty")
            } else {
                sha
            }
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=SQUADLAB_GIT_SHA={sha}");
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    println!(
        "cargo:rustc-env=SQUADLAB_CANDLE_VERSION={}",
        locked_version(&lock, "candle-core").unwrap_or("unknown")
    );
}

/// The version of `name` in a Cargo.lock.
fn locked_version<'a>(lock: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    lock[start..].split('"').next()
}
