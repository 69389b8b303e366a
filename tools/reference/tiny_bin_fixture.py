#!/usr/bin/env python3
"""Makes tests/fixtures/tiny_bert_bin/: a tiny random BertModel saved the old
way (pytorch_model.bin, legacy LayerNorm gamma/beta names, a pooler), with the
hidden states PyTorch computes for a fixed input, so the Rust loader's pickle
path and name mapping are checked without PyTorch in CI.

And tests/fixtures/tiny_electra_bin/: a tiny random ELECTRA discriminator
(`ElectraForPreTraining`, with `embeddings_project` and the
`discriminator_predictions` head) saved only as pytorch_model.bin, as the
google/electra-*-discriminator repositories hold it (no safetensors).

Run from the repository root: python3 tools/reference/tiny_bin_fixture.py
"""

import json
import os

import torch
from transformers import BertConfig, BertModel

OUT = os.path.join("tests", "fixtures", "tiny_bert_bin")


def main():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    model = BertModel(config).eval()
    os.makedirs(OUT, exist_ok=True)
    state = {}
    for name, tensor in model.state_dict().items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[name] = tensor.contiguous()
    torch.save(state, os.path.join(OUT, "pytorch_model.bin"))
    config.to_json_file(os.path.join(OUT, "config.json"))

    write_expected(OUT, model)


def write_expected(out, encoder):
    """The encoder's hidden states for a fixed input through the head the
    test will use (w = 0.01·(i+j), b = (0.1, -0.1)), as expected.json."""
    ids = torch.tensor([[2, 15, 27, 3, 40, 41, 42, 3, 0, 0]])
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1, 0, 0]])
    with torch.no_grad():
        hidden = encoder(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
    w = torch.tensor([[0.01 * (i + j) for j in range(32)] for i in range(2)])
    b = torch.tensor([0.1, -0.1])
    logits = hidden[0] @ w.T + b
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"input_ids": ids[0].tolist(), "token_type_ids": types[0].tolist(),
                   "attention_mask": mask[0].tolist(), "start_logits": logits[:, 0].tolist(),
                   "end_logits": logits[:, 1].tolist()}, f)
    print("wrote", out)


def electra():
    from transformers import ElectraConfig, ElectraForPreTraining

    out = os.path.join("tests", "fixtures", "tiny_electra_bin")
    torch.manual_seed(0)
    config = ElectraConfig(vocab_size=100, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                           architectures=["ElectraForPreTraining"])
    model = ElectraForPreTraining(config).eval()
    os.makedirs(out, exist_ok=True)
    state = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    # The hub's checkpoints keep the position ids buffer too.
    state["electra.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)
    torch.save(state, os.path.join(out, "pytorch_model.bin"))
    config.to_json_file(os.path.join(out, "config.json"))
    write_expected(out, model.electra)


if __name__ == "__main__":
    main()
    electra()
