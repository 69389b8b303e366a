#!/usr/bin/env bash
# The numeric tests again, on the AVX2 paths, so that a machine with AVX-512
# checks both of the CPU paths CI machines take (AMD with AVX2 only, Intel and
# AMD with AVX-512):
# - the project's own kernels (`multiversion!`) pick their path at run time,
#   and SQUADLAB_CPU_LEVEL=avx2 caps them there;
# - gemm (candle's matrix products and ours) has no such switch: its AVX-512
#   kernels exist only with the `avx512` feature, so this is a second build
#   without it (gemm, candle and squadlab recompiled; nothing else).
# Then both builds train the same short MiniLM run, which must come out the
# same bits: every step's loss, grad norm and learning rate, and every weight.
# On a CPU without AVX-512 the main run already took these paths: it says so
# and stops. Extra arguments go to cargo test.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! grep -qw avx512f /proc/cpuinfo; then
    echo "test-avx2: this CPU has no AVX-512, so tools/test.sh already ran the AVX2 paths"
    exit 0
fi
tools/install-test-model.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The default build's binary, kept before the AVX2 build replaces it.
cargo build --release --quiet
cp target/release/squadlab "$work/squadlab-avx512"

export SQUADLAB_CPU_LEVEL=avx2
features=(--no-default-features --features gui)
# The tests whose numbers go through the kernels and gemm: the core's unit
# tests (the kernels' own among them), and of tests/it the model, parity with
# PyTorch, the generic graph, dropout, padding, the optimizer and training
# end to end; of tests/serial the memory planner.
numeric=(model:: parity:: generic_graph:: dropout:: dynamic_padding:: optimizer:: train::)
status=0
cargo test --release --no-fail-fast --no-default-features -p squadlab-core --lib "$@" || status=$?
cargo test --release --no-fail-fast "${features[@]}" -p squadlab --test it "$@" -- \
    "${numeric[@]}" --skip windows_parity:: || status=$?
cargo test --release --no-fail-fast "${features[@]}" -p squadlab --test serial "$@" -- memory_plan ||
    status=$?
cargo build --release --quiet "${features[@]}"
cp target/release/squadlab "$work/squadlab-avx2"
"$work/squadlab-avx2" doctor | grep '^CPU:'

data=${SQUADLAB_DATA:-../shared/data/squad}
if [ ! -f "$data/train-v1.1.reconstructed.json" ]; then
    if [ "${CI:-}" = true ]; then
        echo "test-avx2: no SQuAD data in $data (set SQUADLAB_DATA)" >&2
        exit 1
    fi
    echo "test-avx2: no SQuAD data in $data, so the two builds are not compared"
    exit "$status"
fi
# Four steps of the 300-question preset, 40 questions evaluated.
sed -e 's/max_eval_samples: Some(500)/max_eval_samples: Some(40)/' \
    -e 's/^    seed: 42,$/    seed: 42,\n    max_steps: Some(4),/' \
    experiments/minilm-300q.ron >"$work/short.ron"
grep -q 'max_steps: Some(4)' "$work/short.ron"
for build in avx512 avx2; do
    SQUADLAB_CPU_LEVEL=$build "$work/squadlab-$build" train "$work/short.ron" \
        --out "$work/run-$build" --json >"$work/$build.json"
done
python3 - "$work" <<'PY' || status=1
import json, pathlib, sys
work = pathlib.Path(sys.argv[1])
def steps(build):
    rows = []
    for line in (work / f"run-{build}" / "metrics.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "step":
            rows.append((e["step"], e["loss"], e["grad_norm"], e["learning_rate"]))
    return rows
wide, narrow = steps("avx512"), steps("avx2")
same_weights = (work / "run-avx512/model/model.safetensors").read_bytes() == \
    (work / "run-avx2/model/model.safetensors").read_bytes()
ok = len(wide) == 4 and wide == narrow and same_weights
for a, b in zip(wide, narrow):
    print(f"step {a[0]}: loss {a[1]!r} / {b[1]!r}, grad norm {a[2]!r} / {b[2]!r}")
print(f"weights {'identical' if same_weights else 'DIFFERENT'}")
print(f"builds: {int(ok)} passed, {int(not ok)} failed")
sys.exit(0 if ok else 1)
PY
exit "$status"
