#!/usr/bin/env python3
"""Loads two BertForQuestionAnswering folders with transformers (e.g. a
checkpoint and its re-save by `squadlab convert`) and prints the largest
logit difference on fixed random windows.

    python3 tools/reference/compare_checkpoints.py DIR_A DIR_B
"""

import sys

import torch
from transformers import BertForQuestionAnswering


def main():
    a, b = (BertForQuestionAnswering.from_pretrained(d).eval() for d in sys.argv[1:3])
    ids = torch.randint(1000, a.config.vocab_size, (2, 384), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        x, y = a(input_ids=ids), b(input_ids=ids)
    diff = max((x.start_logits - y.start_logits).abs().max().item(), (x.end_logits - y.end_logits).abs().max().item())
    print(f"max |logit difference|: {diff:.3e}")
    sys.exit(0 if diff <= 1e-5 else 1)


if __name__ == "__main__":
    main()
