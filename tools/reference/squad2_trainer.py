#!/usr/bin/env python3
"""experiments/minilm-squad2-local.ron through the Hugging Face Trainer, as
run_qa.py --version_2_with_negative runs it: the peer beside squadlab's run in
the README. A SMOKE PROTOCOL, NOT AN OFFICIAL SPLIT: both parts come from
dev-v2.0.json, training on the questions of its first 7 articles and scoring
the first 1,000 questions of its last 3.

- Windows: the fast tokenizer, only_second, 384 / 128, padded to 384; an
  unanswerable question, or an answer outside the window, is labelled at the
  CLS position (run_qa.py's prepare_train_features).
- Training: Trainer, batch 16, 2 epochs, lr 1e-4, weight decay 0.01, 10%
  linear warmup, clipping 1.0, seed 42 (set_seed before the model is made).
- Answers: utils_qa.py's rules with version_2_with_negative (the lowest null
  score over the windows, n-best 20, max answer 30, threshold 0), written
  here from its documented behaviour; null odds are null − best span.
- Scores: the official v2.0 rules (squad2_fixtures.score) with the real null
  odds as no-answer probabilities, so the best thresholds mean something, and
  without thresholding the answers themselves (na-prob-thresh +inf), as
  squadlab's evaluation reports them.

    python3 tools/reference/squad2_trainer.py [--threads 2] [--seed 42]

Prints one JSON line.
"""
import argparse
import collections
import json
import math
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import squad2_fixtures  # noqa: E402  the official v2.0 rules
import window_digest as ref  # noqa: E402  tokenizer and windowing helpers

N_BEST, MAX_ANSWER = 20, 30
COLUMNS = ("input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions")


def squad2_dir():
    return os.path.join(ref.data_dir(), "..", "squad2")


def articles(path, lo, hi, limit=None):
    """The questions of articles [lo, hi) in window_digest.load_squad's columns."""
    with open(path, encoding="utf-8") as f:
        return ref.flatten(json.load(f)["data"][lo:hi], limit)


def preprocess_train(tokenizer, examples):
    """run_qa.py's rule: CLS (0) for no answer or an answer outside the window."""
    inputs = ref.tokenize(tokenizer, examples)
    offsets_all = inputs.pop("offset_mapping")
    sample_map = inputs.pop("overflow_to_sample_mapping")
    starts, ends = [], []
    for i, offsets in enumerate(offsets_all):
        answer = examples["answers"][sample_map[i]]
        if not answer["answer_start"]:
            starts.append(0)
            ends.append(0)
            continue
        seq = inputs.sequence_ids(i)
        context_start = seq.index(1)
        context_end = context_start
        while seq[context_end + 1] == 1:
            context_end += 1
        s, e = ref.answer_span(offsets, context_start, context_end, answer)
        starts.append(s)
        ends.append(e)
    inputs["start_positions"] = starts
    inputs["end_positions"] = ends
    return inputs


def postprocess_v2(start_logits, end_logits, features, examples, threshold=0.0):
    """utils_qa.py with version_2_with_negative: returns ({id: answer}, {id: null odds})."""
    by_example = collections.defaultdict(list)
    for idx, example_id in enumerate(features["example_id"]):
        by_example[example_id].append(idx)
    answers, odds = {}, {}
    for example_id, context in zip(examples["id"], examples["context"]):
        candidates, null = [], None
        for f in by_example[example_id]:
            sl, el = start_logits[f], end_logits[f]
            offsets = features["offset_mapping"][f]
            feature_null = sl[0] + el[0]
            if null is None or null["score"] > feature_null:
                null = {"offsets": (0, 0), "score": feature_null, "start_logit": sl[0], "end_logit": el[0]}
            for s in sl.argsort()[-1:-N_BEST - 1:-1].tolist():
                for e in el.argsort()[-1:-N_BEST - 1:-1].tolist():
                    if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > MAX_ANSWER:
                        continue
                    candidates.append({"offsets": (offsets[s][0], offsets[e][1]), "score": sl[s] + el[e],
                                       "start_logit": sl[s], "end_logit": el[e]})
        candidates.append(null)
        best = sorted(candidates, key=lambda c: c["score"], reverse=True)[:N_BEST]
        if not any(c["offsets"] == (0, 0) for c in best):
            best.append(null)
        for c in best:
            c["text"] = context[c["offsets"][0]:c["offsets"][1]]
        if len(best) == 1 and best[0]["text"] == "":
            best.insert(0, {"text": "empty", "start_logit": 0.0, "end_logit": 0.0, "score": 0.0})
        span = next(c for c in best if c["text"] != "")
        diff = null["score"] - span["start_logit"] - span["end_logit"]
        odds[example_id] = float(diff)
        answers[example_id] = "" if diff > threshold else span["text"]
    return answers, odds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--smoke", action="store_true", help="2 steps and 40 questions: checks the script runs")
    args = ap.parse_args()
    started = time.perf_counter()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    import numpy as np
    import torch
    import transformers
    from transformers import (BertForQuestionAnswering, Trainer, TrainingArguments,
                              default_data_collator, set_seed)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    tokenizer = ref.load_tokenizer()
    dev_file = os.path.join(squad2_dir(), "dev-v2.0.json")
    train = articles(dev_file, 0, 7)
    dev = articles(dev_file, 32, 35, limit=40 if args.smoke else 1000)
    train_f = preprocess_train(tokenizer, train)
    dev_f = ref.preprocess_validation(tokenizer, dev)

    set_seed(args.seed)
    model = BertForQuestionAnswering.from_pretrained(ref.tokenizer_dir())
    n = len(train_f["input_ids"])
    rows = [{k: torch.tensor(train_f[k][i]) for k in COLUMNS} for i in range(n)]
    train_started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        training = TrainingArguments(
            output_dir=out, per_device_train_batch_size=16, num_train_epochs=2,
            # transformers 5 takes a warmup_steps below 1 as a ratio.
            learning_rate=1e-4, weight_decay=0.01, warmup_steps=0.1, max_grad_norm=1.0,
            seed=args.seed, logging_steps=1, save_strategy="no", report_to=[], use_cpu=True,
            disable_tqdm=True, max_steps=2 if args.smoke else -1,
        )
        trainer = Trainer(model=model, args=training, train_dataset=rows, data_collator=default_data_collator)
        result = trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    train_seconds = time.perf_counter() - train_started

    model.eval()
    cols = {k: torch.tensor(dev_f[k]) for k in COLUMNS[:3]}
    starts, ends = [], []
    with torch.no_grad():
        for i in range(0, len(dev_f["input_ids"]), 32):
            o = model(**{k: v[i:i + 32] for k, v in cols.items()})
            starts.append(o.start_logits.numpy())
            ends.append(o.end_logits.numpy())
    answers, odds = postprocess_v2(np.concatenate(starts), np.concatenate(ends), dev_f, dev)

    qas = [({"id": i, "answers": [{"text": t} for t in a["text"]]}, c)
           for i, a, c in zip(dev["id"], dev["answers"], dev["context"])]
    scores = squad2_fixtures.score(qas, answers)
    # The best-threshold search answers with the best span where it does not abstain.
    spans, _ = postprocess_v2(np.concatenate(starts), np.concatenate(ends), dev_f, dev, math.inf)
    best = squad2_fixtures.score(qas, spans, odds, math.inf)
    for k in ("best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"):
        scores[k] = best[k]
    print(json.dumps({
        "side": "transformers.Trainer", "transformers": transformers.__version__,
        "torch": torch.__version__, "seed": args.seed, "windows": n, "steps": result.global_step,
        "wall_seconds": time.perf_counter() - started, "train_seconds": train_seconds,
        "mean_loss": sum(losses) / len(losses), **scores,
    }))


if __name__ == "__main__":
    main()
