#!/usr/bin/env python3
"""Makes tests/fixtures/minilm_parity.json and minilm_qa_head.safetensors: what
PyTorch + transformers compute for all-MiniLM-L6-v2 with a QA head on three real
SQuAD dev windows (the longest, a short padded one, and one between), so the
Rust model can be checked against it without PyTorch in CI.

Windows are named by position in the first LIMIT dev questions' windows; the
Rust test rebuilds them with its own (digest-checked) pipeline. The fixture
holds the input ids too, as a cross-check, plus:
  - start/end logits in eval mode (no dropout);
  - the loss at the windows' labels and gradients of a few named tensors
    (norm, and a slice) with dropout off.

Run from the repository root with torch and transformers installed:
    python3 tools/reference/model_fixtures.py
"""

import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import window_digest as ref  # noqa: E402

LIMIT = 300
GRAD_TENSORS = [
    "bert.embeddings.word_embeddings.weight",
    "bert.encoder.layer.2.attention.self.query.weight",
    "bert.encoder.layer.5.output.LayerNorm.weight",
    "qa_outputs.weight",
]
SLICE = 16


def main():
    from transformers import BertForQuestionAnswering

    torch.manual_seed(0)
    examples = ref.load_squad(os.path.join(ref.data_dir(), "dev-v1.1.json"), limit=LIMIT)
    tokenizer = ref.load_tokenizer()
    feats = ref.preprocess_validation(tokenizer, examples)
    starts, ends = ref.dev_labels(feats, examples)
    lengths = [sum(m) for m in feats["attention_mask"]]
    longest = max(range(len(lengths)), key=lambda i: lengths[i])
    shortest = min(range(len(lengths)), key=lambda i: lengths[i])
    middle = sorted(range(len(lengths)), key=lambda i: lengths[i])[len(lengths) // 2]
    picked = [longest, shortest, middle]

    model = BertForQuestionAnswering.from_pretrained(ref.tokenizer_dir(), attn_implementation="eager")
    with torch.no_grad():
        model.qa_outputs.weight.normal_(0.0, 0.02)
        model.qa_outputs.bias.zero_()
    out_dir = os.path.join("tests", "fixtures")
    save_file(
        {"qa_outputs.weight": model.qa_outputs.weight.detach().contiguous(),
         "qa_outputs.bias": model.qa_outputs.bias.detach().contiguous()},
        os.path.join(out_dir, "minilm_qa_head.safetensors"),
    )

    as_tensor = lambda key: torch.tensor([feats[key][i] for i in picked])
    batch = {k: as_tensor(k) for k in ("input_ids", "token_type_ids", "attention_mask")}
    model.eval()  # dropout off for both the logits and the gradients
    with torch.no_grad():
        out = model(**batch)
    labels = {"start_positions": torch.tensor([starts[i] for i in picked]),
              "end_positions": torch.tensor([ends[i] for i in picked])}
    model.zero_grad()
    loss = model(**batch, **labels).loss
    loss.backward()
    params = dict(model.named_parameters())
    row = batch["input_ids"][0, 5].item()
    grads = {}
    for name in GRAD_TENSORS:
        g = params[name].grad
        # Word embeddings: the row of one token of the first window; others: the first values.
        by_row = name.endswith("word_embeddings.weight")
        sliced = g[row] if by_row else g.reshape(-1)
        grads[name] = {"norm": g.norm().item(), "row": row if by_row else None,
                       "values": sliced[:SLICE].tolist()}

    fixture = {
        "source": "tools/reference/model_fixtures.py; torch " + torch.__version__,
        "limit": LIMIT,
        "windows": picked,
        "input_ids": batch["input_ids"].tolist(),
        "start_positions": labels["start_positions"].tolist(),
        "end_positions": labels["end_positions"].tolist(),
        "start_logits": out.start_logits.tolist(),
        "end_logits": out.end_logits.tolist(),
        "loss": loss.item(),
        "grads": grads,
    }
    with open(os.path.join(out_dir, "minilm_parity.json"), "w") as f:
        json.dump(fixture, f)
    print("windows", picked, "lengths", [lengths[i] for i in picked], "loss", loss.item())


if __name__ == "__main__":
    main()
