//! The GPU half of the system metrics without a GPU: a fake `nvidia-smi` put
//! first on PATH answers the query (one board without a power reading), then
//! fails, then is gone; the sampler of a CUDA run records what each says.
//! Here because it sets PATH for the process.

use squadlab::memory::gpus::query_gpu_usage;
use squadlab::train::system::{EventSender, Sampler};
use squadlab::train::TrainEvent;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn fake_nvidia_smi(dir: &std::path::Path, body: &str) {
    let path = dir.join("nvidia-smi");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// One sample of a CUDA run's sampler, as `TrainEvent::System` carries it.
fn one_sample() -> squadlab::train::SystemSample {
    let (tx, rx) = crossbeam_channel::unbounded();
    let sampler =
        Sampler::start_every(EventSender::new(tx), true, Duration::from_millis(30)).unwrap();
    let event = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    drop(sampler);
    match event {
        TrainEvent::System(s) => s,
        other => panic!("not a sample: {other:?}"),
    }
}

pub fn gpu_usage_is_read_from_nvidia_smi_and_its_failures_are_said_once() {
    let tmp = tempfile::tempdir().unwrap();
    let old_path = std::env::var("PATH").unwrap_or_default();
    // SAFETY (edition 2021: a safe call): this test has the process to itself.
    std::env::set_var("PATH", format!("{}:{old_path}", tmp.path().display()));

    // It is asked for exactly these fields, in this order.
    fake_nvidia_smi(
        tmp.path(),
        r#"[ "$1" = "--query-gpu=index,utilization.gpu,memory.used,power.draw,temperature.gpu" ] || { echo "unexpected query $1" >&2; exit 3; }
echo "0, 97, 40123, 301.55, 64"
echo "1, 0, 5, [N/A], 33""#,
    );
    let gpus = query_gpu_usage().unwrap();
    assert_eq!(gpus.len(), 2);
    assert_eq!(gpus[0].index, 0);
    assert_eq!(gpus[0].utilization_percent, Some(97.0));
    assert_eq!(gpus[0].memory_used_mib, Some(40123.0));
    assert_eq!(gpus[0].power_watts, Some(301.55));
    assert_eq!(gpus[0].temperature_c, Some(64.0));
    assert_eq!(gpus[1].power_watts, None, "[N/A] is no number");
    let sample = one_sample();
    assert_eq!(sample.gpus, gpus);
    assert_eq!(sample.gpu_error, None);
    assert!(sample.rss_bytes.is_some_and(|b| b > 0));

    fake_nvidia_smi(
        tmp.path(),
        "echo 'NVIDIA-SMI has failed: no driver' >&2; exit 9",
    );
    let err = query_gpu_usage().unwrap_err();
    assert!(
        err.contains("nvidia-smi failed") && err.contains("no driver"),
        "{err}"
    );
    let sample = one_sample();
    assert!(sample.gpus.is_empty());
    assert!(sample
        .gpu_error
        .as_deref()
        .is_some_and(|e| e.contains("no driver")));
    assert!(sample.cpu_percent.is_some(), "the process is still sampled");

    std::fs::remove_file(tmp.path().join("nvidia-smi")).unwrap();
    std::env::set_var("PATH", tmp.path());
    let err = query_gpu_usage().unwrap_err();
    assert!(err.starts_with("nvidia-smi:"), "{err}");
    std::env::set_var("PATH", old_path);
}
