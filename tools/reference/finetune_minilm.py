#!/usr/bin/env python3
"""Fine-tunes all-MiniLM-L6-v2 for SQuAD with the reference notebook's tools
(transformers Trainer and its preprocessing) for a few hundred steps, and saves
a BertForQuestionAnswering checkpoint with its tokenizer. Used to check
`squadlab predict` against transformers on a trained model; not a test.

    python3 tools/reference/finetune_minilm.py OUT_DIR [--steps 200] [--questions 2000]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import window_digest as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--questions", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()

    import torch
    from transformers import BertForQuestionAnswering, Trainer, TrainingArguments

    tokenizer = ref.load_tokenizer()
    examples = ref.load_squad(os.path.join(ref.data_dir(), "train-v1.1.reconstructed.json"), limit=args.questions)
    feats = ref.preprocess_train(tokenizer, examples)
    keys = ["input_ids", "token_type_ids", "attention_mask", "start_positions", "end_positions"]
    rows = [{k: torch.tensor(feats[k][i]) for k in keys} for i in range(len(feats["input_ids"]))]

    model = BertForQuestionAnswering.from_pretrained(ref.tokenizer_dir())
    training = TrainingArguments(
        output_dir=os.path.join(args.out, "trainer"), per_device_train_batch_size=args.batch,
        max_steps=args.steps, learning_rate=1e-4, warmup_steps=args.steps // 10, weight_decay=0.01,
        logging_steps=20, save_strategy="no", report_to=[], seed=42,
    )
    Trainer(model=model, args=training, train_dataset=rows).train()
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    print("saved", args.out)


if __name__ == "__main__":
    main()
