#!/usr/bin/env bash
# CI's CUDA part (.ci/run), on a machine without a GPU: installs nvcc 13.0
# from PyPI into /opt/cu13 when it is not there yet (README, "CUDA"), compiles
# every lean-step kernel for compute_80 and compute_90 (tools/cuda/ptx.sh) and
# type-checks the `cuda` build of every crate and target, in its own target
# folder (target/cuda-check) so that the main build's cache stays valid.
# Both checks run whatever the first found; prints how long the part took.
set -euo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
trap 'echo "CUDA part: $(( $(date +%s) - start )) s"' EXIT
prefix="${SQUADLAB_CU13:-/opt/cu13}"
export CUDA_HOME="$prefix/nvidia/cu13"
if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    python3 -m pip install --quiet --target "$prefix" \
        "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*" \
        "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*"
fi
export PATH="$CUDA_HOME/bin:$PATH" CUDA_COMPUTE_CAP=90
status=0
tools/cuda/ptx.sh || status=$?
CARGO_TARGET_DIR=target/cuda-check \
    cargo check --no-default-features --features cuda --all-targets || status=$?
# The main clippy never compiles `#[cfg(feature = "cuda")]` code: lint it here,
# on the same target folder (only the workspace's crates are checked again).
CARGO_TARGET_DIR=target/cuda-check \
    cargo clippy --no-default-features --features cuda --all-targets -- -D warnings || status=$?
exit "$status"
