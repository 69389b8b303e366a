#!/usr/bin/env bash
# A short bf16 training run on a CUDA machine with a random-init BERT-base and
# synthetic windows (nothing from ../shared): run where `.device/squadlab` is a
# binary built with `--features cuda` (see README, "CUDA"). Results go to $OUT.
#   OUT=/tmp/out STEPS=300 tools/gpu/h200-bf16.sh
set -uo pipefail
OUT=${OUT:-/tmp/squadlab-gpu}; STEPS=${STEPS:-300}
mkdir -p "$OUT"; work=/tmp/squadlab-gpu-work
. tools/gpu/cuda-libs.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
ldd .device/squadlab | grep -E "cuda|cublas|curand|nvrtc" | tee "$OUT/ldd.txt"
python3 tools/gpu/synthetic_task.py "$work" $((STEPS * 32)) 1000 || exit 1
cat > "$work/run.ron" <<RON
RunConfig(
    name: "bert-base random, synthetic, bf16",
    model: "$work/bert-base-random",
    data: (train: "$work/train.json", validation: "$work/dev.json"),
    per_device_train_batch_size: 32,
    per_device_eval_batch_size: 128,
    max_steps: Some($STEPS),
    learning_rate: 5e-5,
    warmup_ratio: 0.1,
    save_strategy: steps,
    save_steps: $STEPS,
    device: "cuda:0",
    dtype: bf16,
)
RON
start=$(date +%s)
timeout ${TRAIN_TIMEOUT:-420} .device/squadlab train "$work/run.ron" --out "$work/run" --json > "$OUT/summary.json" 2> "$OUT/train.err"
echo "exit $? after $(( $(date +%s) - start )) s"
cp "$work/run/metrics.jsonl" "$OUT/" 2>/dev/null
tail -5 "$OUT/train.err"; cat "$OUT/summary.json"
python3 - "$OUT/metrics.jsonl" <<'PY'
import json, sys
steps = [e for e in map(json.loads, open(sys.argv[1])) if e["event"] == "step"]
for e in steps[:3] + steps[-3:]:
    print(f'step {e["step"]:4d} loss {e["loss"]:.4f} grad_norm {e["grad_norm"]:.3f} lr {e["learning_rate"]:.2e} {e["samples_per_second"]:.1f} samples/s')
PY
# The peer on the same GPU: transformers' BertForQuestionAnswering, bf16 autocast,
# fused AdamW, batch 32×384 with dropout, timed over 30 steps after 5 warm-up steps.
timeout 120 python3 - "$work/bert-base-random" <<'PY' | tee "$OUT/peer.txt"
import sys, time, torch
from transformers import BertForQuestionAnswering
m = BertForQuestionAnswering.from_pretrained(sys.argv[1]).cuda().train()
opt = torch.optim.AdamW(m.parameters(), lr=5e-5, weight_decay=0.01, fused=True)
ids = torch.randint(5, 5005, (32, 384), device="cuda")
tt = torch.zeros_like(ids); am = torch.ones_like(ids)
pos = torch.randint(0, 384, (32,), device="cuda")
def step():
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = m(input_ids=ids, token_type_ids=tt, attention_mask=am, start_positions=pos, end_positions=pos).loss
    loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); opt.zero_grad()
for _ in range(5): step()
torch.cuda.synchronize(); t = time.time()
for _ in range(30): step()
torch.cuda.synchronize(); dt = (time.time() - t) / 30
print(f"pytorch {torch.__version__} bf16 autocast: {dt*1000:.1f} ms/step, {32/dt:.1f} samples/s")
PY
