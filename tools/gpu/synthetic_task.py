"""A random-init BERT-base and synthetic SQuAD-format data, for a GPU run that
needs nothing from the shared data folder or the hub.

    python3 tools/gpu/synthetic_task.py OUT_DIR [TRAIN_QUESTIONS] [EVAL_QUESTIONS]

Writes OUT_DIR/bert-base-random/ (config.json, model.safetensors, vocab.txt)
and OUT_DIR/train.json, OUT_DIR/dev.json. Words are single vocabulary tokens,
contexts 150 to 450 words (so some need two windows of 384), answers 1 to 4
words cut from the context.
"""
import json
import os
import random
import sys

out = sys.argv[1]
n_train = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
n_eval = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
os.makedirs(out, exist_ok=True)

special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
words = [f"w{i}" for i in range(30522 - len(special))]
model_dir = os.path.join(out, "bert-base-random")
os.makedirs(model_dir, exist_ok=True)
with open(os.path.join(model_dir, "vocab.txt"), "w") as f:
    f.write("\n".join(special + words) + "\n")

import torch  # noqa: E402
from transformers import BertConfig, BertForQuestionAnswering  # noqa: E402

torch.manual_seed(0)
BertForQuestionAnswering(BertConfig()).save_pretrained(model_dir, safe_serialization=True)


def squad(n, seed):
    rng = random.Random(seed)
    paragraphs = []
    for i in range(n):
        context_words = [rng.choice(words[:5000]) for _ in range(rng.randint(150, 450))]
        length = rng.randint(1, 4)
        at = rng.randrange(len(context_words) - length)
        answer = " ".join(context_words[at:at + length])
        start = len(" ".join(context_words[:at])) + (1 if at else 0)
        question = " ".join(context_words[at - 6:at] if at >= 6 else context_words[:6]) + " ?"
        context = " ".join(context_words)
        assert context[start:start + len(answer)] == answer
        paragraphs.append({"context": context, "qas": [{
            "id": f"s{seed}-{i}", "question": question,
            "answers": [{"text": answer, "answer_start": start}]}]})
    return {"version": "1.1", "data": [{"title": "synthetic", "paragraphs": paragraphs}]}


for name, n, seed in (("train.json", n_train, 1), ("dev.json", n_eval, 2)):
    with open(os.path.join(out, name), "w") as f:
        json.dump(squad(n, seed), f)
print("wrote", out)
