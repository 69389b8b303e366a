#!/usr/bin/env python3
"""Makes the TensorBoard round-trip fixture in tests/fixtures/tensorboard/.

squadlab exports a committed run (run/run.ron and run/metrics.jsonl: a real
all-MiniLM-L6-v2 run with evaluations during training) as a TensorBoard
event file; TensorBoard's own reader, EventAccumulator, reads it back. The
event file is committed as run.tfevents and the scalars TensorBoard read as
scalars.json. tests/it/tensorboard.rs checks that squadlab still writes that
file, and that it parses back to those scalars.

    pip install tensorboard
    cargo build --release
    python3 tools/reference/tensorboard_fixture.py [--squadlab target/release/squadlab]
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import tempfile

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "tensorboard")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squadlab", default=os.path.join(ROOT, "target", "release", "squadlab"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [args.squadlab, "export-metrics", os.path.join(FIXTURE, "run"),
             "--format", "tensorboard", "--out", out],
            check=True,
        )
        (event_file,) = glob.glob(os.path.join(out, "events.out.tfevents.*"))
        acc = EventAccumulator(out, size_guidance={"scalars": 0})
        acc.Reload()
        scalars = [
            {"tag": tag, "step": e.step, "wall_time": e.wall_time, "value": e.value}
            for tag in sorted(acc.Tags()["scalars"])
            for e in acc.Scalars(tag)
        ]
        shutil.copyfile(event_file, os.path.join(FIXTURE, "run.tfevents"))
    with open(os.path.join(FIXTURE, "scalars.json"), "w") as f:
        json.dump(
            {
                "reader": "tensorboard.backend.event_processing.event_accumulator.EventAccumulator",
                "tensorboard_version": __import__("tensorboard").__version__,
                "scalars": scalars,
            },
            f,
            indent=1,
        )
        f.write("\n")
    tags = sorted({s["tag"] for s in scalars})
    print(f"TensorBoard read {len(scalars)} scalars under {len(tags)} tags: {', '.join(tags)}")


if __name__ == "__main__":
    main()
