#!/usr/bin/env python3
"""PyTorch's side of bench/gpu.sh: the BERT QA train step (default batch
32 x 384, bf16 autocast, fused AdamW), eager and under torch.compile, with
the same inputs and FLOP count as `squadlab bench train-step`.

    python3 bench/gpu_peer.py MODEL_DIR [--repeat 10] [--warmup N] [--batch 32] [--seq 384]
        [--device cuda|cpu] [--dtype bf16|f32] [--compile-backend inductor|eager] [--no-compile]

Prints a JSON line after eager and again, complete, after compile (so a
timeout during compile still leaves the eager result; read the last line):
{"flops", "batch", "seq", "device", "dtype", "layers", "hidden", ...,
 "eager": {...}, "compile": {...}}, each variant either timed
({"median_seconds", "samples_per_second", "runs", "peak_memory_bytes", ...}),
{"error": "..."} or, with --no-compile, {"skipped": true}.
`--device cpu --dtype f32 --compile-backend eager` is a dry run without a GPU."""

import argparse
import json
import statistics
import sys
import time
import traceback

import torch
from transformers import BertForQuestionAnswering

from peer_model import decay_groups, fixed_inputs  # Hugging Face's weight-decay groups; squadlab's ids


def step_flops(c, batch, seq):
    """Matrix-product FLOPs of forward + backward (3x forward), as squadlab counts them."""
    h, i, tokens = c.hidden_size, c.intermediate_size, batch * seq
    per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 4 * tokens * seq * h
    return 3 * (per_layer * c.num_hidden_layers + 2 * tokens * h * 2)


def timed(model, inputs, labels, args, warmup):
    cuda = args.device == "cuda"
    # fused AdamW is CUDA-only here; the CPU gets the default (foreach) kernel.
    opt = torch.optim.AdamW(decay_groups(model, 0.01), lr=1e-9, fused=True if cuda else None)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
            loss = model(**inputs, start_positions=labels, end_positions=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    if cuda:
        # Drop the previous variant's cached blocks first, or they would count
        # towards this variant's peak reserved memory.
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        step()
    runs = []
    for _ in range(args.repeat):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        runs.append(time.perf_counter() - t0)
    median = statistics.median(runs)
    return {"median_seconds": median, "samples_per_second": args.batch / median, "runs": runs,
            "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else None,
            "peak_reserved_bytes": torch.cuda.max_memory_reserved() if cuda else None}


def guarded(variant):
    """Runs one variant; an exception (OOM, no Triton, ...) becomes its "error"
    and the traceback goes to stderr, so the other variant still runs."""
    try:
        return variant()
    except Exception as e:
        traceback.print_exc()
        return {"error": f"{type(e).__name__}: {e}"[:500]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps per variant (default 5 eager, 3 compile)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=384)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--dtype", choices=["bf16", "f32"], default="bf16", help="bf16 autocast, or plain f32")
    ap.add_argument("--compile-backend", default="inductor", help="torch.compile backend; 'eager' only traces")
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = BertForQuestionAnswering.from_pretrained(args.model).to(args.device).train()
    c = model.config
    inputs, labels = fixed_inputs(torch, c.vocab_size, args.batch, args.seq)
    inputs = {k: v.to(args.device) for k, v in inputs.items()}
    labels = labels.to(args.device)
    report = {"torch": torch.__version__,
              "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
              "device": args.device, "dtype": args.dtype, "batch": args.batch, "seq": args.seq,
              "layers": c.num_hidden_layers, "hidden": c.hidden_size,
              "flops": step_flops(c, args.batch, args.seq)}
    warmup = lambda default: default if args.warmup is None else args.warmup  # noqa: E731

    report["eager"] = guarded(lambda: timed(model, inputs, labels, args, warmup(5)))
    print(json.dumps(report), flush=True)

    def compiled():
        started = time.perf_counter()
        result = timed(torch.compile(model, backend=args.compile_backend), inputs, labels, args, warmup(3))
        result["seconds_with_compile_and_warmup"] = time.perf_counter() - started
        return result

    report["compile"] = {"skipped": True} if args.no_compile else guarded(compiled)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
