#!/usr/bin/env python3
"""The readable end of bench/gpu.sh: one table from the sections' JSON files.

    python3 bench/gpu_table.py OUT_DIR [PEAK_TFLOPS] [MODE]
"""
import glob
import json
import os
import sys

out = sys.argv[1]
peak = float(sys.argv[2]) if len(sys.argv) > 2 else 788.0
mode = sys.argv[3] if len(sys.argv) > 3 else "gpu"
WINDOWS = 88524  # SQuAD v1.1 train windows at 384 / 128


def load(name):
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"error": "missing"}


def gib(b):
    return f"{b / 2**30:.2f} GiB" if isinstance(b, (int, float)) else "n/a"


print(f"squadlab GPU check ({mode})")
d = load("1-doctor")
gpus = ", ".join(f'{g["name"]} ({g.get("free_mib")} MiB free)' for g in d.get("gpus", [])) or "none"
print(f"1 doctor: built with {d.get('features')}, compute cap {d.get('cuda_compute_cap_built')}; "
      f"GPUs: {gpus}; driver CUDA {d.get('driver_cuda_version')}" if "error" not in d else f"1 doctor: {d['error']}")

c = load("2-correctness")
if "logits" in c:
    lg, tr = c["logits"], c["trajectory"]
    print(f"2 correctness: logits max |d| {lg['max_abs_diff']:.2e} (tol {lg['tolerance']:.0e}) "
          f"{'PASS' if lg['pass'] else 'FAIL'}; {tr['steps']} steps {tr['half']} vs f32: worst rel "
          f"{tr['worst_relative_diff']:.2e} (tol {tr['tolerance']:.2e}) {'PASS' if tr['pass'] else 'FAIL'}")
else:
    print(f"2 correctness: {c.get('error')}")

print(f"3 speed: train step, median s/step; MFU against {peak:.0f} TFLOP/s")
print(f"  {'':<30}{'s/step':>9}{'samples/s':>11}{'TFLOP/s':>9}{'MFU':>7}{'3 epochs':>10}")
for path in sorted(glob.glob(os.path.join(out, "3-speed-ours-*.json"))):
    arch = path.rsplit("-", 1)[1][:-5]
    ours, peer = load(f"3-speed-ours-{arch}"), load(f"3-speed-peer-{arch}")
    rows = [(f"{arch} squadlab ({ours.get('dtype', '?')})", ours.get("median_seconds"), ours.get("flops"),
             ours.get("batch"), ours.get("error"))]
    for kind in ("eager", "compile"):
        p = peer.get(kind) or {}
        why = p.get("error") or ("skipped" if p.get("skipped") else None) or peer.get("error")
        rows.append((f"{arch} PyTorch {kind}", p.get("median_seconds"), peer.get("flops"), peer.get("batch"), why))
    for name, s, flops, batch, why in rows:
        if not s or not flops:
            print(f"  {name:<30}{'n/a':>9}  {(why or '')[:60]}")
            continue
        tf = flops / s / 1e12
        sps = batch / s
        print(f"  {name:<30}{s:>9.4f}{sps:>11.1f}{tf:>9.1f}{100 * tf / peak:>6.1f}%{3 * WINDOWS / sps / 60:>8.1f} m")
    e = (peer.get("eager") or {}).get("median_seconds")
    if ours.get("median_seconds") and e:
        print(f"  {arch}: squadlab / eager = {ours['median_seconds'] / e:.3f}")

m = load("4-memory")
if "measured_step_bytes" in m:
    peer = load(f"3-speed-peer-{os.path.basename(sorted(glob.glob(os.path.join(out, '3-speed-peer-*.json')))[0])[13:-5]}") \
        if glob.glob(os.path.join(out, "3-speed-peer-*.json")) else {}
    peer_peak = (peer.get("eager") or {}).get("peak_memory_bytes")
    print(f"4 memory: one step {m['batch']}x{m['seq']} {m['dtype']}: measured {gib(m['measured_step_bytes'])} "
          f"({m['method']}), planned {gib(m['planned_step_bytes'])}, ratio {m['measured_over_planned']:.3f}; "
          f"whole run planned {gib(m['planned_total_bytes'])}; PyTorch eager peak allocated {gib(peer_peak)}")
else:
    print(f"4 memory: {m.get('error')}")

t = load("5-trainer")
if "run-a" in t:
    a, b = t["run-a"], t["run-b"]
    ev = lambda r: f"EM {r['eval']['exact_match']:.2f} F1 {r['eval']['f1']:.2f}" if r.get("eval") else "no eval"
    print(f"5 trainer: {'PASS' if t['pass'] else 'FAIL'}; run steps {a['steps'][:1]}..{a['steps'][-1:]}, "
          f"checkpoints {a['checkpoints']}, {ev(a)}, loss {a['losses'][0]:.3f} -> {a['losses'][-1]:.3f}; "
          f"resumed steps {b['steps'][:1]}..{b['steps'][-1:]}, {ev(b)}, "
          f"max |loss diff| on the resumed steps {t.get('resumed_max_loss_diff')}" if a["losses"] else "5 trainer: no steps")
else:
    print(f"5 trainer: {t.get('error')}")
