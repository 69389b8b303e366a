#!/usr/bin/env python3
"""The `minilm-squad-quick` protocol in PyTorch + transformers, as the
reference notebook runs it: windows padded to 384, batch 16, one epoch over
the first 2,500 training questions, AdamW (lr 1e-4, weight decay 0.01 with
Hugging Face's groups), 10% linear warmup then linear decay, clipping at 1.0,
seed 42; then the first 1,000 dev questions, n-best 20, max answer 30, and the
official v1.1 scores. Prints one JSON line with the wall time of the whole.

    python3 bench/peer_protocol.py [--threads 2] [--train-questions 2500] [--eval-questions 1000]
"""

import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "reference"))
sys.path.insert(0, HERE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-questions", type=int, default=2500)
    ap.add_argument("--eval-questions", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--eval-batch", type=int, default=32)
    args = ap.parse_args()
    started = time.perf_counter()

    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch
    from transformers import BertForQuestionAnswering, get_linear_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    import pipeline  # the notebook's post-processing and the official scoring
    import window_digest as ref
    from peer_model import decay_groups

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    tokenizer = ref.load_tokenizer()
    data = ref.data_dir()
    train = ref.load_squad(os.path.join(data, ref.SPLIT_FILES["train"]), args.train_questions)
    dev = ref.load_squad(os.path.join(data, ref.SPLIT_FILES["dev"]), args.eval_questions)
    train_f = ref.preprocess_train(tokenizer, train)
    dev_f = ref.preprocess_validation(tokenizer, dev)

    model = BertForQuestionAnswering.from_pretrained(ref.tokenizer_dir())
    n = len(train_f["input_ids"])
    steps = math.ceil(n / args.batch)
    optimizer = torch.optim.AdamW(decay_groups(model, 0.01), lr=1e-4, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    cols = {k: torch.tensor(train_f[k]) for k in
            ("input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions")}
    order = torch.randperm(n, generator=torch.Generator().manual_seed(42))
    model.train()
    losses = []
    train_started = time.perf_counter()
    for step in range(steps):
        idx = order[step * args.batch:(step + 1) * args.batch]
        out = model(**{k: v[idx] for k, v in cols.items()})
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
    train_seconds = time.perf_counter() - train_started

    model.eval()
    starts, ends = [], []
    dev_cols = {k: torch.tensor(dev_f[k]) for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        for i in range(0, len(dev_f["input_ids"]), args.eval_batch):
            out = model(**{k: v[i:i + args.eval_batch] for k, v in dev_cols.items()})
            starts.append(out.start_logits.numpy())
            ends.append(out.end_logits.numpy())
    predictions = pipeline.postprocess(np.concatenate(starts), np.concatenate(ends), dev_f, dev)
    scores = pipeline.squad_v11_score(dev, predictions)
    print(json.dumps({
        "wall_seconds": time.perf_counter() - started, "train_seconds": train_seconds,
        "steps": steps, "windows": n, "first_loss": losses[0], "last_loss": losses[-1],
        "exact_match": scores["exact_match"], "f1": scores["f1"], "questions": scores["total"],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
