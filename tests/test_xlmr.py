"""XLM-RoBERTa with its SentencePiece Unigram tokenizer (multilingual-e5-small's real 250,002 pieces) on every target.

The tiny model (conftest's ``xlmr_export``: random weights, CLS and mean pooling, Dense, Normalize)
is exported with every variant. Token ids are checked against the reference on the corpora, on
special-token and edge texts, on a sample of the code-point sweep (every ``CODE_POINT_STEP``-th
code point of planes 0-3, alone and inside a word) and of the sequence sweep; the whole sweeps run
in ``python -m benchmarks.tokenizer_sweeps`` (about a minute for the three graphs). The class the kernels decide
otherwise (Unigram ties: runs of one character, 1-40 and every vocabulary run 1-64) is re-decided after the kernel
by every graph (``exporter/tokenizers/unigram/ties.py``) and swept in full into the manifest: 0 on every target.
The tests below show why a step is needed (the reference decides ties by float64 rounding) and hold it to
texts the sweeps do not write (runs after other pieces, two runs in a word, a 5,000-character run).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exporter.runtime.artifacts import open_tokenizer
from exporter.verify.parity import compare_tokens
from exporter.verify.sweeps import CODE_POINTS, REPEATS, sequence_sweep, texts_that_differ, vocabulary_runs
from exporter.verify.reference import ReferenceRunner
from targets import available

TARGETS = ["onnx", "savedmodel", "tflite"]
CODE_POINT_STEP = 8
SEQUENCE_STEP = 4
EDGE_TEXTS = [
    "", " ", "\x00", "a\x00b", "a\x00\x00b", "\x00\u0301", "<mask>", "a<mask>b", "x <mask> y", "x  <mask>",
    "x\u00a0<mask>", "<mask>\u0301", "<s>", "</s>", "<pad>", "<unk>", "<s></s><pad>", "<Mask>", "<ma\x00sk>",
    "\u2581", "a\u2581b", "\u2581\u2581x", "x" * 300, "é" * 120, "Donaudampfschifffahrtsgesellschaftskapitän",
    "zzzz", "tabs\tand\nnewlines\r\nmixed", "   leading and trailing   ", "\u3000ideographic\u3000space",
    "Tie\u0302\u0301ng Vie\u0323\u0302t", "a\u0301\u0302\u0303", "\u1100\u1161\u11a8 각", "ª\u0301 Ａ\u0301 ﬁ\u0301",
    "\U000F0000 \U0010FFFD \U000F0FFF our marks", "\ufeffBOM", "\u200b\u200c\u200d", "👩‍👩‍👧 🇩🇪 ✊🏽",
]


@pytest.fixture(scope="module")
def xlmr_reference(xlmr_export) -> ReferenceRunner:
    return ReferenceRunner(xlmr_export.manifest["source"]["path"])


def test_every_target_and_variant_passes(xlmr_export):
    assert [row.target for row in xlmr_export.rows] == available()
    for row in xlmr_export.rows:
        assert row.passed, (row.target, row.parity)
        emb = row.parity["embeddings"]
        if "tokens" in row.parity:
            assert row.parity["tokens"]["mismatches"] == 0, row.parity["tokens"]["first_mismatches"]
        if row.target in ("onnx", "savedmodel", "triton", "tfserving"):
            assert emb["min_cosine"] >= 0.99999 and emb["max_abs_diff"] <= 1e-5, (row.target, emb)
        if row.target == "tflite":
            assert emb["min_cosine"] >= 0.9999, emb
    variants = {v.target for row in xlmr_export.rows for v in row.variant_rows()}
    assert {"onnx:optimized", "onnx:int8", "tflite:fp16", "tflite:int8", "triton:tf"} <= variants


def test_manifest_records_the_family_and_the_kernel_decided_classes(xlmr_export, xlmr_reference):
    manifest = xlmr_export.manifest
    assert manifest["source"]["modules"][0]["architecture"] == "xlm-roberta"
    tokenizer = manifest["tokenizer"]
    assert tokenizer["family"] == "unigram" and tokenizer["vocab_size"] == 250002
    assert tokenizer["template"] == "<s> $A </s>" and tokenizer["pad_id"] == 1
    runs = vocabulary_runs(piece for piece, _ in _pieces(xlmr_reference))
    assert len(runs) == 64 * 304 and "-" * 64 in runs and "a" * 17 in runs  # 304 characters with runs in the vocabulary
    for target in TARGETS:
        known = manifest["targets"][target]["parity"]["tokens"]["kernel_decided"]
        assert {name: k["texts"] for name, k in known.items()} == {
            "unigram ties": len(sequence_sweep()[REPEATS]), "unigram ties, vocabulary runs": len(runs)}
        for name, ties in known.items():
            assert ties["why"] and ties["mismatches"] == 0, (target, name, ties)


@pytest.mark.parametrize("target", TARGETS)
def test_edge_texts_alone_and_batched(xlmr_export, xlmr_reference, target):
    assert xlmr_reference.tokenize(["a\x00b"])["input_ids"].tolist() == [[0, 10, 3, 275, 2]]  # NUL: <unk>
    report = compare_tokens(xlmr_reference, open_tokenizer(xlmr_export.out, target), EDGE_TEXTS)
    assert report.mismatches == [], report.mismatches[:3]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("template", ["{}", "a{}b"])
def test_code_point_sweep_sample(xlmr_export, xlmr_reference, target, template):
    texts = [template.format(chr(cp)) for cp in CODE_POINTS[::CODE_POINT_STEP]]
    graph = open_tokenizer(xlmr_export.out, target)
    assert texts_that_differ(xlmr_reference, graph, texts) == []


@pytest.mark.parametrize("target", TARGETS)
def test_sequence_sweep_sample(xlmr_export, xlmr_reference, target):
    """Every class is exact: combining marks (HF's per-cluster character map), jamo, 40 scripts, runs (ties)."""
    graph = open_tokenizer(xlmr_export.out, target)
    for name, texts in sequence_sweep(SEQUENCE_STEP).items():
        report = compare_tokens(xlmr_reference, graph, texts, alone=False)
        assert report.count == 0, (name, report.mismatches[:3])


def test_reference_applies_the_character_map_per_grapheme(xlmr_reference):
    """Why the graphs normalize and the kernels do not: HF maps a cluster under 6 bytes by its shortest key
    (the rest is dropped) and a longer one character by character; SentencePiece takes the longest key."""
    normalizer = xlmr_reference.model.tokenizer.backend_tokenizer.normalizer
    assert normalizer.normalize_str("e\u0302\u0301") == "ê"  # SentencePiece: "ế"
    assert normalizer.normalize_str("a\u0301\u0302\u0303") == "a\u0301\u0302\u0303"  # 7 bytes; SentencePiece: "á…"
    assert normalizer.normalize_str("ª\u0301") == "a"  # ª is a key by itself: the mark goes


def test_sentencepiece_model_folder_reads_the_same(xlmr_export, tmp_path):
    """A 2.x folder (sentencepiece.bpe.model, no tokenizer.json) gives the same tokenizer spec, so the same graphs."""
    import shutil

    from model_factory import write_xlmr_sentencepiece_model

    from exporter.model import read_model

    source = xlmr_export.manifest["source"]["path"]
    legacy = write_xlmr_sentencepiece_model(Path(shutil.copytree(source, tmp_path / "legacy")))
    assert not (legacy / "tokenizer.json").exists()
    old, new = read_model(legacy).tokenizer, read_model(source).tokenizer
    assert (old.specials, old.framing, old.charsmap, old.unk_id) == (new.specials, new.framing, new.charsmap, new.unk_id)
    assert [p for p, _ in old.pieces] == [p for p, _ in new.pieces]
    # a .model holds float32 scores; tokenizer.json keeps them in float64
    assert np.array_equal(np.float32([s for _, s in old.pieces]), np.float32([s for _, s in new.pieces]))


def _pieces(reference: ReferenceRunner) -> list[tuple[str, float]]:
    """Return the reference's Unigram pieces and float64 scores, in id order."""
    import json

    return [(p, s) for p, s in json.loads(reference.model.tokenizer.backend_tokenizer.to_str())["model"]["vocab"]]


def test_reference_decides_ties_by_float64_rounding(xlmr_reference):
    """Why no table of piece scores can give the kernels the reference's ties: "▁", "つつ", "つ", "つつ", "つつ"
    and "▁", "つ", "つつ", "つつ", "つつ" are the same pieces, so their exact sums are equal under any table; the
    reference keeps the one its float64 sums round higher, not the one whose last piece is longest."""
    from fractions import Fraction

    pieces = _pieces(xlmr_reference)
    ids = xlmr_reference.tokenize(["つ" * 7])["input_ids"][0, 1:-1].tolist()
    assert [pieces[t][0] for t in ids] == ["▁", "つつ", "つ", "つつ", "つつ"]
    ascending = [ids[0], ids[2], ids[1], ids[3], ids[4]]
    assert sum(Fraction(pieces[t][1]) for t in ids) == sum(Fraction(pieces[t][1]) for t in ascending)


#: runs where the sweeps have none: after other pieces (the float64 sum starts from the word's), two in one word,
#: beside other words and special tokens, after an unknown character, longer than the truncation
RUN_TEXTS = ["Hmmmmmm.... ok!!!!!!", "wait.......... what??????", "aaaaaaa ---------- ========== つつつつつつつ",
             "x" * 7 + "-" * 17 + "." * 13, "<mask> aaaaaaa <s> ------", "\x00aaaaaaa", "\U000F0FFF\U000F0FFFaaaaaaa",
             "| a | b |\n|---|---|\n| 1 | 2 |", "-" * 5000, "=" * 4999 + " x", "ـــــــــــــــــــ", "\u2581\u2581aaaa"]


@pytest.mark.parametrize("target", TARGETS)
def test_runs_beyond_the_sweeps_are_the_references(xlmr_export, xlmr_reference, target):
    graph = open_tokenizer(xlmr_export.out, target)
    report = compare_tokens(xlmr_reference, graph, RUN_TEXTS)
    assert report.mismatches == [], report.mismatches[:3]


def test_float64_sum_rounds_as_float64_addition():
    """The TensorFlow step's float64 addition in int64 ops: bit-exact on sums of every magnitude the runs reach,
    exact ties of rounding (an addend of half an ulp, odd and even) and 0."""
    from exporter.tokenizers.unigram.ties_tf import float64_sum

    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 25, 100_000) * rng.choice([1e-3, 1, 10, 1000, 1e5], 100_000)
    b = rng.uniform(0.5, 25, 100_000)
    b[:1000], b[1000:2000], b[2000:2100] = a[:1000] * 2.0 ** -53, a[1000:2000] * 3 * 2.0 ** -53, 0.0
    b[2100:2200] = np.nextafter(a[2100:2200], 0) * 2.0 ** -53
    got = float64_sum(a.view(np.int64), b.view(np.int64)).numpy()
    assert np.array_equal(got.view(np.float64), a + b)
