#!/usr/bin/env python3
"""Checks `squadlab predict` against transformers on one model folder: the same
question and passage (long enough for several windows), the notebook's
post-processing on transformers' logits, and squadlab's answer, score and
candidates. Equal scores (start + end logits) to 1e-4 mean equal logits there.

    python3 tools/reference/compare_predict.py MODEL_DIR [--bin target/release/squadlab]
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch
from transformers import AutoTokenizer, BertForQuestionAnswering

QUESTION = "Which NFL team represented the AFC at Super Bowl 50?"
# An invented passage: long enough for several 384-token windows.
PASSAGE = " ".join(
    [
        "Super Bowl 50 was an American football game to determine the champion of the National Football League.",
        "The American Football Conference champion Denver Broncos defeated the National Football Conference",
        "champion Carolina Panthers 24 to 10 to earn their third Super Bowl title.",
    ]
    + [f"Paragraph {i} talks about the weather, the stadium, the crowd and the music of the evening." for i in range(60)]
    + ["The game was played on February 7, 2016, at Levi's Stadium in Santa Clara, California."]
)


def reference(model_dir):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = BertForQuestionAnswering.from_pretrained(model_dir).eval()
    enc = tok([QUESTION.strip()], [PASSAGE], max_length=384, truncation="only_second", stride=128,
              return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")
    inputs = {k: torch.tensor(enc[k]) for k in ("input_ids", "token_type_ids", "attention_mask")}
    with torch.no_grad():
        out = model(**inputs)
    cands = []
    for w in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(w)
        offsets = [o if seq[k] == 1 else None for k, o in enumerate(enc["offset_mapping"][w])]
        sl, el = out.start_logits[w].numpy(), out.end_logits[w].numpy()
        for s in np.argsort(sl)[-1:-21:-1].tolist():
            for e in np.argsort(el)[-1:-21:-1].tolist():
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > 30:
                    continue
                cands.append((float(sl[s] + el[e]), offsets[s][0], offsets[e][1]))
    best = max(cands, key=lambda c: c[0]) if cands else None
    return len(enc["input_ids"]), best, sorted(cands, key=lambda c: -c[0])[:20]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--bin", default=os.path.join("target", "release", "squadlab"))
    args = ap.parse_args()
    windows, best, top = reference(args.model)
    proc = subprocess.run([args.bin, "predict", "--model", args.model, "--question", QUESTION,
                           "--context", PASSAGE, "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr)
    ours = json.loads(proc.stdout)
    print(f"windows: {windows}")
    print(f"transformers: {PASSAGE[best[1]:best[2]]!r} score {best[0]:.5f} span {best[1]}..{best[2]}")
    print(f"squadlab:     {ours['answer']!r} score {ours['score']:.5f} span {ours['start_char']}..{ours['end_char']}")
    diffs = [abs(c["score"] - t[0]) for c, t in zip(ours["candidates"], top)]
    same_spans = all((c["start_char"], c["end_char"]) == (t[1], t[2]) for c, t in zip(ours["candidates"], top))
    print(f"candidates: {len(ours['candidates'])} vs {len(top)}; same spans in order: {same_spans}; "
          f"max score difference {max(diffs):.2e}")
    ok = (ours["start_char"], ours["end_char"]) == (best[1], best[2]) and abs(ours["score"] - best[0]) < 1e-4
    print("MATCH" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
