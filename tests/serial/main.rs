//! Tests that need a process to themselves, each run in a fresh child of this
//! binary:
//! - memory_plan installs a counting global allocator (memory_plan.rs) and
//!   reads its process-wide peak;
//! - census reads the process-wide tensor-id counter;
//! - hub_model and hub_dataset set `HF_HUB_*` variables for the process;
//! - gpu_usage puts a fake nvidia-smi on PATH.
//!
//! The runner speaks enough of libtest's language for cargo: filters (any
//! substring of a test's name), `--exact`, `--list`, `--nocapture`, and the
//! `test … ok` and `test result:` lines. Other flags are accepted and ignored.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod census;
mod gpu_usage;
mod hub_dataset;
mod hub_model;
mod memory_plan;

use std::process::{Command, ExitCode};
use std::time::Instant;

/// The environment variable that makes a child run one test and exit.
const CHILD: &str = "SQUADLAB_SERIAL_TEST";

const TESTS: &[(&str, fn())] = &[
    (
        "gpu_usage::gpu_usage_is_read_from_nvidia_smi_and_its_failures_are_said_once",
        gpu_usage::gpu_usage_is_read_from_nvidia_smi_and_its_failures_are_said_once,
    ),
    (
        "census::the_census_counts_the_structure_not_the_shapes",
        census::the_census_counts_the_structure_not_the_shapes,
    ),
    (
        "hub_dataset::hub_dataset_loads_from_the_cache_and_offline_misses_say_what_to_fetch",
        hub_dataset::hub_dataset_loads_from_the_cache_and_offline_misses_say_what_to_fetch,
    ),
    (
        "hub_model::a_pickled_checkpoint_from_the_hub_cache_matches_pytorch",
        hub_model::a_pickled_checkpoint_from_the_hub_cache_matches_pytorch,
    ),
    (
        "memory_plan::the_plan_is_the_graph_and_the_allocator_agrees",
        memory_plan::the_plan_is_the_graph_and_the_allocator_agrees,
    ),
    (
        "memory_plan::the_lean_plan_is_the_lean_step_and_the_allocator_agrees",
        memory_plan::the_lean_plan_is_the_lean_step_and_the_allocator_agrees,
    ),
    (
        "memory_plan::a_run_that_cannot_fit_its_gpu_is_refused_with_a_batch_split_that_would",
        memory_plan::a_run_that_cannot_fit_its_gpu_is_refused_with_a_batch_split_that_would,
    ),
];

fn main() -> ExitCode {
    if let Ok(name) = std::env::var(CHILD) {
        return match TESTS.iter().find(|(n, _)| *n == name) {
            // A panic unwinds to the default hook, which prints it, and exits 101.
            Some((_, test)) => {
                test();
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("serial: no test named {name}");
                ExitCode::from(2)
            }
        };
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let exact = flag("--exact");
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(name, _)| {
            filters.is_empty()
                || filters
                    .iter()
                    .any(|f| if exact { name == f } else { name.contains(f) })
        })
        .collect();
    if flag("--list") {
        for (name, _) in &selected {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let nocapture = flag("--nocapture") || std::env::var_os("RUST_TEST_NOCAPTURE").is_some();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("serial: cannot find this test binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("\nrunning {} tests", selected.len());
    let started = Instant::now();
    let mut failed = Vec::new();
    for (name, _) in &selected {
        let mut child = Command::new(&exe);
        child.env(CHILD, name);
        let passed = if nocapture {
            child.status().is_ok_and(|s| s.success())
        } else {
            match child.output() {
                Ok(out) if out.status.success() => true,
                Ok(out) => {
                    failed_output(name, &out.stdout, &out.stderr);
                    false
                }
                Err(e) => {
                    eprintln!("serial: cannot start {name}: {e}");
                    false
                }
            }
        };
        println!("test {name} ... {}", if passed { "ok" } else { "FAILED" });
        if !passed {
            failed.push(*name);
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for name in &failed {
            println!("    {name}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
        TESTS.len() - selected.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}

/// What a failed child printed, as libtest shows a failure.
fn failed_output(name: &str, stdout: &[u8], stderr: &[u8]) {
    println!("\n---- {name} stdout ----");
    print!("{}", String::from_utf8_lossy(stdout));
    print!("{}", String::from_utf8_lossy(stderr));
}
