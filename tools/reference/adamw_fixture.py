"""Writes tests/fixtures/adamw_reference.json: torch.optim.AdamW with Hugging
Face's parameter groups (no decay on biases and LayerNorm), its linear warmup
schedule and clip_grad_norm_, stepped on random gradients.

    python3 tools/reference/adamw_fixture.py
"""
import json
import os

import torch
from transformers import get_linear_schedule_with_warmup

torch.manual_seed(0)
shapes = {
    "bert.embeddings.word_embeddings.weight": (5, 4),
    "bert.encoder.layer.0.attention.self.query.weight": (4, 4),
    "bert.encoder.layer.0.attention.self.query.bias": (4,),
    "bert.encoder.layer.0.output.LayerNorm.weight": (4,),
    "bert.encoder.layer.0.output.LayerNorm.bias": (4,),
    "qa_outputs.weight": (2, 4),
}
params = {n: torch.nn.Parameter(torch.randn(s, dtype=torch.float32)) for n, s in shapes.items()}
no_decay = lambda n: n.endswith(".bias") or "LayerNorm" in n
config = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1,
              warmup_steps=2, total_steps=8, max_grad_norm=1.0)
opt = torch.optim.AdamW(
    [
        {"params": [p for n, p in params.items() if not no_decay(n)], "weight_decay": config["weight_decay"]},
        {"params": [p for n, p in params.items() if no_decay(n)], "weight_decay": 0.0},
    ],
    lr=config["lr"], betas=config["betas"], eps=config["eps"],
)
sched = get_linear_schedule_with_warmup(opt, config["warmup_steps"], config["total_steps"])
flat = lambda t: [float(x) for x in t.detach().flatten()]
initial = {n: {"shape": list(p.shape), "values": flat(p)} for n, p in params.items()}
steps = []
# Gradient scales alternate so that some steps are clipped and some are not.
for step, scale in enumerate([0.1, 2.0, 0.05, 3.0, 0.2, 1.5, 0.01, 5.0]):
    grads = {n: torch.randn(s) * scale for n, s in shapes.items()}
    for n, p in params.items():
        p.grad = grads[n].clone()
    lr = sched.get_last_lr()[0]
    norm = torch.nn.utils.clip_grad_norm_(list(params.values()), config["max_grad_norm"])
    opt.step()
    sched.step()
    opt.zero_grad()
    steps.append({
        "lr": lr,
        "grad_norm": float(norm),
        "grads": {n: flat(g) for n, g in grads.items()},
        "params_after": {n: flat(p) for n, p in params.items()},
    })
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "adamw_reference.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "config": config, "initial": initial, "steps": steps}, f)
print("wrote", os.path.normpath(out))
