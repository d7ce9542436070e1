"""XLM-RoBERTa with its SentencePiece Unigram tokenizer (multilingual-e5-small's real 250,002 pieces) on every target.

The tiny model (conftest's ``xlmr_export``: random weights, CLS and mean pooling, Dense, Normalize)
is exported with every variant. Token ids are checked against the reference on the corpora, on
special-token and edge texts, on a sample of the code-point sweep (every ``CODE_POINT_STEP``-th
code point of planes 0-3, alone and inside a word) and of the sequence sweep; the whole sweeps run
in ``python -m benchmarks.tokenizer_sweeps`` (about a minute for the three graphs). The one class a kernel
decides (Unigram ties) is counted in the manifest, not failed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exporter.runtime.artifacts import open_tokenizer
from exporter.verify.parity import compare_tokens
from exporter.verify.sweeps import CODE_POINTS, REPEATS, sequence_sweep, texts_that_differ
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


def test_manifest_records_the_family_and_the_kernel_decided_class(xlmr_export):
    manifest = xlmr_export.manifest
    assert manifest["source"]["modules"][0]["architecture"] == "xlm-roberta"
    tokenizer = manifest["tokenizer"]
    assert tokenizer["family"] == "unigram" and tokenizer["vocab_size"] == 250002
    assert tokenizer["template"] == "<s> $A </s>" and tokenizer["pad_id"] == 1
    for target in TARGETS:
        ties = manifest["targets"][target]["parity"]["tokens"]["kernel_decided"]["unigram ties"]
        assert ties["texts"] == len(sequence_sweep()[REPEATS]) and ties["why"]
        assert 0 <= ties["mismatches"] <= 0.02 * ties["texts"], (target, ties)


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
    """Every class but the ties is exact: combining marks (HF's per-cluster character map), jamo, 40 scripts."""
    graph = open_tokenizer(xlmr_export.out, target)
    for name, texts in sequence_sweep(SEQUENCE_STEP).items():
        if name != REPEATS:
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
