//! Slurm as the scale-out engine: a sweep's queued runs as one sbatch job
//! array over a store on shared storage. Task i trains run i
//! (`squadlab sweep task`). Shortly before the time limit Slurm signals the
//! batch shell (`--signal=B:USR1@N`), which forwards it to squadlab and
//! leaves a flag file for a signal that came before squadlab could catch it.
//! The task then checkpoints, puts the run back in the
//! store's queue and requeues its own array task with `scontrol requeue`,
//! since Slurm does not requeue a task that merely exits. The requeued task
//! resumes from the checkpoint.
//!
//! Slurm's own bookkeeping may call a failed task COMPLETED (Hydra's
//! submitit, hydra #1928), so `sweep status` shows the store's status and
//! only beside it Slurm's state.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The flag file the batch shell touches when Slurm's signal arrives, named
/// to `squadlab sweep task` in this variable.
pub const USR1_FLAG_ENV: &str = "SQUADLAB_USR1_FLAG";

/// What the sbatch script asks of Slurm.
#[derive(Clone, Debug, Default)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub time: Option<String>,
    pub cpus_per_task: Option<usize>,
    pub gpus_per_task: Option<usize>,
    /// At most this many tasks at once (`%K`).
    pub max_parallel: Option<usize>,
    /// Seconds before the time limit to signal the task (Slurm may signal up
    /// to a minute earlier than asked).
    pub signal_seconds: u32,
}

/// One submitted array: its job id and its runs, task i being run i.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArrayJob {
    pub job: String,
    pub script: PathBuf,
    pub runs: Vec<String>,
}

impl SlurmOptions {
    /// Refuses, by name, a partition, account or time that would change the
    /// script it goes into: whitespace or a newline (a newline starts a new
    /// `#SBATCH` line), or a character a shell or sbatch gives a meaning
    /// (`;`, `#`, quotes, `$`…). What Slurm accepts there needs none of them.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [
            ("partition", &self.partition),
            ("account", &self.account),
            ("time", &self.time),
        ] {
            if let Some(value) = value {
                plain_value(field, value)?;
            }
        }
        Ok(())
    }
}

/// The characters a partition list, an account or a time limit may hold:
/// `gpu,debug`, `proj_1`, `1-02:00:00`, `UNLIMITED`.
fn plain_value(field: &str, value: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-.,:+@".contains(c);
    if value.is_empty() {
        bail!("slurm.{field}: empty; leave it out for Slurm's default");
    }
    if let Some(bad) = value.chars().find(|&c| !allowed(c)) {
        bail!(
            "slurm.{field}: {value:?} holds {bad:?}; it may hold only letters, digits and `_ - . , : + @` \
             (whitespace, a newline or a shell character would change the sbatch script)"
        );
    }
    Ok(())
}

/// `dir/pattern` as one word of an `#SBATCH` line, which sbatch reads with
/// `"` quotes and `\` escapes. The folder's `%` is doubled, since sbatch
/// expands `%A` and the like in file names (the pattern's are meant). A
/// newline cannot be written into the line at all, and a backslash in the
/// path would turn that expansion off: both refused, by the flag's name.
fn sbatch_path(flag: &str, dir: &Path, pattern: &str) -> Result<String> {
    let text = dir.to_str().with_context(|| {
        format!(
            "slurm {flag}: the store path {} is not UTF-8",
            dir.display()
        )
    })?;
    if let Some(bad) = text.chars().find(|&c| c.is_control() || c == '\\') {
        let what = match bad {
            '\n' => "a newline",
            '\\' => "a backslash",
            _ => "a control character",
        };
        bail!(
            "slurm {flag}: the store path {text:?} holds {what}, which no #SBATCH line can \
             hold; use a store path without it"
        );
    }
    let escaped = text.replace('%', "%%").replace('"', "\\\"");
    Ok(format!("\"{escaped}/{pattern}\""))
}

/// The sbatch script for `runs` of sweep `id` in the store at `store_root`.
/// Every value is checked before any is written: an error names the field.
pub fn script(store_root: &Path, id: &str, runs: &[String], o: &SlurmOptions) -> Result<String> {
    if runs.is_empty() {
        bail!("sweep {id} has no queued run for Slurm");
    }
    o.validate()?;
    let exe = std::env::current_exe().context("cannot find the squadlab binary")?;
    let store = std::path::absolute(store_root)?;
    let logs = store.join("sweeps").join(id);
    let output = sbatch_path("--output", &logs, "slurm-%A_%a.out")?;
    let mut s = String::from("#!/bin/bash\n");
    let _ = writeln!(s, "#SBATCH --job-name=squadlab-{id}");
    let parallel = o.max_parallel.map_or(String::new(), |k| format!("%{k}"));
    let _ = writeln!(s, "#SBATCH --array=0-{}{parallel}", runs.len() - 1);
    // B: signals the batch shell, which forwards the signal to squadlab.
    let _ = writeln!(s, "#SBATCH --signal=B:USR1@{}", o.signal_seconds);
    let _ = writeln!(s, "#SBATCH --requeue");
    let _ = writeln!(s, "#SBATCH --open-mode=append");
    let _ = writeln!(s, "#SBATCH --output={output}");
    for (flag, value) in [
        ("partition", o.partition.clone()),
        ("account", o.account.clone()),
        ("time", o.time.clone()),
        ("cpus-per-task", o.cpus_per_task.map(|n| n.to_string())),
        ("gpus-per-task", o.gpus_per_task.map(|n| n.to_string())),
    ] {
        if let Some(v) = value {
            let _ = writeln!(s, "#SBATCH --{flag}={v}");
        }
    }
    let quoted: Vec<String> = runs.iter().map(|r| shell_quote(r)).collect();
    let _ = writeln!(s, "RUNS=({})", quoted.join(" "));
    // Slurm may signal within the task's first seconds (up to 60 s early),
    // before squadlab has its handler: the shell catches the signal, notes it
    // in a flag file squadlab reads once its handler is in, and forwards it.
    // squadlab starts with USR1 ignored, so a forward in that gap is not fatal.
    s.push_str(
        "flag=$(mktemp)\nrm -f \"$flag\"\npid=\n\
         trap 'touch \"$flag\"; [ -n \"$pid\" ] && kill -USR1 \"$pid\" 2>/dev/null' USR1\n",
    );
    let _ = writeln!(
        s,
        "( trap '' USR1; exec env {}=\"$flag\" {} sweep task --store {} --run \"${{RUNS[$SLURM_ARRAY_TASK_ID]}}\" ) &",
        USR1_FLAG_ENV,
        shell_quote(&exe.display().to_string()),
        shell_quote(&store.display().to_string())
    );
    // `wait` returns early when the trap runs; wait again until squadlab ends.
    s.push_str(
        "pid=$!\n[ -e \"$flag\" ] && kill -USR1 \"$pid\" 2>/dev/null\n\
         while :; do wait \"$pid\"; rc=$?; kill -0 \"$pid\" 2>/dev/null || break; done\n\
         rm -f \"$flag\"\nexit $rc\n",
    );
    Ok(s)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Submits a script; returns the job id.
pub fn submit(script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|e| anyhow!("sbatch: {e}"))?;
    if !out.status.success() {
        bail!(
            "sbatch failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.trim().split(';').next().unwrap_or("").to_string())
}

/// Slurm's state of each task of `job` (`squeue -t all`, which keeps ended
/// jobs for `MinJobAge`), by task index; empty when Slurm does not answer.
pub fn task_states(job: &str) -> BTreeMap<usize, String> {
    let Ok(out) = Command::new("squeue")
        .args(["-h", "-r", "-t", "all", "-j", job, "-o", "%K %T"])
        .output()
    else {
        return BTreeMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (task, state) = l.trim().split_once(' ')?;
            Some((task.parse().ok()?, state.trim().to_string()))
        })
        .collect()
}

/// Requeues this array task (`scontrol requeue JOB_TASK`), from inside it.
pub fn requeue_self() -> Result<()> {
    let job = match (
        std::env::var("SLURM_ARRAY_JOB_ID"),
        std::env::var("SLURM_ARRAY_TASK_ID"),
    ) {
        (Ok(j), Ok(t)) => format!("{j}_{t}"),
        _ => std::env::var("SLURM_JOB_ID").map_err(|_| anyhow!("not inside a Slurm job"))?,
    };
    let out = Command::new("scontrol")
        .args(["requeue", &job])
        .output()
        .map_err(|e| anyhow!("scontrol: {e}"))?;
    if !out.status.success() {
        bail!(
            "scontrol requeue {job} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
