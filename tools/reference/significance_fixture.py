#!/usr/bin/env python3
"""Makes tests/fixtures/significance.json: what scipy and statsmodels say for
the significance tests squadlab runs, so CI checks squadlab's own numerics
without any Python package.

- McNemar (statsmodels.stats.contingency_tables.mcnemar; exact below 25 flips,
  else chi-squared with continuity correction), on flip counts from none to
  thousands.
- 95% Student-t intervals (scipy.stats.t.interval) on seed groups.
- The paired percentile bootstrap on delta F1 (scipy.stats.bootstrap,
  10,000 resamples), on synthetic per-question scores stored in the fixture.
- Two pairs of real SQuAD v1.1 dev prediction files from
  $SQUADLAB_DATA/reference_predictions (default ../shared/data/squad beside
  the repository): the fixture keeps only the statistics, never the data.
  Per-question EM/F1 follow the official evaluate-v1.1.py rules.

    pip install scipy statsmodels
    python3 tools/reference/significance_fixture.py
"""

import collections
import json
import os
import re
import string
import sys

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "significance.json")
DATA = os.environ.get("SQUADLAB_DATA", os.path.join(ROOT, "..", "shared", "data", "squad"))
RESAMPLES = 10_000

# (b, c): A right and B wrong, A wrong and B right.
FLIPS = [(0, 0), (0, 3), (2, 10), (5, 7), (12, 12), (3, 21), (13, 12), (20, 40),
         (150, 210), (1000, 1100), (4000, 200)]

SEED_GROUPS = [
    [80.0, 81.0, 82.0],
    [88.41, 88.52],
    [39.176, 42.571, 28.398, 35.2, 31.9],
    [90.68, 90.51, 90.84, 90.77, 90.49, 90.62, 90.71, 90.55, 90.80, 90.66],
]


def mcnemar_case(b, c):
    exact = b + c < 25
    r = mcnemar([[0, b], [c, 0]], exact=exact, correction=True)
    return {"b": b, "c": c, "method": "exact_binomial" if exact else "chi_squared_corrected",
            "statistic": float(r.statistic), "p_value": float(r.pvalue)}


def t_case(values):
    v = np.array(values, dtype=np.float64)
    mean, sd, n = float(v.mean()), float(v.std(ddof=1)), len(v)
    lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=sd / np.sqrt(n))
    return {"values": values, "mean": mean, "std": sd, "n": n, "low": float(lo), "high": float(hi)}


def bootstrap_ci(f1_a, f1_b):
    """scipy's paired percentile bootstrap on mean(B) - mean(A), in F1 points."""
    a, b = 100.0 * np.asarray(f1_a), 100.0 * np.asarray(f1_b)
    r = stats.bootstrap((a, b), lambda x, y, axis=-1: y.mean(axis=axis) - x.mean(axis=axis),
                        paired=True, vectorized=True, n_resamples=RESAMPLES, batch=500,
                        confidence_level=0.95, method="percentile", random_state=np.random.default_rng(0))
    return {"delta": float(b.mean() - a.mean()), "low": float(r.confidence_interval.low),
            "high": float(r.confidence_interval.high), "resamples": RESAMPLES}


def synthetic_pair(n, rng):
    """Two correlated systems: B a little better than A on the same questions."""
    skill = rng.random(n)
    f1_a = np.clip(skill + rng.normal(0, 0.25, n), 0, 1)
    f1_b = np.clip(skill + 0.03 + rng.normal(0, 0.25, n), 0, 1)
    f1_a, f1_b = np.round(f1_a, 4), np.round(f1_b, 4)
    em = lambda f: (f > 0.8).astype(np.float64)
    return em(f1_a), em(f1_b), f1_a, f1_b


# The official evaluate-v1.1.py rules.
def normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_one(prediction, gold):
    p, g = normalize(prediction).split(), normalize(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def per_question(dev, predictions):
    em, f1 = [], []
    for article in dev["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                golds = [a["text"] for a in qa["answers"]]
                pred = predictions.get(qa["id"])
                if pred is None:
                    em.append(0.0)
                    f1.append(0.0)
                    continue
                em.append(float(max(normalize(pred) == normalize(g) for g in golds)))
                f1.append(max(f1_one(pred, g) for g in golds))
    return np.array(em), np.array(f1)


def pair_case(dev, name_a, name_b):
    load = lambda n: json.load(open(os.path.join(DATA, "reference_predictions", n), encoding="utf-8"))
    em_a, f1_a = per_question(dev, load(name_a))
    em_b, f1_b = per_question(dev, load(name_b))
    b = int(((em_a > 0.5) & (em_b < 0.5)).sum())
    c = int(((em_a < 0.5) & (em_b > 0.5)).sum())
    return {"a": name_a, "b": name_b, "questions": len(em_a),
            "exact_match_a": 100 * em_a.mean(), "exact_match_b": 100 * em_b.mean(),
            "f1_a": 100 * f1_a.mean(), "f1_b": 100 * f1_b.mean(),
            "mcnemar": mcnemar_case(b, c), "bootstrap": bootstrap_ci(f1_a, f1_b)}


def main():
    rng = np.random.default_rng(17)
    bootstrap = []
    for n in (300, 2000):
        em_a, em_b, f1_a, f1_b = synthetic_pair(n, rng)
        b = int(((em_a > 0.5) & (em_b < 0.5)).sum())
        c = int(((em_a < 0.5) & (em_b > 0.5)).sum())
        bootstrap.append({"exact_match_a": em_a.tolist(), "exact_match_b": em_b.tolist(),
                          "f1_a": f1_a.tolist(), "f1_b": f1_b.tolist(),
                          "mcnemar": mcnemar_case(b, c), "bootstrap": bootstrap_ci(f1_a, f1_b)})
    fixture = {
        "made_by": "tools/reference/significance_fixture.py",
        "scipy": __import__("scipy").__version__,
        "statsmodels": __import__("statsmodels").__version__,
        "mcnemar": [mcnemar_case(b, c) for b, c in FLIPS],
        "t_interval": [t_case(v) for v in SEED_GROUPS],
        "bootstrap": bootstrap,
        "leaderboard_pairs": [],
    }
    dev_path = os.path.join(DATA, "dev-v1.1.json")
    if os.path.exists(dev_path):
        dev = json.load(open(dev_path, encoding="utf-8"))
        for a, b in [("leaderboard_logistic_regression_baseline_stanford.json", "bert_tiny_L2_H128_run_squad_heytgala.json"),
                     ("leaderboard_match_lstm_boundary_ensemble_smu.json", "leaderboard_bert_ensemble_google.json")]:
            fixture["leaderboard_pairs"].append(pair_case(dev, a, b))
            print(json.dumps({k: v for k, v in fixture["leaderboard_pairs"][-1].items()}), file=sys.stderr)
    else:
        print(f"warning: {dev_path} is missing: no leaderboard pairs in the fixture", file=sys.stderr)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
