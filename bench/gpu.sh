#!/usr/bin/env bash
# The GPU benchmark (see bench/GPU.md): one bf16 train step of a random-init
# BERT-base at batch 32 × 384 (forward with dropout, backward, clipping,
# AdamW; f32 master weights), ours beside PyTorch eager with bf16 autocast and
# torch.compile, on the same GPU in the same run. Self-contained: the
# prebuilt binary .device/squadlab.gz and inputs it generates; nothing from
# ../shared or the network. Well under 8 minutes on an H200.
#   OUT=/tmp/out bash bench/gpu.sh        (REPEAT=10, PEAK_TFLOPS=788)
set -uo pipefail
OUT=${OUT:-/tmp/squadlab-gpu}; REPEAT=${REPEAT:-10}; PEAK=${PEAK_TFLOPS:-788}
work=/tmp/squadlab-gpu-bench
mkdir -p "$OUT" "$work"
. tools/gpu/cuda-libs.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
# config.json + model.safetensors + vocab.txt of a random BERT-base (no questions needed).
python3 tools/gpu/synthetic_task.py "$work" 0 0 > /dev/null || exit 1
model="$work/bert-base-random"
start=$(date +%s)
timeout 240 .device/squadlab bench train-step --model "$model" --batch 32 --seq 384 \
    --device cuda:0 --dtype bf16 --repeat "$REPEAT" --json > "$OUT/ours.json" 2> "$OUT/ours.err"
echo "ours: exit $? after $(( $(date +%s) - start )) s"; tail -3 "$OUT/ours.err"
timeout 300 python3 bench/gpu_peer.py "$model" --repeat "$REPEAT" > "$OUT/peer.json" 2> "$OUT/peer.err"
echo "peer: exit $?"; tail -3 "$OUT/peer.err"
python3 - "$OUT" "$PEAK" <<'PY' | tee "$OUT/table.txt"
import json, sys
out, peak = sys.argv[1], float(sys.argv[2])
def last_json(path):
    try:
        lines = [l for l in open(path) if l.startswith("{")]
        return json.loads(lines[-1]) if lines else {}
    except OSError:
        return {}
ours, peer = last_json(f"{out}/ours.json"), last_json(f"{out}/peer.json")
rows = [("squadlab (candle, bf16 autocast)", ours.get("median_seconds"), ours.get("flops"))]
for name in ("eager", "compile"):
    p = peer.get(name) or {}
    rows.append((f"PyTorch {name} (bf16 autocast)", p.get("median_seconds"), peer.get("flops")))
print(f"BERT-base train step, batch 32 x 384, median of the timed steps; MFU against {peak:.0f} TFLOP/s")
print(f"{'':<36}{'s/step':>9}{'samples/s':>11}{'TFLOP/s':>9}{'MFU':>7}")
for name, s, flops in rows:
    if not s or not flops:
        print(f"{name:<36}{'n/a':>9}")
        continue
    tf = flops / s / 1e12
    print(f"{name:<36}{s:>9.4f}{32 / s:>11.1f}{tf:>9.1f}{100 * tf / peak:>6.1f}%")
eager = (peer.get("eager") or {}).get("median_seconds")
if ours.get("median_seconds") and eager:
    print(f"ours / eager: {ours['median_seconds'] / eager:.3f} (goal <= 1.0)")
    sps = 32 / ours["median_seconds"]
    print(f"projected 3 epochs of 88,524 windows: {3 * 88524 / sps / 60:.1f} min (goal < 10, >= 450 samples/s)")
PY
