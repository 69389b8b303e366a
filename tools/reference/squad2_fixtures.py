#!/usr/bin/env python3
"""SQuAD 2.0 scoring fixtures for tests/it/squad2.rs.

Our own implementation of the rules of the official evaluate-v2.0.py (written
from its documented behaviour, not copied): normalisation as v1.1; an
unanswerable question's gold is ['']; F1 is 1 when both token lists are empty
and 0 when only one is; a question whose no-answer probability is above
--na-prob-thresh (default 1.0) counts as answered ""; the best-threshold
search walks questions by ascending probability (stable sort, file order on
ties) and keeps the first best total.

Writes, into tests/fixtures/squad2/:
  leaderboard.json        the scores of the shared leaderboard prediction file
                          (whole dev set), without and with
  leaderboard_na_probs.json, drawn with a fixed seed, higher where it answers "";
  synthetic_preds.json,   predictions and no-answer probabilities for the first
  synthetic_na_probs.json 2,000 dev questions, drawn with a fixed seed: gold,
                          plausible, shortened, wrong, "" answers; probabilities
                          on a coarse grid so that ties occur;
  synthetic.json          their scores at thresholds 1.0 and 0.5, with and
                          without the na-prob file.

Usage: python3 tools/reference/squad2_fixtures.py [SQUAD2_DIR]
       (default ../shared/data/squad2)
"""
import collections
import json
import random
import re
import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/data/squad2"
OUT = ROOT / "tests/fixtures/squad2"
SYNTHETIC_QUESTIONS = 2000


def normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s, flags=re.UNICODE)
    return " ".join(s.split())


def tokens(s):
    return normalize(s).split() if s else []


def exact(gold, pred):
    return int(normalize(gold) == normalize(pred))


def f1(gold, pred):
    g, p = tokens(gold), tokens(pred)
    if not g or not p:
        return int(g == p)
    same = sum((collections.Counter(g) & collections.Counter(p)).values())
    if same == 0:
        return 0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def questions(data, limit=None):
    out = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                out.append((qa, paragraph["context"]))
    return out[:limit] if limit else out


def score(qas, preds, na_probs=None, thresh=1.0):
    has_ans = {qa["id"]: bool(qa["answers"]) for qa, _ in qas}
    raw_exact, raw_f1 = {}, {}
    for qa, _ in qas:
        golds = [a["text"] for a in qa["answers"] if normalize(a["text"])] or [""]
        pred = preds[qa["id"]]
        raw_exact[qa["id"]] = max(exact(g, pred) for g in golds)
        raw_f1[qa["id"]] = max(f1(g, pred) for g in golds)
    probs = na_probs if na_probs is not None else {k: 0.0 for k in preds}

    def thresholded(raw):
        return {k: (float(not has_ans[k]) if probs[k] > thresh else v) for k, v in raw.items()}

    ex, f = thresholded(raw_exact), thresholded(raw_f1)

    def mean(scores, ids):
        return 100.0 * sum(scores[k] for k in ids) / len(ids)

    ids = list(ex)
    out = {"exact": mean(ex, ids), "f1": mean(f, ids), "total": len(ids)}
    has = [k for k in ids if has_ans[k]]
    no = [k for k in ids if not has_ans[k]]
    if has:
        out.update(HasAns_exact=mean(ex, has), HasAns_f1=mean(f, has), HasAns_total=len(has))
    if no:
        out.update(NoAns_exact=mean(ex, no), NoAns_f1=mean(f, no), NoAns_total=len(no))
    if na_probs is not None:
        for name, raw in (("exact", raw_exact), ("f1", raw_f1)):
            current = best = sum(1 for k in has_ans if not has_ans[k])
            best_thresh = 0.0
            for k in sorted(na_probs, key=lambda k: na_probs[k]):
                if k not in raw:
                    continue
                if has_ans[k]:
                    current += raw[k]
                else:
                    current += 0 if not preds[k] else -1
                if current > best:
                    best, best_thresh = current, na_probs[k]
            out["best_" + name] = 100.0 * best / len(raw)
            out["best_" + name + "_thresh"] = best_thresh
    return out


def synthetic(qas):
    rng = random.Random(20261207)
    preds, probs = {}, {}
    for qa, context in qas:
        u = rng.random()
        if qa["answers"]:
            if u < 0.5:
                pred = rng.choice(qa["answers"])["text"]
            elif u < 0.65:
                words = qa["answers"][0]["text"].split()
                pred = " ".join(words[: max(1, len(words) // 2)])
            elif u < 0.8:
                pred = wrong(rng, context)
            else:
                pred = rng.choice(["", "the", "The.", "  "])
        elif u < 0.4:
            pred = ""
        elif u < 0.7 and qa.get("plausible_answers"):
            pred = qa["plausible_answers"][0]["text"]
        else:
            pred = wrong(rng, context)
        preds[qa["id"]] = pred
        probs[qa["id"]] = na_prob(rng, pred)
    return preds, probs


def wrong(rng, context):
    words = context.split()
    start = rng.randrange(len(words))
    return " ".join(words[start : start + rng.randrange(1, 6)])


def na_prob(rng, pred):
    """Higher for an empty answer, as a model's would be, on a coarse grid so
    that equal probabilities (ties) are common."""
    base = 12 if not pred.strip() else 6
    return min(20, max(0, base + rng.randrange(-6, 7))) / 20


def main():
    dev = json.loads((DATA / "dev-v2.0.json").read_text())["data"]
    OUT.mkdir(parents=True, exist_ok=True)
    board = DATA / "reference_predictions/leaderboard_v2_bidaf_selfattn_elmo_single_allenai_stanford.json"
    all_qas = questions(dev)
    board_preds = json.loads(board.read_text())
    rng = random.Random(7)
    board_probs = {qa["id"]: na_prob(rng, board_preds[qa["id"]]) for qa, _ in all_qas}
    (OUT / "leaderboard_na_probs.json").write_text(json.dumps(board_probs) + "\n")
    fixtures = {
        "no_na_probs": score(all_qas, board_preds),
        "na_probs_thresh_1": score(all_qas, board_preds, board_probs, 1.0),
    }
    (OUT / "leaderboard.json").write_text(json.dumps(fixtures, indent=1) + "\n")

    qas = questions(dev, SYNTHETIC_QUESTIONS)
    preds, probs = synthetic(qas)
    (OUT / "synthetic_preds.json").write_text(json.dumps(preds) + "\n")
    (OUT / "synthetic_na_probs.json").write_text(json.dumps(probs) + "\n")
    cases = {
        "no_na_probs": score(qas, preds),
        "na_probs_thresh_1": score(qas, preds, probs, 1.0),
        "na_probs_thresh_0.5": score(qas, preds, probs, 0.5),
    }
    (OUT / "synthetic.json").write_text(
        json.dumps({"questions": SYNTHETIC_QUESTIONS, "cases": cases}, indent=1) + "\n"
    )
    print(json.dumps(fixtures, indent=1))
    print(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
