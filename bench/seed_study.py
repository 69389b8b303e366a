#!/usr/bin/env python3
"""The seed study: squadlab against the Hugging Face `Trainer` on the CPU
protocol padded to 384 (`experiments/minilm-squad-quick-384.ron`; the Trainer
side is `bench/peer_protocol.py --trainer`), one run after another on this
machine, alternating the sides so a study cut short stays balanced. Each
finished run appends one JSON line to the results file; a rerun skips the
(side, seed) pairs already there. Then, per side, EM and F1 as mean ± sample
sd, and Welch's t-test on F1.

About 2 hours on 2 cores for 5 + 5 runs: run it in the background, never in CI.

    python3 bench/seed_study.py [--seeds 42-46] [--sides squadlab,trainer] [--results FILE]
    python3 bench/seed_study.py --report-only [--results FILE] [--markdown]
"""

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PRESET = os.path.join(ROOT, "experiments", "minilm-squad-quick-384.ron")


def seeds_arg(text):
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def run_side(side, seed, args, store):
    """One run; returns its result line (side, seed, EM, F1, seconds, ...)."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    if side == "squadlab":
        cmd = [args.bin, "--threads", str(args.threads), "train", args.config, "--seed", str(seed),
               "--store", store, "--name", f"seed study {seed}", "--tag", "seed-study", "--json"]
    else:
        cmd = [sys.executable, os.path.join(HERE, "peer_protocol.py"), "--trainer", "--seed", str(seed),
               "--threads", str(args.threads)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{side} seed {seed} failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    row = {"side": side, "seed": seed, "seconds": seconds}
    if side == "squadlab":
        ev = out.get("eval") or out
        with open(os.path.join(out["run_dir"], "run.ron"), encoding="utf-8") as f:
            # The record's own field (`Some(N)`), not the config's `warmup_steps: 0`.
            warmup = re.search(r"warmup_steps: Some\((\d+)\)", f.read())
        row.update(exact_match=ev["exact_match"], f1=ev["f1"], run_id=out.get("run_id"),
                   warmup_steps=warmup and int(warmup.group(1)), train_loss=out.get("train_loss"))
    else:
        row.update({k: out[k] for k in ("exact_match", "f1", "warmup_steps", "mean_loss", "transformers", "torch")})
    return row


def welch(a, b):
    """Welch's t statistic, its degrees of freedom and two-sided p (scipy)."""
    from scipy import stats

    r = stats.ttest_ind(a, b, equal_var=False)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(r.statistic), df, float(r.pvalue)


def report(rows, markdown):
    sides = sorted({r["side"] for r in rows}, key=lambda s: s != "squadlab")
    lines = []
    if markdown:
        lines += ["| side | n | seeds | EM mean ± sd | F1 mean ± sd | F1 per seed |", "|---|---|---|---|---|---|"]
    by_side = {}
    for side in sides:
        mine = sorted((r for r in rows if r["side"] == side), key=lambda r: r["seed"])
        by_side[side] = [r["f1"] for r in mine]
        em = [r["exact_match"] for r in mine]
        f1 = by_side[side]
        sd = lambda xs: f"{statistics.stdev(xs):.2f}" if len(xs) > 1 else "n/a (one run)"
        per_seed = ", ".join(f"{r['seed']}: {r['f1']:.2f}" for r in mine)
        if markdown:
            lines.append(f"| {side} | {len(mine)} | {mine[0]['seed']}–{mine[-1]['seed']} | "
                         f"{statistics.mean(em):.2f} ± {sd(em)} | {statistics.mean(f1):.2f} ± {sd(f1)} | {per_seed} |")
        else:
            lines.append(f"{side:>10}: n={len(mine)}  EM {statistics.mean(em):.2f} ± {sd(em)}  "
                         f"F1 {statistics.mean(f1):.2f} ± {sd(f1)}  ({per_seed})")
    if len(sides) == 2 and all(len(v) > 1 for v in by_side.values()):
        t, df, p = welch(by_side[sides[0]], by_side[sides[1]])
        diff = statistics.mean(by_side[sides[0]]) - statistics.mean(by_side[sides[1]])
        lines.append(f"\nWelch's t-test on F1 ({sides[0]} − {sides[1]} = {diff:+.2f}): "
                     f"t = {t:.3f}, df = {df:.1f}, p = {p:.4f}"
                     + (" (the means differ at p < 0.05)" if p < 0.05 else " (no difference at p < 0.05)"))
    print("\n".join(lines), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=seeds_arg, default=seeds_arg("42-46"))
    ap.add_argument("--sides", default="squadlab,trainer")
    ap.add_argument("--results", default=os.path.join(ROOT, "experiments", "seed-study.jsonl"))
    ap.add_argument("--config", default=PRESET)
    ap.add_argument("--store", default=None, help="squadlab's run store (default: a temporary one)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "squadlab"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    rows = []
    if os.path.exists(args.results):
        with open(args.results, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    if not args.report_only:
        store = args.store or tempfile.mkdtemp(prefix="seed-study-store-")
        done = {(r["side"], r["seed"]) for r in rows}
        for seed in args.seeds:
            for side in args.sides.split(","):
                if (side, seed) in done:
                    continue
                print(f"{time.strftime('%H:%M:%S')} {side} seed {seed} ...", file=sys.stderr, flush=True)
                row = run_side(side, seed, args, store)
                print(f"    EM {row['exact_match']:.2f}  F1 {row['f1']:.2f}  in {row['seconds']:.0f} s",
                      file=sys.stderr, flush=True)
                rows.append(row)
                with open(args.results, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
    if rows:
        report(rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
