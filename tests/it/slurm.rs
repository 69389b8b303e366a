//! A sweep as a Slurm job array, against a real one-node Slurm started by
//! tools/slurm/start.sh (`.ci/run` calls it; `cargo test` starts no daemon).
//! Four runs, at most two at once: one made to fail, one slowed past the
//! one-minute time limit so Slurm signals it, and it checkpoints, requeues
//! itself and resumes to the losses of an uninterrupted run. Slurm holds a
//! requeued task for two minutes before it may start again, so this takes
//! about three.

use crate::common;

use common::{squadlab, squadlab_json, step_losses, tiny_run_config, tiny_task, train_straight};
use squadlab::store::{RunRecord, RunStatus};
use std::time::{Duration, Instant};

fn slurm_up() -> bool {
    std::process::Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("idle"))
}

#[test]
fn a_sweep_runs_as_a_slurm_array_through_a_failure_and_a_preemption() {
    if !slurm_up() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no Slurm answers: .ci/run starts it with tools/slurm/start.sh"
        );
        eprintln!("skipped: no Slurm here (start one with tools/slurm/start.sh)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (json, model) = tiny_task(tmp.path());
    let base = squadlab::config::RunConfig {
        max_steps: Some(4),
        save_strategy: squadlab::config::SaveStrategy::Steps,
        save_steps: 2,
        ..tiny_run_config(&json, &model)
    };
    std::fs::write(tmp.path().join("base.ron"), base.to_ron()).unwrap();
    let file = tmp.path().join("sweep.ron");
    std::fs::write(
        &file,
        r#"Sweep(name: "slurm test", base: File("base.ron"), grid: {"learning_rate": [1e-3, 2e-3, 3e-3, 4e-3]})"#,
    )
    .unwrap();
    let root = tmp.path().join("store");
    let root_arg = root.display().to_string();
    let started = squadlab_json(&[
        "sweep",
        "start",
        &file.display().to_string(),
        "--store",
        &root_arg,
    ]);
    let mut ids: Vec<String> = started["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 4);
    let runs = root.join("runs");
    // One run made to fail (its data file is gone), one made to outlive the
    // time limit (60 slowed steps).
    let (broken, long) = (&ids[1], &ids[2]);
    let mut r = RunRecord::load(&runs.join(broken)).unwrap();
    let c = r.config.as_mut().unwrap();
    c.data.train =
        squadlab::config::DataSource::try_from(tmp.path().join("gone.json").display().to_string())
            .unwrap();
    r.save(&runs.join(broken)).unwrap();
    let mut r = RunRecord::load(&runs.join(long)).unwrap();
    r.config.as_mut().unwrap().max_steps = Some(60);
    let long_config = r.config.clone().unwrap();
    r.save(&runs.join(long)).unwrap();

    let out = squadlab()
        .args([
            "sweep",
            "start",
            &file.display().to_string(),
            "--store",
            &root_arg,
        ])
        .args([
            "--slurm",
            "--max-parallel",
            "2",
            "--time",
            "00:01:00",
            "--signal-seconds",
            "30",
            "--submit",
            "--json",
        ])
        .env(squadlab::faults::SLOW_STEP_MS, "1500")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let submitted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let script = std::fs::read_to_string(submitted["slurm"]["script"].as_str().unwrap()).unwrap();
    eprintln!("{script}");
    assert!(script.contains("#SBATCH --array=0-3%2"));
    assert!(script.contains("#SBATCH --signal=B:USR1@30"));
    assert!(script.contains("#SBATCH --time=00:01:00"));
    let job = submitted["slurm"]["job"].as_str().unwrap().to_string();
    assert!(!job.is_empty());

    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        let s = squadlab_json(&["sweep", "status", "slurm-test", "--store", &root_arg]);
        let ended = s["slurm"].as_object().is_some_and(|m| {
            m.len() == 4
                && m.values()
                    .all(|v| matches!(v.as_str(), Some("COMPLETED" | "FAILED")))
        });
        let unsettled = ["queued", "running"]
            .iter()
            .any(|k| s["by_status"][k].as_u64().unwrap_or(0) > 0);
        if ended && !unsettled {
            break s;
        }
        assert!(Instant::now() < deadline, "the array did not end: {s}");
        std::thread::sleep(Duration::from_secs(2));
    };
    eprintln!("sweep status: {status}");
    assert_eq!(status["by_status"]["finished"], 3, "{status}");
    assert_eq!(status["by_status"]["failed"], 1, "{status}");
    assert_eq!(status["slurm"][broken.as_str()], "FAILED");
    assert_eq!(
        RunRecord::load(&runs.join(broken)).unwrap().status,
        RunStatus::Failed
    );

    // The long run was signalled, checkpointed, requeued and resumed.
    let record = RunRecord::load(&runs.join(long)).unwrap();
    assert_eq!(record.status, RunStatus::Finished);
    assert!(
        !record.resumed_from.is_empty(),
        "it resumed: {:?}",
        record.resumed_from
    );
    eprintln!("long run resumed from steps {:?}", record.resumed_from);
    let resumed = step_losses(&runs.join(long));
    assert_eq!(resumed.len(), 60);

    // The same config uninterrupted, here: the same losses step for step.
    assert_eq!(
        resumed,
        step_losses(&train_straight(tmp.path(), &long_config))
    );
}
