#!/usr/bin/env python3
"""Makes tests/fixtures/breakdown.json: `squadlab breakdown`'s numbers worked
out independently, bucket for bucket, on two SQuAD v1.1 leaderboard
prediction files from $SQUADLAB_DATA/reference_predictions (default
../shared/data/squad beside the repository). The fixture keeps statistics
only, never the data.

The rules (issue 36, written again here rather than shared with Rust):
- question type: the first of the question words found as a whole word in
  the lower-cased question, the longer phrase where two start together;
  whom and whose count as who; none found: other;
- answer length: whitespace tokens of the first gold answer, buckets 1, 2, 3,
  4-5, 6-10, 11+; context length: whitespace tokens of the passage, 1-100,
  101-150, 151-200, 201-300, 301+.
Per-question EM and F1 follow the official evaluate-v1.1.py (shared with
significance_fixture.py); intervals are scipy's percentile bootstrap (10,000
resamples), McNemar's test statsmodels'.

    pip install scipy statsmodels
    python3 tools/reference/breakdown_fixture.py
"""

import json
import os
import re
import sys

import numpy as np
from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from significance_fixture import (  # noqa: E402
    DATA, RESAMPLES, ROOT, bootstrap_ci, mcnemar_case, per_question)

OUT = os.path.join(ROOT, "tests", "fixtures", "breakdown.json")
BASE = "leaderboard_logistic_regression_baseline_stanford.json"
RUN = "leaderboard_bert_ensemble_google.json"

QUESTION_WORDS = [("how many", "how many"), ("how much", "how much"), ("what", "what"),
                  ("which", "which"), ("who", "who"), ("whom", "who"), ("whose", "who"),
                  ("when", "when"), ("where", "where"), ("why", "why"), ("how", "how")]


def question_type(question):
    text = question.lower()
    best = None
    for phrase, bucket in QUESTION_WORDS:
        for m in re.finditer(re.escape(phrase), text):
            s, e = m.start(), m.end()
            if (s == 0 or not text[s - 1].isalnum()) and (e == len(text) or not text[e].isalnum()):
                candidate = (s, -len(phrase), bucket)
                best = candidate if best is None or candidate < best else best
                break
    return best[2] if best else "other"


def answer_length(answer):
    n = len(answer.split())
    for top, bucket in [(1, "1"), (2, "2"), (3, "3"), (5, "4-5"), (10, "6-10")]:
        if n <= top:
            return bucket
    return "11+"


def context_length(context):
    n = len(context.split())
    for top, bucket in [(100, "1-100"), (150, "101-150"), (200, "151-200"), (300, "201-300")]:
        if n <= top:
            return bucket
    return "301+"


def buckets(dev, by):
    out = []
    for article in dev["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append({"question-type": question_type(qa["question"]),
                            "answer-length": answer_length(qa["answers"][0]["text"]),
                            "context-length": context_length(para["context"])}[by])
    return np.array(out)


def mean_ci(values):
    r = stats.bootstrap((100.0 * values,), np.mean, vectorized=True, n_resamples=RESAMPLES,
                        batch=500, confidence_level=0.95, method="percentile",
                        random_state=np.random.default_rng(0))
    return [float(r.confidence_interval.low), float(r.confidence_interval.high)]


def main():
    dev_path = os.path.join(DATA, "dev-v1.1.json")
    dev = json.load(open(dev_path, encoding="utf-8"))
    load = lambda n: json.load(open(os.path.join(DATA, "reference_predictions", n), encoding="utf-8"))
    em_a, f1_a = per_question(dev, load(BASE))
    em_b, f1_b = per_question(dev, load(RUN))
    fixture = {"made_by": "tools/reference/breakdown_fixture.py", "base": BASE, "run": RUN,
               "resamples": RESAMPLES, "by": {}}
    for by in ["question-type", "answer-length", "context-length"]:
        labels = buckets(dev, by)
        rows = []
        for bucket in sorted(set(labels)):
            m = labels == bucket
            b = int(((em_a[m] > 0.5) & (em_b[m] < 0.5)).sum())
            c = int(((em_a[m] < 0.5) & (em_b[m] > 0.5)).sum())
            rows.append({"bucket": bucket, "count": int(m.sum()),
                         "run": {"exact_match": 100 * em_b[m].mean(), "f1": 100 * f1_b[m].mean(),
                                 "exact_match_interval": mean_ci(em_b[m]), "f1_interval": mean_ci(f1_b[m])},
                         "base": {"exact_match": 100 * em_a[m].mean(), "f1": 100 * f1_a[m].mean()},
                         "mcnemar": mcnemar_case(b, c), "delta_f1": bootstrap_ci(f1_a[m], f1_b[m])})
            print(by, bucket, rows[-1]["count"], round(rows[-1]["run"]["f1"], 2), file=sys.stderr)
        fixture["by"][by] = rows
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
