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
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        if let Err(e) = cuda::compile_kernels(&manifest) {
            // A build error, with nvcc's own message.
            eprintln!("{e}");
            println!(
                "cargo:warning=squadlab-core: CUDA kernels: {}",
                first_line(&e)
            );
            std::process::exit(1);
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// The version of `name` in a Cargo.lock.
fn locked_version<'a>(lock: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = lock.find(&needle)? + needle.len();
    lock[start..].split('"').next()
}

/// The lean step's CUDA kernels (feature `cuda`): every `kernels/*.cu` to
/// `OUT_DIR/<stem>.ptx` for `compute_80` (one PTX that the driver JITs for
/// sm_80 and later, sm_90 included), and `OUT_DIR/fused_kernels.rs`, the
/// list of `(stem, PTX text)` that `model/fused/cuda.rs` embeds. A file is
/// recompiled only when it, a header of the folder or the nvcc command
/// changed; a missing nvcc or a failed compile fails the build.
mod cuda {
    use std::fmt::Write as _;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::SystemTime;

    /// nvcc from `NVCC`, else `PATH`, else `$CUDA_HOME/bin`, else the PyPI
    /// wheels' place (README, "CUDA").
    fn find_nvcc() -> Result<PathBuf, String> {
        println!("cargo:rerun-if-env-changed=NVCC");
        println!("cargo:rerun-if-env-changed=CUDA_HOME");
        if let Some(nvcc) = std::env::var_os("NVCC").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(nvcc));
        }
        let on_path: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|d| d.join("nvcc"))
                    .collect()
            })
            .unwrap_or_default();
        let cuda_home = std::env::var_os("CUDA_HOME")
            .filter(|v| !v.is_empty())
            .map(|home| PathBuf::from(home).join("bin/nvcc"));
        on_path
            .into_iter()
            .chain(cuda_home)
            .chain([PathBuf::from("/opt/cu13/nvidia/cu13/bin/nvcc")])
            .find(|p| p.is_file())
            .ok_or_else(|| {
                "nvcc not found (looked at $NVCC, $PATH, $CUDA_HOME/bin and \
                 /opt/cu13/nvidia/cu13/bin); the `cuda` feature compiles \
                 crates/core/kernels/*.cu with it: see the README's CUDA section"
                    .to_string()
            })
    }

    fn modified(path: &Path) -> Option<SystemTime> {
        std::fs::metadata(path).and_then(|m| m.modified()).ok()
    }

    pub fn compile_kernels(manifest: &Path) -> Result<(), String> {
        let dir = manifest.join("kernels");
        let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("reading {}: {e}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in &files {
            println!("cargo:rerun-if-changed={}", file.display());
        }
        // Any file of the folder (a .cuh header among them) is an input of every .cu.
        let newest_input = files.iter().filter_map(|f| modified(f)).max();
        let sources: Vec<&PathBuf> = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "cu"))
            .collect();
        let nvcc = find_nvcc()?;
        let mut includes = vec![dir.clone()];
        // The PyPI nvcc's nvcc.profile points at a targets/ folder the
        // wheels lack: their headers sit beside bin/.
        if let Some(inc) = nvcc
            .parent()
            .and_then(Path::parent)
            .map(|p| p.join("include"))
        {
            if inc.join("cuda_runtime.h").is_file() {
                includes.push(inc);
            }
        }
        let mut running: Vec<(String, PathBuf, Child)> = Vec::new();
        let mut listing = String::from(
            "/// Every PTX module of crates/core/kernels: (file stem, PTX text).\n\
             pub const MODULES: &[(&str, &str)] = &[\n",
        );
        for src in sources {
            let stem = src
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| format!("{}: not a UTF-8 file name", src.display()))?
                .to_string();
            let ptx = out_dir.join(format!("{stem}.ptx"));
            let mut cmd = Command::new(&nvcc);
            cmd.args(["-ptx", "-arch=compute_80", "-O3", "-std=c++17"]);
            for inc in &includes {
                cmd.arg("-I").arg(inc);
            }
            cmd.arg(src).arg("-o").arg(&ptx);
            let line = format!("{cmd:?}");
            let _ = writeln!(
                listing,
                "    ({stem:?}, include_str!(concat!(env!(\"OUT_DIR\"), \"/{stem}.ptx\"))),"
            );
            // Up to date: the PTX is newer than every input and came from the same command.
            let stamp = out_dir.join(format!("{stem}.ptx.cmd"));
            let fresh = match (modified(&ptx), newest_input) {
                (Some(built), Some(input)) => built > input,
                _ => false,
            } && std::fs::read_to_string(&stamp).is_ok_and(|s| s == line);
            if fresh {
                continue;
            }
            let _ = std::fs::remove_file(&stamp);
            let child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("{}: cannot run {}: {e}", src.display(), nvcc.display()))?;
            running.push((line, src.clone(), child));
        }
        listing.push_str("];\n");
        let mut failures = String::new();
        for (line, src, child) in running {
            let stem = src.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            match child.wait_with_output() {
                Ok(out) if out.status.success() => {
                    let stamp = out_dir.join(format!("{stem}.ptx.cmd"));
                    std::fs::write(&stamp, line)
                        .map_err(|e| format!("writing {}: {e}", stamp.display()))?;
                }
                Ok(out) => {
                    let _ = write!(
                        failures,
                        "nvcc failed on {} ({}):\n{}\n{}{}",
                        src.display(),
                        out.status,
                        line,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                Err(e) => {
                    let _ = writeln!(failures, "nvcc on {}: {e}", src.display());
                }
            }
        }
        if !failures.is_empty() {
            return Err(failures);
        }
        let list = out_dir.join("fused_kernels.rs");
        if std::fs::read_to_string(&list).ok().as_deref() != Some(listing.as_str()) {
            std::fs::write(&list, listing)
                .map_err(|e| format!("writing {}: {e}", list.display()))?;
        }
        Ok(())
    }
}
