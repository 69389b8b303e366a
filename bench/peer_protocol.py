#!/usr/bin/env python3
"""The `minilm-squad-quick` protocol in PyTorch + transformers, as the
reference notebook runs it: windows padded to 384, batch 16, one epoch over
the first 2,500 training questions, AdamW (lr 1e-4, weight decay 0.01 with
Hugging Face's groups), 10% linear warmup (Hugging Face's rule,
ceil(0.1 × steps): 17 of 161) then linear decay, clipping at 1.0; then the
first 1,000 dev questions, n-best 20, max answer 30, and the official v1.1
scores. Prints one JSON line with the wall time of the whole.

Two ways to train:
- the default, a plain PyTorch loop (the benchmark's peer);
- `--trainer`: the Hugging Face `Trainer` itself, as `run_qa.py` uses it
  (`set_seed(seed)` before the model is made, so the QA head's init follows
  the seed; then `Trainer(...).train()`), for the seed study.

The seed study's paired arm gives the `Trainer` squadlab's course for a seed:
`--start-folder` a QA folder holding squadlab's initial head (instead of the
head `set_seed` draws) and `--order` a JSON list of window indices that its
sampler then yields in that order (instead of its seeded shuffle). Dropout
masks stay the `Trainer`'s own.

    python3 bench/peer_protocol.py [--threads 2] [--seed 42] [--trainer [--start-folder DIR] [--order FILE]]
                                   [--train-questions 2500] [--eval-questions 1000]
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools", "reference"))
sys.path.insert(0, HERE)

COLUMNS = ("input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions")


def plain_loop(torch, model, cols, n, args):
    """Seeded shuffle, forward, backward, clip, AdamW, schedule: the loop by hand."""
    import math

    from transformers import get_linear_schedule_with_warmup

    from peer_model import decay_groups

    steps = math.ceil(n / args.batch)
    optimizer = torch.optim.AdamW(decay_groups(model, 0.01), lr=args.lr, weight_decay=0.01)
    # Hugging Face's TrainingArguments.get_warmup_steps: ceil(ratio × steps).
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(args.warmup_ratio * steps), steps)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))
    model.train()
    losses = []
    for step in range(steps):
        idx = order[step * args.batch:(step + 1) * args.batch]
        out = model(**{k: v[idx] for k, v in cols.items()})
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(out.loss.item())
    return steps, losses


def hf_trainer(torch, model, cols, n, args):
    """The same protocol through `transformers.Trainer`: its sampler, its
    AdamW groups, its warmup rule, its clipping."""
    import tempfile

    from transformers import Trainer, TrainingArguments, default_data_collator

    trainer_class = Trainer
    if args.order:
        with open(args.order, encoding="utf-8") as f:
            order = [int(i) for i in json.load(f)]
        if sorted(order) != list(range(n)):
            raise SystemExit(f"{args.order}: not a permutation of the {n} training windows")
        trainer_class = fixed_order_trainer(Trainer, order, cols["input_ids"], args.batch)
    rows = [{k: v[i] for k, v in cols.items()} for i in range(n)]
    with tempfile.TemporaryDirectory() as out:
        training = TrainingArguments(
            output_dir=out, per_device_train_batch_size=args.batch, num_train_epochs=1,
            # transformers 5 takes a warmup_steps below 1 as a ratio (it has no warmup_ratio).
            learning_rate=args.lr, weight_decay=0.01, warmup_steps=args.warmup_ratio,
            max_grad_norm=1.0, seed=args.seed, logging_steps=1, save_strategy="no",
            report_to=[], use_cpu=True, disable_tqdm=True,
        )
        trainer = trainer_class(model=model, args=training, train_dataset=rows, data_collator=default_data_collator)
        result = trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        warmup = training.get_warmup_steps(result.global_step)
    args.order_steps_checked = getattr(trainer_class, "steps_checked", None)
    return result.global_step, losses, warmup


def fixed_order_trainer(trainer, order, input_ids, batch):
    """A `Trainer` whose sampler yields `order` (one epoch), not a seeded shuffle.
    Each step checks that its batch holds the windows the order names, in
    that order, so a dataloader that reshuffles cannot slip through."""
    import torch

    class FixedOrder(torch.utils.data.Sampler):
        def __len__(self):
            return len(order)

        def __iter__(self):
            return iter(order)

    class FixedOrderTrainer(trainer):
        steps_checked = 0

        def _get_train_sampler(self, train_dataset=None):
            return FixedOrder()

        def compute_loss(self, model, inputs, *args, **kwargs):
            k = FixedOrderTrainer.steps_checked
            want = input_ids[torch.tensor(order[k * batch:(k + 1) * batch])]
            if not torch.equal(inputs["input_ids"], want):
                raise SystemExit(f"step {k + 1}: the Trainer's batch is not windows {order[k * batch:(k + 1) * batch]}")
            FixedOrderTrainer.steps_checked += 1
            return super().compute_loss(model, inputs, *args, **kwargs)

    return FixedOrderTrainer


def evaluate(model, dev_f, dev, batch):
    """Logits for the dev windows, the notebook's post-processing, official v1.1 scores."""
    import numpy as np
    import torch

    import pipeline  # the notebook's post-processing and the official scoring

    model.eval()
    starts, ends = [], []
    cols = {k: torch.tensor(dev_f[k]) for k in COLUMNS[:3]}
    with torch.no_grad():
        for i in range(0, len(dev_f["input_ids"]), batch):
            out = model(**{k: v[i:i + batch] for k, v in cols.items()})
            starts.append(out.start_logits.numpy())
            ends.append(out.end_logits.numpy())
    predictions = pipeline.postprocess(np.concatenate(starts), np.concatenate(ends), dev_f, dev)
    return pipeline.squad_v11_score(dev, predictions)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-questions", type=int, default=2500)
    ap.add_argument("--eval-questions", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--eval-batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--warmup-ratio", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--trainer", action="store_true", help="train with transformers.Trainer, not the plain loop")
    ap.add_argument("--start-folder", default=None, help="start from this QA folder (its head included)")
    ap.add_argument("--order", default=None, help="with --trainer: a JSON list, the order of the training windows")
    args = ap.parse_args()
    if args.order and not args.trainer:
        ap.error("--order needs --trainer")
    started = time.perf_counter()

    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    import torch
    import transformers
    from transformers import BertForQuestionAnswering, set_seed
    from transformers.utils import logging as hf_logging

    import window_digest as ref

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    set_seed(args.seed)
    tokenizer = ref.load_tokenizer()
    data = ref.data_dir()
    train = ref.load_squad(os.path.join(data, ref.SPLIT_FILES["train"]), args.train_questions)
    dev = ref.load_squad(os.path.join(data, ref.SPLIT_FILES["dev"]), args.eval_questions)
    train_f = ref.preprocess_train(tokenizer, train)
    dev_f = ref.preprocess_validation(tokenizer, dev)

    set_seed(args.seed)
    model = BertForQuestionAnswering.from_pretrained(args.start_folder or ref.tokenizer_dir())
    n = len(train_f["input_ids"])
    cols = {k: torch.tensor(train_f[k]) for k in COLUMNS}
    train_started = time.perf_counter()
    if args.trainer:
        steps, losses, warmup = hf_trainer(torch, model, cols, n, args)
    else:
        import math

        steps, losses = plain_loop(torch, model, cols, n, args)
        warmup = math.ceil(args.warmup_ratio * steps)
    train_seconds = time.perf_counter() - train_started

    scores = evaluate(model, dev_f, dev, args.eval_batch)
    print(json.dumps({
        "side": "transformers.Trainer" if args.trainer else "pytorch loop",
        "transformers": transformers.__version__, "torch": torch.__version__, "seed": args.seed,
        "wall_seconds": time.perf_counter() - started, "train_seconds": train_seconds,
        "steps": steps, "warmup_steps": warmup, "windows": n,
        "first_loss": losses[0], "last_loss": losses[-1], "mean_loss": sum(losses) / len(losses),
        "exact_match": scores["exact_match"], "f1": scores["f1"], "questions": scores["total"],
        "start_folder": args.start_folder, "order": args.order,
        "order_steps_checked": getattr(args, "order_steps_checked", None),
        "dropout": [model.config.hidden_dropout_prob, model.config.attention_probs_dropout_prob],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
