"""A random-init BERT and synthetic SQuAD-format data, for a GPU run that
needs nothing from the shared data folder or the hub.

    python3 tools/gpu/synthetic_task.py OUT_DIR [TRAIN_QUESTIONS] [EVAL_QUESTIONS] [--arch base|large|tiny]

Writes OUT_DIR/bert-{arch}-random/ (config.json, model.safetensors, vocab.txt;
base and large have bert-base/large-uncased's shapes, tiny is 2 layers of 64
for dry runs) and OUT_DIR/train.json, OUT_DIR/dev.json (10000 and 1000
questions by default; 0 writes a file with no paragraphs). Words are single
vocabulary tokens, contexts 150 to 450 words (so some need two windows of
384), answers 1 to 4 words cut from the context.
"""
import argparse
import json
import os
import random

# BertConfig overrides; everything else (vocab 30522, 512 positions, GELU,
# dropout 0.1) is BertConfig's default, which is bert-base-uncased's.
ARCHS = {
    "base": {},
    "large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16, intermediate_size=4096),
    "tiny": dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=2, intermediate_size=128),
}

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("out")
ap.add_argument("train_questions", nargs="?", type=int, default=10000)
ap.add_argument("eval_questions", nargs="?", type=int, default=1000)
ap.add_argument("--arch", choices=list(ARCHS), default="base")
args = ap.parse_args()
out, n_train, n_eval = args.out, args.train_questions, args.eval_questions
os.makedirs(out, exist_ok=True)

special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
words = [f"w{i}" for i in range(30522 - len(special))]
model_dir = os.path.join(out, f"bert-{args.arch}-random")
os.makedirs(model_dir, exist_ok=True)
with open(os.path.join(model_dir, "vocab.txt"), "w") as f:
    f.write("\n".join(special + words) + "\n")

import torch  # noqa: E402
from transformers import BertConfig, BertForQuestionAnswering  # noqa: E402

torch.manual_seed(0)
# Even large (335M parameters) inits and saves in a few seconds on a CPU.
model = BertForQuestionAnswering(BertConfig(**ARCHS[args.arch]))
model.save_pretrained(model_dir, safe_serialization=True)


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
