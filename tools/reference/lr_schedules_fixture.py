#!/usr/bin/env python3
"""Makes tests/fixtures/lr_schedules.json: the learning rate of every
optimizer step under each of Hugging Face's schedules, from transformers'
own `get_scheduler`, so CI checks squadlab's formulas without Python.

Each case records, for steps 0 .. total + 2, the rate the optimizer uses for
that step (`scheduler.get_last_lr()` before `scheduler.step()`), as the
Trainer applies it.

    pip install torch transformers
    python3 tools/reference/lr_schedules_fixture.py
"""
import json
import os

import torch
import transformers
from transformers import get_scheduler

BASE_LR = 3e-5
CASES = [
    # (name, warmup, total, scheduler_specific_kwargs)
    ("linear", 17, 161, {}),
    ("linear", 0, 50, {}),
    ("cosine", 17, 161, {}),
    ("cosine", 10, 100, {"num_cycles": 1.5}),
    ("cosine_with_restarts", 17, 161, {}),
    ("cosine_with_restarts", 10, 100, {"num_cycles": 3}),
    ("polynomial", 17, 161, {}),
    ("polynomial", 10, 100, {"power": 2.0, "lr_end": 1e-6}),
    ("constant", 17, 161, {}),
    ("constant_with_warmup", 17, 161, {}),
]

out = {"transformers": transformers.__version__, "torch": torch.__version__, "base_lr": BASE_LR, "cases": []}
for name, warmup, total, kwargs in CASES:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=BASE_LR)
    scheduler = get_scheduler(
        name,
        optimizer,
        num_warmup_steps=warmup,
        num_training_steps=total,
        scheduler_specific_kwargs=kwargs,
    )
    lrs = []
    for _ in range(total + 3):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    out["cases"].append({"type": name, "warmup_steps": warmup, "total_steps": total, "kwargs": kwargs, "lr": lrs})

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "lr_schedules.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print(f"wrote {os.path.normpath(path)}: {len(out['cases'])} cases")
