"""Today's byte-level BPE tokenizers (ModernBERT's, Qwen2/Qwen3's) on ONNX and SavedModel (TFLite: refused, as RoBERTa's).

The tokenizers are trained here in each real tokenizer.json format (``model_factory``: ``modernbert``,
``qwen2``) and attached to a tiny BERT, so the tokenizer is proven end to end whatever encoder it comes
with. Token ids are checked against the reference on the corpora, edge texts, a sample of the code-point
sweep and of the sequence sweep; Qwen2's pre-token rules against its regex on many texts; the added tokens'
matches (ModernBERT's runs of 2 to 24 spaces overlap in any longer run) against transformers' on texts of them. NFC: each code point's
canonical decomposition is a table (every code point alone exact); ONNX reorders and composes within a bounded reach
(``bpe.spec.graph_nfc``: the residual the manifest's ``nfc composition`` class counts), TensorFlow runs ICU's NFC.
"""
from __future__ import annotations

import numpy as np
import pytest

import exporter
from conftest import once_per_run
from model_factory import MODERNBERT_ADDED
from exporter.runtime.artifacts import open_tokenizer
from exporter.verify.corpus import parity_texts
from exporter.verify.parity import compare_tokens
from exporter.verify.reference import ReferenceRunner
from exporter.verify.sweeps import CODE_POINTS, code_point_sweep, texts_that_differ

TARGETS = ["onnx", "savedmodel"]
VARIANTS = ["modernbert", "qwen2"]
CODE_POINT_STEP = 16
EDGE_TEXTS = [
    "", " ", "\x00", "a\x00b", "[MASK]", "x  [MASK] y", "x\n[MASK]", "[CLS][SEP]", "<|endoftext|>", "a<|im_start|>b",
    "|||IP_ADDRESS||| |||EMAIL_ADDRESS|||", "|||IP_ADDRESS|||EMAIL_ADDRESS|||", "|||EMAIL_ADDRESS|||IP_ADDRESS|||",
    "|||IP_ADDRESS|||IP_ADDRESS|||IP_ADDRESS|||", "x[MASK][MASK] [MASK]", "<think>x</think>", "it's I'M we're THEY'VE I'd you'LL", "'stop 'S",
    "a  b", "a \n b", "a\n\n  b", "!\n\n  b", "?\n \nb", " !a", "!!abc", "\t!a", "a 1", "a  12345", "\r\n\r\n",
    "a\u3000b \u00a0x", "\u2028\u2029\u0085 x", "é" * 50, "e\u0301 A\u030a \u212b \u0f73", "Tie\u0302\u0301ng Vie\u0323\u0302t",
    "\u1100\u1161\u11a8 한국어", "1,234.56 ١٢٣ ²³ ½", "👩‍👩‍👧 🇩🇪", "x" * 300,
    " " * 75, "a" + " " * 51 + "b", "def f():\n" + " " * 52 + "return x\n\t\t  \t" + " " * 30 + "[MASK]",
]


@pytest.fixture(scope="module", params=VARIANTS)
def variant(request, tiny_model, tmp_path_factory):
    """(variant, its export to onnx and savedmodel, the reference) of a tiny BERT with the variant's tokenizer."""
    name = request.param
    model = tiny_model(f"bert_{name}", arch="bert", vocab=name, pooling=("mean",))
    if name == "qwen2":  # left padding is the Qwen3 encoder's part (its positions): the tokenizer is checked here
        import json

        config = model / "tokenizer_config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "padding_side": "right"}))
    result = once_per_run(tmp_path_factory, f"bpe-{name}",
                          lambda folder: exporter.export(model, folder / "export", targets="onnx,savedmodel",
                                                                variants=False))
    return name, result, ReferenceRunner(str(model))


def test_both_targets_pass_parity(variant):
    name, result, _ = variant
    for row in result.rows:
        assert row.passed, (name, row.target, row.parity)
        emb = row.parity["embeddings"]
        assert row.parity["tokens"]["mismatches"] == 0, row.parity["tokens"]["first_mismatches"]
        assert emb["min_cosine"] >= 0.99999 and emb["max_abs_diff"] <= 1e-5, (row.target, emb)
        print(name, row.target, emb, row.parity["tokens"].get("kernel_decided"))
    tokenizer = result.manifest["tokenizer"]
    assert tokenizer["normalizer"] == "NFC" and ("Qwen2" in tokenizer["pre_tokenizer"]) == (name == "qwen2")


@pytest.mark.parametrize("target", TARGETS)
def test_edge_texts_alone_and_batched(variant, target):
    _, result, reference = variant
    report = compare_tokens(reference, open_tokenizer(result.out, target), EDGE_TEXTS)
    assert report.mismatches == [], report.mismatches[:3]


@pytest.mark.parametrize("target", TARGETS)
def test_code_point_sweep_sample(variant, target):
    _, result, reference = variant
    texts = [f"a{chr(cp)}b" for cp in CODE_POINTS[::CODE_POINT_STEP]]
    assert texts_that_differ(reference, open_tokenizer(result.out, target), texts) == []


def test_qwen2_pretoken_rules_are_the_reference_regex(variant):
    """``BpeSpec.starts`` (what both graphs apply) puts every boundary where Qwen2's regex does."""
    import random

    from exporter.model import read_model

    name, result, reference = variant
    if name != "qwen2":
        pytest.skip("ModernBERT's rules are GPT-2's (test_roberta)")
    spec = read_model(result.manifest["source"]["path"]).tokenizer
    classes = spec.classes()
    pre = reference.model.tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str
    pool = list(" \t\n\r\u3000\u00a0\u0085ab1!'.,sSeE")
    rng = random.Random(0)
    texts = parity_texts() + EDGE_TEXTS + code_point_sweep("a{}b")[::CODE_POINT_STEP * 4]
    texts += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 12))) for _ in range(3000)]
    differ = []
    for text in filter(None, texts):
        cps = np.array([ord(c) for c in text])
        first = np.zeros(len(cps), bool)
        first[0] = True
        if np.flatnonzero(spec.starts(cps, classes[cps], first)).tolist() != [s for _, (s, _) in pre(text)]:
            differ.append(text)
    assert differ == [], differ[:3]


def _batches_marked_otherwise(added: list[tuple[str, bool, bool]], batches: list[list[str]]) -> list[list[str]]:
    """Return the batches of texts where ``BpeSpec.special_marks`` (what both graphs apply) keeps other matches of the
    added tokens ``(content, special, normalized)`` than transformers' backend gives them."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers

    from exporter.tokenizers.bpe.spec import BpeSpec

    reference = Tokenizer(models.WordLevel({"\x01": 0}, unk_token="\x01"))  # no added token is its unknown one
    reference.normalizer = normalizers.NFC()
    reference.add_tokens([AddedToken(content, special=special, normalized=normalized)
                          for content, special, normalized in added])
    specials = sorted(((content, reference.token_to_id(content), False) for content, _, _ in added),
                      key=lambda s: -len(s[0]))
    spec = BpeSpec(vocab=(), merges=(), framing=None, specials=tuple(specials),
                   normalized_specials=tuple(content for content, special, normalized in added if normalized))
    index = {token_id: k for k, (_, token_id, _) in enumerate(specials, start=1)}
    differ = []
    for texts in batches:
        mark, inside = [], []
        for text in texts:
            encoding = reference.encode(text, add_special_tokens=False)
            row_mark, row_inside = [0] * len(text), [False] * len(text)
            for token_id, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
                if token_id in index:
                    row_mark[start] = index[token_id]
                    row_inside[start:end] = [True] * (end - start)
            mark += row_mark
            inside += row_inside
        cps = np.array([ord(c) for text in texts for c in text], np.int64)
        row = np.array([r for r, text in enumerate(texts) for _ in text], np.int64)
        got = spec.special_marks(cps, row)
        if got[0].tolist() != mark or got[1].tolist() != inside:
            differ.append(texts)
    return differ


#: ModernBERT's added tokens as its tokenizer.json has them: (content, special, normalized)
MODERNBERT_TOKENS = [(content, special, not special) for content, special, _ in
                     [("|||IP_ADDRESS|||", True, False), ("<|padding|>", True, False), *MODERNBERT_ADDED]]


@pytest.mark.parametrize("added, most", [
    (MODERNBERT_TOKENS, 8),
    ([(content, False, True) for content in ("aaa", "aa", "ab", "ba", "b", "xyx", "yxy", "xy")], 8),
    ([(" " * k, False, k % 2 == 0) for k in range(1, 9)], 8),
], ids=["modernbert", "nested", "spaces"])
def test_special_tokens_are_matched_where_the_reference_splits_them(added, most):
    """``BpeSpec.special_marks`` (every literal at once, overlapping matches leftmost and longest, the ``normalized``
    literals in a second stage) on texts made of up to ``most`` pieces of the literals, against transformers' spans."""
    import random

    pieces = [part for content, _, _ in added for k in range(len(content))
              for part in (content[:k + 1], content[k:])] + ["x", " ", "é"]
    rng = random.Random(0)
    batches = [["".join(rng.choice(pieces) for _ in range(rng.randint(0, most))) for _ in range(rng.randint(1, 3))]
               for _ in range(1000)]
    differ = _batches_marked_otherwise(added, batches)
    assert differ == [], differ[:3]


def test_space_run_tokens_are_matched_on_runs_of_any_length():
    """ModernBERT's runs of 2 to 24 spaces (added tokens, normalized, not special: GPT-NeoX's, which code indentation
    meets in long runs) match as transformers matches them on runs of 1 to 120 spaces, between words, among tabs and
    line breaks, alone and batched: a run of 51 spaces was split wrongly by a fixed number of passes."""
    import random

    rng = random.Random(0)
    texts = [" " * n for n in range(1, 121)] + [f"a{' ' * n}b" for n in range(1, 81, 3)]
    texts += ["".join(rng.choice([" " * rng.randint(1, 60), "\t", "\n", "x = 1", "[MASK]", "|||IP_ADDRESS|||"])
                      for _ in range(rng.randint(1, 10))) for _ in range(200)]
    batches = [[text] for text in texts] + [texts[k:k + 4] for k in range(0, len(texts), 4)]
    assert _batches_marked_otherwise(MODERNBERT_TOKENS, batches) == []
