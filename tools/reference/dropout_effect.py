#!/usr/bin/env python3
"""How much each side's dropout raises the training loss, at one fixed set of
weights: does squadlab's dropout act on the model as PyTorch's does?

Both sides take the same fine-tuned QA folder with dropout p restored in its
`config.json` and the same batches (squadlab's window order); squadlab trains
at a learning rate of 1e-30 (the weights do not move in f32), so each step's
logged loss is a training-mode loss with its own dropout masks at those
weights. PyTorch computes the same batches' training-mode loss with its masks
(`--draws` draws per batch) and the loss without dropout, which both sides
share (the parity harness shows the dropout-free arithmetic equal). Equal
dropout raises both losses by the same amount, within the masks' noise.

    python3 tools/reference/dropout_effect.py MODEL_DIR [--steps 20] [--p 0.1]

MODEL_DIR: a `BertForQuestionAnswering` folder, for example the final `model/`
of a `parity.py` run (F1 50.7 on the protocol, where dropout matters).
"""

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import parity  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--p", type=float, default=0.1)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--questions", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bin", default=os.path.join(parity.ROOT, "target", "release", "squadlab"))
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    # What parity.run_squadlab reads: a learning rate that leaves f32 weights
    # as they are, and a one-question evaluation it does not use.
    args.lr, args.max_steps, args.eval_questions = 1e-30, args.steps, 1

    import torch
    from transformers import BertForQuestionAnswering
    from transformers.utils import logging as hf_logging

    import window_digest as ref

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    work = args.work or tempfile.mkdtemp(prefix="dropout-effect-")
    start = os.path.join(work, "start")
    shutil.copytree(args.model, start, dirs_exist_ok=True)
    with open(os.path.join(start, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    config["hidden_dropout_prob"] = config["attention_probs_dropout_prob"] = args.p
    with open(os.path.join(start, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f)

    tokenizer = ref.load_tokenizer()
    train = ref.load_squad(os.path.join(ref.data_dir(), ref.SPLIT_FILES["train"]), args.questions)
    feats = ref.preprocess_train(tokenizer, train)
    steps = min(math.ceil(len(feats["input_ids"]) / args.batch), args.steps)
    cols = {k: torch.tensor(feats[k]) for k in parity.COLUMNS}
    parity.log(f"squadlab: {steps} training-mode losses at fixed weights")
    _, ours, order = parity.run_squadlab(args, work, start, steps, {})

    parity.log("PyTorch: the same batches with and without dropout")
    torch.manual_seed(args.seed)
    model = BertForQuestionAnswering.from_pretrained(start)
    print(f"dropout p = {args.p} at fixed weights ({args.model}), {steps} batches of {args.batch}")
    print(f"{'step':>4} {'no dropout':>11} {'squadlab':>9} {'torch':>9}  torch draws")
    rows = []
    with torch.no_grad():
        for step in range(steps):
            idx = torch.tensor(order[step * args.batch:(step + 1) * args.batch])
            batch = {k: v[idx] for k, v in cols.items()}
            model.eval()
            clean = model(**batch).loss.item()
            model.train()
            draws = [model(**batch).loss.item() for _ in range(args.draws)]
            rows.append((clean, ours[step]["loss"], statistics.mean(draws)))
            print(f"{step + 1:>4} {clean:>11.4f} {ours[step]['loss']:>9.4f} {statistics.mean(draws):>9.4f}  "
                  + " ".join(f"{d:.4f}" for d in draws))
    rise_ours = [o - c for c, o, _ in rows]
    rise_torch = [t - c for c, _, t in rows]
    diff = [a - b for a, b in zip(rise_ours, rise_torch)]
    se = statistics.stdev(diff) / math.sqrt(len(diff))
    print(f"\nmean loss without dropout {statistics.mean(r[0] for r in rows):.4f}; "
          f"dropout raises it by {statistics.mean(rise_ours):.4f} in squadlab and "
          f"{statistics.mean(rise_torch):.4f} in PyTorch (difference {statistics.mean(diff):+.4f} ± {se:.4f} s.e., paired by batch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
