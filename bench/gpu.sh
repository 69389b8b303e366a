#!/usr/bin/env bash
# The one-shot GPU check (bench/GPU.md): five sections, each under its own
# timeout, each writing its JSON to $OUT the moment it ends, so a late
# failure loses nothing; then a readable table ($OUT/table.txt).
#   1 doctor       what the binary was built with, the GPU, the driver, and
#                  the fused kernels' self-check against candle's generic ops
#   2 correctness  f32 logits against the CPU's; a bf16 loss trajectory
#                  against f32 (TF32 off, dropout off)
#   3 speed        the train step of BERT-base and -large at 32 x 384 in bf16,
#                  ours beside PyTorch eager and torch.compile
#   4 memory       one step's measured peak against the planner
#   5 trainer      `squadlab train` on a synthetic task: events, checkpoints,
#                  resume from a checkpoint, evaluation
# Self-contained: the prebuilt binary .device/squadlab(.gz), random-init
# models and data made on the spot; nothing from ../shared or the network.
#   OUT=/tmp/out bash bench/gpu.sh             the GPU machine: under 5 minutes
#   OUT=/tmp/out bash bench/gpu.sh --dry-run   here: every section on the CPU
#                                              with the CPU build, tiny config
set -uo pipefail
OUT=${OUT:-/tmp/squadlab-gpu}; PEAK=${PEAK_TFLOPS:-788}
work=${WORK:-/tmp/squadlab-gpu-work}
mkdir -p "$OUT" "$work"; rm -f "$OUT"/*.json "$OUT"/*.err "$OUT/sections.txt"
if [ "${1:-}" = "--dry-run" ]; then
    mode=dry-run; BIN=${SQUADLAB_BIN:-target/release/squadlab}; DEVICE=cpu
    # The CPU build trains f32 (its matmul has no bf16); the check's half
    # precision is f16 there. torch.compile uses its eager backend.
    OURS_DTYPE=f32; PEER_DTYPE=f32; ARCHS="tiny"; BATCH=2; SEQ=32; REPEAT=2
    CHECK="--batch 2 --seq 32 --steps 5"; COMPILE=eager; MEM_FLAGS="--generic"
    QUESTIONS="48 16"; TRAIN_SEQ=128; STRIDE=32; STEPS=4; SAVE=2; TRAIN_DTYPE=f32
    T_SETUP=120; T_CHECK=120; T_OURS=120; T_PEER=240; T_MEM=60; T_TRAIN=240
else
    mode=gpu; . tools/gpu/cuda-libs.sh; BIN=${SQUADLAB_BIN:-.device/squadlab}; DEVICE=cuda:0
    OURS_DTYPE=bf16; PEER_DTYPE=bf16; ARCHS="base large"; BATCH=32; SEQ=384; REPEAT=5
    CHECK="--batch 4 --seq 128 --steps 50"; COMPILE=inductor; MEM_FLAGS=""
    QUESTIONS="1280 128"; TRAIN_SEQ=384; STRIDE=128; STEPS=20; SAVE=10; TRAIN_DTYPE=bf16
    T_SETUP=30; T_CHECK=60; T_OURS=35; T_PEER=50; T_MEM=25; T_TRAIN=45
fi
first=${ARCHS%% *}
echo "mode $mode, binary $BIN, device $DEVICE, out $OUT" | tee "$OUT/sections.txt"

# Runs one step of a section under a time limit: stdout to $OUT/NAME.json
# (the last JSON line is kept), stderr to $OUT/NAME.err.
# The whole script stays within BUDGET seconds (6 minutes on the GPU): a
# section gets at most what is left, and one that would get under 5 s is
# skipped with a JSON that says so.
BUDGET=${BUDGET:-360}; script_start=$(date +%s)
step() {
    local name=$1 limit=$2; shift 2
    local left=$(( BUDGET - ($(date +%s) - script_start) ))
    if [ "$left" -lt 5 ]; then
        echo "{\"error\": \"skipped: the $BUDGET s budget ran out\"}" > "$OUT/$name.json"
        echo "$name: skipped, the $BUDGET s budget ran out" | tee -a "$OUT/sections.txt"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local start; start=$(date +%s)
    timeout "$limit" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
    local rc=$?
    grep '^{' "$OUT/$name.out" | tail -1 > "$OUT/$name.json"
    [ -s "$OUT/$name.json" ] || echo "{\"error\": \"exit $rc, no JSON (see $name.err)\"}" > "$OUT/$name.json"
    rm -f "$OUT/$name.out"
    echo "$name: exit $rc after $(( $(date +%s) - start )) s (limit $limit s)" | tee -a "$OUT/sections.txt"
    [ "$rc" = 0 ] || tail -3 "$OUT/$name.err"
}

setup_start=$(date +%s)
for arch in $ARCHS; do
    # The first model also gets the synthetic questions the trainer reads.
    if [ "$arch" = "$first" ]; then q=$QUESTIONS; else q="0 0"; fi
    timeout "$T_SETUP" python3 tools/gpu/synthetic_task.py "$work" $q --arch "$arch" > /dev/null ||
        echo "setup: synthetic $arch failed" | tee -a "$OUT/sections.txt"
done
echo "setup: $(( $(date +%s) - setup_start )) s" | tee -a "$OUT/sections.txt"
model() { echo "$work/bert-$1-random"; }

# 1. doctor, with the fused kernels' self-check on every device (the table
# comes first: it says which kernels a run on this GPU may trust)
step 1-doctor 30 "$BIN" doctor --kernels --json

# 2. correctness, TF32 off (the command turns it off)
step 2-correctness "$T_CHECK" "$BIN" bench check --model "$(model "$first")" --device "$DEVICE" $CHECK --json

# 2b. the census's launches of one step (the speed runs below report the
# launches the step issued, counted at the launch call)
step 2-census 20 "$BIN" bench census --model "$(model "$first")" --device "$DEVICE" --dtype "$OURS_DTYPE" --json

# 3. speed: the lean step with its fused kernels, then (first model only)
# candle's generic graph, beside PyTorch
for arch in $ARCHS; do
    step "3-speed-ours-$arch" "$T_OURS" "$BIN" bench train-step --model "$(model "$arch")" \
        --batch "$BATCH" --seq "$SEQ" --device "$DEVICE" --dtype "$OURS_DTYPE" --repeat "$REPEAT" --json
    [ "$arch" = "$first" ] && step "3-speed-generic-$arch" "$T_OURS" "$BIN" bench train-step \
        --model "$(model "$arch")" --batch "$BATCH" --seq "$SEQ" --device "$DEVICE" --dtype "$OURS_DTYPE" \
        --repeat "$REPEAT" --generic --json
    step "3-speed-peer-$arch" "$T_PEER" python3 bench/gpu_peer.py "$(model "$arch")" \
        --batch "$BATCH" --seq "$SEQ" --device "${DEVICE%%:*}" --dtype "$PEER_DTYPE" \
        --repeat "$REPEAT" --warmup 2 --compile-backend "$COMPILE"
done

# 4. memory: one step of the first model, no warm-up
step 4-memory "$T_MEM" "$BIN" bench memory --model "$(model "$first")" --batch "$BATCH" --seq "$SEQ" \
    --device "$DEVICE" --dtype "$OURS_DTYPE" $MEM_FLAGS --json

# 5. the trainer through the CLI: a run with checkpoints, then a second run
# resumed from the first one's middle checkpoint; both evaluate at the end.
cat > "$work/run.ron" <<RON
RunConfig(
    name: "gpu check: $first random, synthetic",
    model: "$(model "$first")",
    data: (train: "$work/train.json", validation: "$work/dev.json"),
    max_seq_length: $TRAIN_SEQ,
    doc_stride: $STRIDE,
    per_device_train_batch_size: $BATCH,
    per_device_eval_batch_size: 64,
    max_steps: Some($STEPS),
    learning_rate: 5e-5,
    save_strategy: steps,
    save_steps: $SAVE,
    save_total_limit: None,
    device: "$DEVICE",
    dtype: $TRAIN_DTYPE,
)
RON
rm -rf "$work/run-a" "$work/run-b"
step 5-trainer-run "$T_TRAIN" "$BIN" train "$work/run.ron" --out "$work/run-a" --json
step 5-trainer-resume "$T_TRAIN" "$BIN" train --resume "$work/run-a/checkpoints/checkpoint-$SAVE" \
    --out "$work/run-b" --json
python3 - "$work" "$OUT" "$SAVE" "$STEPS" "$(dirname "$0")" <<'PY'
import json, os, sys
work, out, save, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, sys.argv[5])
from gpu_table import finite, worst_abs_diff  # comparisons no NaN passes
def events(run):
    try:
        return [json.loads(l) for l in open(os.path.join(work, run, "metrics.jsonl"))]
    except (OSError, ValueError):
        return []
summary = {}
for run in ("run-a", "run-b"):
    ev = events(run)
    st = [e for e in ev if e.get("event") == "step"]
    ev_eval = [e for e in ev if e.get("event") == "evaluated"]
    ckpts = sorted(os.listdir(os.path.join(work, run, "checkpoints"))) if os.path.isdir(os.path.join(work, run, "checkpoints")) else []
    summary[run] = {
        "events": sorted({e.get("event") for e in ev}), "steps": [s["step"] for s in st],
        "losses": [s["loss"] for s in st], "checkpoints": ckpts,
        "eval": ev_eval[-1] if ev_eval else None,
    }
a, b = summary["run-a"], summary["run-b"]
# The resumed steps beside the same steps of the first run: equal on the CPU;
# on CUDA the same Philox masks, so equal up to cuBLAS's and the embedding
# scatter-add's nondeterminism.
# A NaN loss (null in the JSON) fails the section, named, rather than being
# skipped by max() or crashing abs().
try:
    summary["resumed_max_loss_diff"] = worst_abs_diff("resumed losses", a["losses"][save:], b["losses"])
except ValueError as e:
    summary["resumed_max_loss_diff"], summary["loss_error"] = None, str(e)
losses_finite = all(finite(x) for x in a["losses"] + b["losses"])
summary["pass"] = (a["steps"] == list(range(1, steps + 1)) and b["steps"] == list(range(save + 1, steps + 1))
                   and a["eval"] is not None and b["eval"] is not None and bool(a["checkpoints"])
                   and losses_finite)
json.dump(summary, open(os.path.join(out, "5-trainer.json"), "w"))
PY
echo "5-trainer: summary written" | tee -a "$OUT/sections.txt"

python3 bench/gpu_table.py "$OUT" "$PEAK" "$mode" | tee "$OUT/table.txt"
