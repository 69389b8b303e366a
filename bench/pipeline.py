#!/usr/bin/env python3
"""Benchmark: the Python peer (Hugging Face notebook rules) beside the squadlab binary.

Cases, each timed on both sides in one run:
  A. windowing: dev (validation rules) and train (training rules with labels);
     tokenizer call + labelling/offset loops only.
  B. post-processing + official SQuAD v1.1 scoring of the full dev set on
     seeded random logits, written raw for our binary to read.

Run from the repository root:
    python3 bench/pipeline.py [--bin target/release/squadlab] [--threads 2]
                              [--only dev] [--skip-ours] [--json]
"""

import argparse
import collections
import json
import os
import re
import string
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
import window_digest as ref  # noqa: E402  (numpy only at import; transformers loads later)

GOALS = {"windowing": 0.2, "postprocess": 0.05}
N_BEST = 20
MAX_ANSWER_LENGTH = 30
LOGITS_SEED = 1234


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- peer, case A


def peer_windowing(tokenizer, examples, split):
    """Windows in the notebook's shape: columns of lists, batches concatenated like datasets.map."""
    preprocess = ref.preprocess_train if split == "train" else ref.preprocess_validation
    t0 = time.perf_counter()
    features = {}
    for batch in ref.batches(examples):
        for key, values in preprocess(tokenizer, batch).items():
            features.setdefault(key, []).extend(values)
    return features, time.perf_counter() - t0


# ---------------------------------------------------------------- peer, case B


def postprocess(start_logits, end_logits, features, examples):
    """The notebook's compute_metrics answer selection; returns {id: answer}."""
    example_to_features = collections.defaultdict(list)
    for idx, example_id in enumerate(features["example_id"]):
        example_to_features[example_id].append(idx)

    predictions = {}
    for example_id, context in zip(examples["id"], examples["context"]):
        answers = []
        for feature_index in example_to_features[example_id]:
            start_logit = start_logits[feature_index]
            end_logit = end_logits[feature_index]
            offsets = features["offset_mapping"][feature_index]
            start_indexes = np.argsort(start_logit)[-1 : -N_BEST - 1 : -1].tolist()
            end_indexes = np.argsort(end_logit)[-1 : -N_BEST - 1 : -1].tolist()
            for s in start_indexes:
                for e in end_indexes:
                    if offsets[s] is None or offsets[e] is None:
                        continue
                    if e < s or e - s + 1 > MAX_ANSWER_LENGTH:
                        continue
                    answers.append(
                        {
                            "text": context[offsets[s][0] : offsets[e][1]],
                            # float32 + float32: the sum stays float32, as in the notebook.
                            "logit_score": start_logit[s] + end_logit[e],
                        }
                    )
        # max() keeps the first of equal scores, so candidate order matters for ties.
        predictions[example_id] = max(answers, key=lambda a: a["logit_score"])["text"] if answers else ""
    return predictions


# Official evaluate-v1.1 rules, written afresh.
_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s):
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def f1_score(prediction, truth):
    pred_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(truth).split()
    same = sum((collections.Counter(pred_tokens) & collections.Counter(truth_tokens)).values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction, truth):
    return float(normalize_answer(prediction) == normalize_answer(truth))


def squad_v11_score(examples, predictions):
    """Every question counts in the total; a missing prediction scores 0, as in the official script."""
    em = f1 = 0.0
    for qid, answers in zip(examples["id"], examples["answers"]):
        if qid not in predictions:
            continue
        pred = predictions[qid]
        em += max(exact_match_score(pred, t) for t in answers["text"])
        f1 += max(f1_score(pred, t) for t in answers["text"])
    total = len(examples["id"])
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f1 / total, "total": total}


def peer_postprocess(logits, features, examples):
    t0 = time.perf_counter()
    predictions = postprocess(logits[:, 0], logits[:, 1], features, examples)
    scores = squad_v11_score(examples, predictions)
    return predictions, scores, time.perf_counter() - t0


# ---------------------------------------------------------------- ours


def run_ours(cmd, threads):
    """Last stdout line of BIN as JSON, or None (with the reason on stderr) on any failure."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    except OSError as err:
        log(f"ours: {' '.join(cmd[:2])}: {err}")
        return None
    wall = time.perf_counter() - t0
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    if proc.returncode != 0 or not lines:
        log(f"ours: {' '.join(cmd[:2])} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        return None
    try:
        out = json.loads(lines[-1])
    except json.JSONDecodeError:
        log(f"ours: {' '.join(cmd[:2])}: last stdout line is not JSON: {lines[-1][:200]}")
        return None
    out["wall_seconds"] = wall
    return out


# ---------------------------------------------------------------- report


def median_run(n, run):
    """Runs `run` n times; returns the result whose "seconds" is the median (None if any run fails)."""
    results = [run() for _ in range(n)]
    if any(r is None for r in results):
        return None
    return sorted(results, key=lambda r: r["seconds"])[len(results) // 2]


def ratio(peer, ours):
    if ours is None or ours.get("seconds") is None or not peer["seconds"]:
        return None
    return ours["seconds"] / peer["seconds"]


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def print_table(report):
    rows = [(f"windowing {s}", c, GOALS["windowing"]) for s, c in report["windowing"].items()]
    if "postprocess" in report:
        rows.append(("post-processing+scoring dev", report["postprocess"], GOALS["postprocess"]))
    print(f"threads={report['threads']}  bin={report['bin']}  work_dir={report['work_dir']}  "
          f"dev cases: median of {report['repeat']} runs per side; train: one run")
    print(f"{'case':<30}{'peer s':>10}{'ours s':>10}{'ours/peer':>11}   goal")
    for name, case, goal in rows:
        r = case["ratio"]
        verdict = "n/a" if r is None else ("met" if r <= goal else "MISSED")
        ours_s = case["ours"]["seconds"] if case["ours"] else None
        print(
            f"{name:<30}{fmt(case['peer']['seconds'], '.3f'):>10}{fmt(ours_s, '.3f'):>10}"
            f"{fmt(r, '.4f'):>11}   <= {goal:.2f} {verdict}"
        )
    print()
    for split, case in report["windowing"].items():
        peer, ours = case["peer"], case["ours"] or {}
        print(
            f"{split}: questions {peer['questions']}; windows peer {peer['windows']} / ours "
            f"{ours.get('windows', 'n/a')}; zero_labelled peer {peer['zero_labelled']} / ours "
            f"{ours.get('zero_labelled', 'n/a')}"
        )
    if "postprocess" not in report:
        return
    pp = report["postprocess"]
    peer, ours = pp["peer"], pp["ours"] or {}
    print(
        f"dev scores: peer EM {peer['exact_match']:.4f} F1 {peer['f1']:.4f}; ours EM "
        f"{fmt(ours.get('exact_match'), '.4f')} F1 {fmt(ours.get('f1'), '.4f')}; "
        f"ids with differing predictions: {fmt(pp['differing_ids'], 'd')}"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join("target", "release", "squadlab"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-ours", action="store_true")
    ap.add_argument("--only", choices=["dev"], default=None, help="skip the train split")
    ap.add_argument("--case", choices=["all", "windowing-dev", "windowing-train", "postprocess"], default="all",
                    help="one case alone (bench/run.py runs each in its own process, for its peak memory)")
    ap.add_argument("--logits", default=None,
                    help="raw f32 dev logits [windows, 2, 384] to post-process (default: seeded random ones)")
    ap.add_argument("--work-dir", default=os.path.join("target", "bench-pipeline"),
                    help="where logits and both predictions files are written")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per side for the dev cases, median reported (train runs once)")
    args = ap.parse_args(argv)

    # Must precede the first tokenizers import, which sizes its rayon pool once.
    os.environ["TOKENIZERS_PARALLELISM"] = "true"
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)
    tokenizer = ref.load_tokenizer()
    tokenizer_json = os.path.join(ref.tokenizer_dir(), "tokenizer.json")
    os.makedirs(args.work_dir, exist_ok=True)
    use_ours = not args.skip_ours and os.path.isfile(args.bin)
    if not args.skip_ours and not use_ours:
        log(f"ours: binary {args.bin} not found; reporting n/a")

    data = {s: os.path.join(ref.data_dir(), f) for s, f in ref.SPLIT_FILES.items()}
    splits = ["dev"] if args.only == "dev" else ["dev", "train"]
    if args.case == "windowing-train":
        splits = ["train"]
    elif args.case in ("windowing-dev", "postprocess"):
        splits = ["dev"]
    examples = {s: ref.load_squad(data[s]) for s in splits}

    # Warm-up: first-call costs (thread pool, caches) stay out of the timings.
    ref.tokenize(tokenizer, {k: v[:8] for k, v in examples[splits[0]].items()})

    report = {"threads": args.threads, "repeat": args.repeat, "bin": args.bin if use_ours else None,
              "work_dir": args.work_dir, "windowing": {}}
    dev_features = None
    for split in splits:
        repeat = 1 if split == "train" and args.case == "all" else args.repeat
        if args.case == "postprocess":
            repeat = 1  # the windows are only an input here
        log(f"peer: windowing {split} (x{repeat})")
        times = []
        for _ in range(repeat):
            features, seconds = peer_windowing(tokenizer, examples[split], split)
            times.append(seconds)
        seconds = sorted(times)[len(times) // 2]
        if split == "train":
            starts, ends = features["start_positions"], features["end_positions"]
        else:
            starts, ends = ref.dev_labels(features, examples[split])  # untimed
            dev_features = features
        peer = {"questions": len(examples[split]["id"]), "windows": len(features["input_ids"]),
                "zero_labelled": sum(1 for s, e in zip(starts, ends) if s == 0 and e == 0),
                "seconds": seconds}
        del features, starts, ends
        ours = None
        if use_ours:
            log(f"ours: windowing {split}")
            cmd = [args.bin, "features", "--data", data[split], "--tokenizer", tokenizer_json,
                   "--max-length", str(ref.MAX_LENGTH), "--stride", str(ref.STRIDE), "--json"]
            if split == "train":
                cmd.append("--train")
            ours = median_run(repeat, lambda: run_ours(cmd, args.threads))
        report["windowing"][split] = {"peer": peer, "ours": ours, "ratio": ratio(peer, ours),
                                      "goal": GOALS["windowing"]}

    if args.case not in ("all", "postprocess"):
        print(json.dumps(report)) if args.json else print_table(report)
        return 0
    n_windows = len(dev_features["input_ids"])
    if args.logits:
        logits_path = args.logits
        logits = np.fromfile(logits_path, dtype="<f4").reshape(n_windows, 2, ref.MAX_LENGTH)
    else:
        rng = np.random.default_rng(LOGITS_SEED)
        logits = rng.standard_normal((n_windows, 2, ref.MAX_LENGTH), dtype=np.float32)
        logits_path = os.path.join(args.work_dir, "logits.f32")
        logits.astype("<f4", copy=False).tofile(logits_path)

    log(f"peer: post-processing + scoring dev (x{args.repeat})")
    runs = [peer_postprocess(logits, dev_features, examples["dev"]) for _ in range(args.repeat)]
    peer_preds, scores, seconds = sorted(runs, key=lambda r: r[2])[len(runs) // 2]
    peer_pred_path = os.path.join(args.work_dir, "peer_predictions.json")
    with open(peer_pred_path, "w", encoding="utf-8") as f:
        json.dump(peer_preds, f, ensure_ascii=False)
    peer = dict(scores, windows=n_windows, seconds=seconds)

    ours, differing = None, None
    if use_ours:
        log(f"ours: post-processing + scoring dev (x{args.repeat})")
        ours_pred_path = os.path.join(args.work_dir, "ours_predictions.json")
        if os.path.exists(ours_pred_path):
            os.remove(ours_pred_path)  # never compare against a stale file
        cmd = [args.bin, "postprocess", "--data", data["dev"], "--tokenizer", tokenizer_json,
               "--logits", logits_path, "--predictions-out", ours_pred_path, "--json"]
        ours = median_run(args.repeat, lambda: run_ours(cmd, args.threads))
        if ours is not None and os.path.exists(ours_pred_path):
            with open(ours_pred_path, encoding="utf-8") as f:
                ours_preds = json.load(f)
            ids = set(peer_preds) | set(ours_preds)
            differing = sum(1 for i in ids if peer_preds.get(i) != ours_preds.get(i))
    report["postprocess"] = {"peer": peer, "ours": ours, "ratio": ratio(peer, ours),
                             "goal": GOALS["postprocess"], "differing_ids": differing,
                             "peer_predictions": peer_pred_path, "logits": logits_path}

    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
