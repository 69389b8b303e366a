#!/usr/bin/env python3
"""PyTorch's side of bench/gpu.sh: the BERT-base QA train step at batch
32 x 384 with bf16 autocast and fused AdamW, eager and under torch.compile,
with the same inputs and FLOP count as `squadlab bench train-step`.
Prints one JSON line: {"flops", "eager": {...}, "compile": {...}}."""

import argparse
import json
import statistics
import sys
import time

import torch
from transformers import BertForQuestionAnswering

from peer_model import decay_groups  # Hugging Face's weight-decay groups


def step_flops(c, batch, seq):
    """Matrix-product FLOPs of forward + backward (3x forward), as squadlab counts them."""
    h, i, tokens = c.hidden_size, c.intermediate_size, batch * seq
    per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 4 * tokens * seq * h
    return 3 * (per_layer * c.num_hidden_layers + 2 * tokens * h * 2)


def timed(model, inputs, labels, repeat, warmup):
    opt = torch.optim.AdamW(decay_groups(model, 0.01), lr=1e-9, fused=True)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**inputs, start_positions=labels, end_positions=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    runs = []
    for _ in range(repeat):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        runs.append(time.perf_counter() - t0)
    return {"median_seconds": statistics.median(runs), "runs": runs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=384)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = BertForQuestionAnswering.from_pretrained(args.model).cuda().train()
    vocab = model.config.vocab_size
    low = min(1000, vocab // 2)
    ids = torch.tensor([[low + (i * 7919) % (vocab - low) for i in range(r * args.seq, (r + 1) * args.seq)]
                        for r in range(args.batch)], device="cuda")
    inputs = dict(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids))
    labels = torch.tensor([i % args.seq for i in range(args.batch)], device="cuda")
    report = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
              "flops": step_flops(model.config, args.batch, args.seq)}
    report["eager"] = timed(model, inputs, labels, args.repeat, warmup=5)
    print(json.dumps(report), flush=True)
    try:
        compiled = torch.compile(model)
        started = time.perf_counter()
        report["compile"] = timed(compiled, inputs, labels, args.repeat, warmup=3)
        report["compile"]["seconds_with_compile_and_warmup"] = time.perf_counter() - started
    except Exception as e:  # torch.compile needs a working Triton; report why not
        report["compile"] = {"error": f"{type(e).__name__}: {e}"[:500]}
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
