#!/usr/bin/env python3
"""Step-by-step parity of squadlab's trainer with PyTorch + transformers.

Both sides train Hugging Face's `BertForQuestionAnswering` (all-MiniLM-L6-v2)
on exactly the same course:
- the same starting QA folder, head included (`set_seed(seed)`, then
  transformers initialises `qa_outputs`; saved once, read by both sides);
- dropout 0 in that folder's `config.json`;
- windows padded to 384;
- the window order squadlab drew (`epoch_order` in its checkpoint's
  `trainer_state.json`);
- AdamW with Hugging Face's groups, lr 1e-4, weight decay 0.01, linear decay
  after ceil(10% × steps) warmup steps, clipping at 1.0.

It compares every step's loss, grad-norm before clipping and learning rate,
then the final EM/F1 on the first dev questions. Where a step's loss parts by
more than the tolerance, it reruns both sides to that step and dumps the full
gradients and weights there, and names the tensors that differ most; each
step's per-tensor norms come from both sides too (`--norms`).

    python3 tools/reference/parity.py                       # the 161-step protocol
    python3 tools/reference/parity.py --questions 300 --eval-questions 500 --max-steps 20 \\
        --fixture tests/fixtures/parity_300q.json          # the CI fixture

Needs torch and transformers (`pip install torch transformers`) and a release
build (`cargo build --release`).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "bench"))

COLUMNS = ("input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions")


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def make_start_folder(out, seed, keep_dropout=False):
    """MiniLM with a seeded QA head, dropout 0 (or its own 0.1 with
    `keep_dropout`), saved as a QA folder."""
    import torch
    from transformers import BertForQuestionAnswering, set_seed

    import window_digest as ref

    set_seed(seed)
    model = BertForQuestionAnswering.from_pretrained(ref.tokenizer_dir())
    if not keep_dropout:
        model.config.hidden_dropout_prob = 0.0
        model.config.attention_probs_dropout_prob = 0.0
    model.save_pretrained(out)
    ref.load_tokenizer().save_pretrained(out)
    head = {k: v.detach().tolist() for k, v in model.qa_outputs.state_dict().items()}
    del model
    torch.manual_seed(seed)
    return head


def squadlab_config(args, model_dir, steps):
    max_steps = f"max_steps: Some({args.max_steps})," if args.max_steps else ""
    # The checkpoint one step before the end still holds the epoch's order
    # (the epoch end clears it).
    save = f"save_strategy: steps, save_steps: {max(steps - 1, 1)}, save_total_limit: Some(1),"
    return f"""RunConfig(
    name: "parity",
    model: "{model_dir}",
    data: (
        train: "data:train-v1.1.reconstructed.json",
        validation: "data:dev-v1.1.json",
        max_train_samples: Some({args.questions}),
        max_eval_samples: Some({args.eval_questions}),
    ),
    dynamic_padding: false,
    per_device_train_batch_size: {args.batch},
    num_train_epochs: 1.0,
    {max_steps}
    learning_rate: {args.lr},
    warmup_ratio: 0.1,
    weight_decay: 0.01,
    seed: {args.seed},
    {save}
    device: "cpu",
)
"""


def run_squadlab(args, work, model_dir, steps, trace_env):
    config = os.path.join(work, "parity.ron")
    with open(config, "w", encoding="utf-8") as f:
        f.write(squadlab_config(args, model_dir, steps))
    out = os.path.join(work, f"squadlab-{len(os.listdir(work))}")
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), **trace_env)
    cmd = [args.bin, "--threads", str(args.threads), "train", config, "--out", out, "--json"]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"squadlab failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    steps_log = []
    with open(os.path.join(out, "metrics.jsonl"), encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if e.get("event") == "step":
                steps_log.append(e)
    checkpoints = sorted(os.listdir(os.path.join(out, "checkpoints")), key=lambda d: int(d.split("-")[1]))
    with open(os.path.join(out, "checkpoints", checkpoints[-1], "trainer_state.json"), encoding="utf-8") as f:
        order = json.load(f)["epoch_order"]
    return summary, steps_log, order


def norms(model, grads):
    import torch

    with torch.no_grad():
        return {name: float(t.double().norm()) for name, t in grads.items()}, {
            name: float(p.detach().double().norm()) for name, p in model.named_parameters()}


def run_torch(args, model_dir, cols, order, steps, dump_step=None, dump_dir=None, norms_out=None):
    """Hugging Face's BertForQuestionAnswering in a plain loop on squadlab's course."""
    import torch
    from transformers import BertForQuestionAnswering, get_linear_schedule_with_warmup

    from peer_model import decay_groups

    torch.set_num_threads(args.threads)
    model = BertForQuestionAnswering.from_pretrained(model_dir)
    model.train()
    optimizer = torch.optim.AdamW(decay_groups(model, 0.01), lr=args.lr, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, math.ceil(0.1 * steps), steps)
    log_rows = []
    for step in range(steps):
        idx = torch.tensor(order[step * args.batch:(step + 1) * args.batch])
        lr = schedule.get_last_lr()[0]
        out = model(**{k: v[idx] for k, v in cols.items()})
        out.loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        log_rows.append({"step": step + 1, "loss": out.loss.item(), "grad_norm": grad_norm, "learning_rate": lr})
        if norms_out is not None:
            g, w = norms(model, grads)
            norms_out.append({"step": step + 1, "grad": g, "weight": w})
        if dump_step == step + 1:
            from safetensors.torch import save_file

            save_file({n: t.contiguous() for n, t in grads.items()}, os.path.join(dump_dir, f"torch-grads-{step + 1}.safetensors"))
            save_file({n: p.detach().contiguous() for n, p in model.named_parameters()},
                      os.path.join(dump_dir, f"torch-weights-{step + 1}.safetensors"))
            return log_rows, model
    return log_rows, model


def evaluate(args, model, tokenizer):
    import window_digest as ref
    from peer_protocol import evaluate as score

    dev = ref.load_squad(os.path.join(ref.data_dir(), ref.SPLIT_FILES["dev"]), args.eval_questions)
    return score(model, ref.preprocess_validation(tokenizer, dev), dev, 32)


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def where_they_part(ours_norms, torch_norms, ours_steps):
    """Per step, the tensor whose gradient norm (before clipping) and weight
    norm part most, measured against the step's global gradient norm and the
    tensor's own weight norm. Relative to their own size, the gradients of
    `qa_outputs.bias` and of the attention key biases are noise: both are 0
    in exact arithmetic (softmax is unchanged by a shift shared by all
    positions), so only rounding is left in them."""
    lines = []
    for o, t, s in zip(ours_norms, torch_norms, ours_steps):
        scale = max(s["grad_norm"], 1e-30)
        worst = max(((abs(o["grad"][n] - t["grad"][n]) / scale, n) for n in t["grad"] if n in o["grad"]),
                    default=(0, "-"))
        worst_w = max(((rel(o["weight"][n], t["weight"][n]), n) for n in t["weight"] if n in o["weight"]),
                      default=(0, "-"))
        lines.append((o["step"], worst, worst_w))
    return lines


def compare_dumps(dump_dir, step, top=8):
    import torch
    from safetensors.torch import load_file

    out = []
    for kind in ("grads", "weights"):
        ours = load_file(os.path.join(dump_dir, f"{kind}-{step}.safetensors"))
        theirs = load_file(os.path.join(dump_dir, f"torch-{kind}-{step}.safetensors"))
        diffs = []
        for name, t in theirs.items():
            if name not in ours:
                diffs.append((float("inf"), name, "missing on squadlab's side"))
                continue
            o = ours[name].to(torch.float64)
            t64 = t.to(torch.float64)
            d = float((o - t64).norm() / max(float(t64.norm()), 1e-30))
            diffs.append((d, name, f"max |Δ| {float((o - t64).abs().max()):.3e}"))
        diffs.sort(reverse=True)
        out.append(f"  {kind} at step {step}, the {top} tensors that differ most (‖Δ‖/‖torch‖):")
        out += [f"    {d:.3e}  {name}  {note}" for d, name, note in diffs[:top]]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=2500, help="first N training questions")
    ap.add_argument("--eval-questions", type=int, default=1000)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-3, help="relative loss tolerance per step")
    ap.add_argument("--f1-tol", type=float, default=0.3)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "squadlab"))
    ap.add_argument("--work", default=None, help="keep the folders here (default: a temporary one)")
    ap.add_argument("--no-dump", action="store_true", help="skip the second pass that dumps tensors")
    ap.add_argument("--fixture", default=None, help="write the CI fixture (head, order, PyTorch's steps) here")
    ap.add_argument("--json", default=None, help="write every step of both sides here")
    ap.add_argument("--dropout", action="store_true",
                    help="keep the model's dropout: the same init and order, each side its own masks; "
                         "losses are then compared as means over blocks of steps")
    ap.add_argument("--torch-seed", type=int, default=None, help="seed of PyTorch's dropout masks (--dropout)")
    args = ap.parse_args()

    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))
    import torch
    import transformers
    from transformers.utils import logging as hf_logging

    import window_digest as ref

    hf_logging.set_verbosity_error()
    work = args.work or tempfile.mkdtemp(prefix="parity-")
    os.makedirs(work, exist_ok=True)
    model_dir = os.path.join(work, "start")
    log(f"start folder (seeded head, dropout {'as the model has it' if args.dropout else '0'}): {model_dir}")
    head = make_start_folder(model_dir, args.seed, args.dropout)

    tokenizer = ref.load_tokenizer()
    train = ref.load_squad(os.path.join(ref.data_dir(), ref.SPLIT_FILES["train"]), args.questions)
    feats = ref.preprocess_train(tokenizer, train)
    n = len(feats["input_ids"])
    steps = math.ceil(n / args.batch)
    if args.max_steps:
        steps = min(steps, args.max_steps)
    cols = {k: torch.tensor(feats[k]) for k in COLUMNS}

    log(f"squadlab: {n} windows, {steps} steps")
    norms_file = os.path.join(work, "squadlab-norms.jsonl")
    if os.path.exists(norms_file):
        os.remove(norms_file)
    started = time.perf_counter()
    summary, ours, order = run_squadlab(args, work, model_dir, steps, {"SQUADLAB_TRACE_NORMS": norms_file})
    ours_seconds = time.perf_counter() - started
    if sorted(order) != list(range(n)):
        raise SystemExit(f"squadlab's epoch order is not a permutation of the {n} windows")

    log("PyTorch on squadlab's course")
    torch_norms = []
    if args.torch_seed is not None:
        torch.manual_seed(args.torch_seed)
    started = time.perf_counter()
    theirs, model = run_torch(args, model_dir, cols, order, steps, norms_out=torch_norms)
    torch_seconds = time.perf_counter() - started
    scores = evaluate(args, model, tokenizer)

    print(f"parity: squadlab against transformers {transformers.__version__} / torch {torch.__version__}, "
          f"{n} windows, {steps} steps, seed {args.seed}, dropout 0, padded to 384")
    print(f"{'step':>4} {'loss squadlab':>14} {'loss torch':>12} {'rel':>9} {'gnorm squadlab':>15} "
          f"{'gnorm torch':>12} {'rel':>9} {'lr squadlab':>12} {'lr torch':>12}")
    worst_loss, worst_gn, worst_lr, first_past = 0.0, 0.0, 0.0, None
    for o, t in zip(ours, theirs):
        rl, rg = rel(o["loss"], t["loss"]), rel(o["grad_norm"], t["grad_norm"])
        dl = abs(o["learning_rate"] - t["learning_rate"])
        worst_loss, worst_gn, worst_lr = max(worst_loss, rl), max(worst_gn, rg), max(worst_lr, dl)
        if rl > args.tol and first_past is None:
            first_past = o["step"]
        print(f"{o['step']:>4} {o['loss']:>14.6f} {t['loss']:>12.6f} {rl:>9.2e} {o['grad_norm']:>15.6f} "
              f"{t['grad_norm']:>12.6f} {rg:>9.2e} {o['learning_rate']:>12.4e} {t['learning_rate']:>12.4e}")
    f1_ours, f1_torch = summary["f1"], scores["f1"]
    print(f"\nmax relative loss difference {worst_loss:.2e} (tolerance {args.tol:g}); "
          f"max relative grad-norm difference {worst_gn:.2e}; max |Δlr| {worst_lr:.2e}")
    print(f"first step past the tolerance: {first_past or 'none'}")
    print(f"EM/F1 on {scores['total']} dev questions: squadlab {summary['exact_match']:.2f} / {f1_ours:.2f}, "
          f"torch {scores['exact_match']:.2f} / {f1_torch:.2f} (ΔF1 {f1_ours - f1_torch:+.2f}, tolerance {args.f1_tol})")
    print(f"train time: squadlab {ours_seconds:.0f} s (with evaluation), torch {torch_seconds:.0f} s")

    ours_norms = read_jsonl(norms_file)
    print("\nper step, the tensor whose gradient norm parts most (|Δ‖g‖| / global norm),"
          " and whose weight norm parts most (relative):")
    for step, (gd, gn), (wd, wn) in where_they_part(ours_norms, torch_norms, ours):
        if step <= 5 or step % 10 == 0 or step == first_past or step == steps:
            print(f"  step {step:>4}: grad {gd:.2e} {gn}; weight {wd:.2e} {wn}")

    if args.dropout:
        print("\nwith dropout each side draws its own masks; mean loss and grad-norm over blocks of 20 steps:")
        for lo in range(0, len(ours), 20):
            o, t = ours[lo:lo + 20], theirs[lo:lo + 20]
            mean = lambda rows, k: sum(r[k] for r in rows) / len(rows)
            print(f"  steps {lo + 1:>3}-{lo + len(o):<3}  loss squadlab {mean(o, 'loss'):.4f}  torch {mean(t, 'loss'):.4f}"
                  f"   grad-norm squadlab {mean(o, 'grad_norm'):.3f}  torch {mean(t, 'grad_norm'):.3f}")
        print(f"mean loss over all steps: squadlab {sum(r['loss'] for r in ours) / len(ours):.4f}, "
              f"torch {sum(r['loss'] for r in theirs) / len(theirs):.4f}")
    if first_past and not args.no_dump and not args.dropout:
        dump_dir = os.path.join(work, "dump")
        os.makedirs(dump_dir, exist_ok=True)
        log(f"second pass to step {first_past}, dumping full tensors there")
        trace = {"SQUADLAB_TRACE_DUMP_STEP": str(first_past), "SQUADLAB_TRACE_DUMP_DIR": dump_dir}
        saved_max, args.max_steps = args.max_steps, first_past
        run_squadlab(args, work, model_dir, first_past, trace)
        args.max_steps = saved_max
        run_torch(args, model_dir, cols, order, steps, dump_step=first_past, dump_dir=dump_dir)
        print("\n".join(compare_dumps(dump_dir, first_past)))

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"squadlab": ours, "torch": theirs, "f1": [f1_ours, f1_torch]}, f)
    if args.fixture:
        fixture = {
            "made_by": "tools/reference/parity.py " + " ".join(sys.argv[1:]),
            "transformers": transformers.__version__, "torch": torch.__version__,
            "questions": args.questions, "eval_questions": args.eval_questions, "batch": args.batch,
            "lr": args.lr, "seed": args.seed, "windows": n, "steps": steps,
            "qa_outputs": head, "order": order[:steps * args.batch], "torch_steps": theirs,
            "torch_exact_match": scores["exact_match"], "torch_f1": f1_torch,
        }
        with open(args.fixture, "w", encoding="utf-8") as f:
            json.dump(fixture, f)
        log(f"fixture written: {args.fixture}")
    if args.dropout:
        return 0  # no step-by-step verdict: the masks differ by design
    ok = worst_loss <= args.tol and abs(f1_ours - f1_torch) <= args.f1_tol
    print("PARITY " + ("HOLDS" if ok else "BROKEN"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
