"""MPNet (all-mpnet-base-v2's architecture and tokenizer) through every target, with every variant.

The tiny model has random weights and all-mpnet-base-v2's tokenizer layout: ``<s> $A </s>``
(RobertaProcessing), ``<pad>`` = 1, ``<mask>`` with lstrip, ``<unk>`` matched after lowercasing,
and a tokenizer.json that pads to a fixed 128 (which SentenceTransformer ignores). The code-point
sweep of its tokenizer is in tests/test_tokenizer_sweep.py.
"""
from __future__ import annotations

import pytest

from exporter.runtime.artifacts import open_tokenizer
from exporter.verify.parity import compare_tokens
from targets import available

#: what the core bar and each variant's own bar are checked against by the export itself
VARIANT_ROWS = {"onnx:optimized", "onnx:int8", "tflite:fp16", "tflite:int8", "triton:tf"}
SPECIAL_TEXTS = [
    "<UNK>", "<unk>", "<Unk> stays text in MPNet? no: it lowercases to <unk>", "<un\u200bk>", "ÀB <UNK>",
    "<mask>", "x<mask>y", "x <mask> y", "x  <mask>", "x\u00a0<mask>", "x\u2028<mask>", "x\u3000<mask>",
    "x\u0085<mask>", "\u200b<mask>", "<Mask>", "<MASK>", "<mask><mask>", "Hello <mask>!", "<mask>\u0301",
    "<s>", "<S>", "</s>", "<pad>", "a<pad>b", "<pad><pad>", "[UNK]", "[unk]", "a[UNK]b", "[MASK]", "[CLS]",
    "＜mask＞", "é<mask>", "\x00<mask>", "<ma\x00sk>", " ", "",
]


def test_every_target_and_variant_passes(mpnet_export):
    rows = {row.target: row for row in mpnet_export.rows}
    assert list(rows) == available()
    for row in mpnet_export.rows:
        assert row.passed, (row.target, row.parity)
        if "tokens" in row.parity:
            assert row.parity["tokens"]["mismatches"] == 0, row.parity["tokens"]["first_mismatches"]
        emb = row.parity["embeddings"]
        if row.target in ("onnx", "savedmodel", "triton", "tfserving"):
            assert emb["min_cosine"] >= 0.99999 and emb["max_abs_diff"] <= 1e-5, (row.target, emb)
        if row.target == "tflite":
            assert emb["min_cosine"] >= 0.9999, emb
    variants = {variant.target for row in mpnet_export.rows for variant in row.variant_rows()}
    assert VARIANT_ROWS <= variants


def test_manifest_records_the_architecture_and_framing(mpnet_export):
    manifest = mpnet_export.manifest
    assert manifest["source"]["modules"][0]["architecture"] == "mpnet"
    tokenizer = manifest["tokenizer"]
    assert tokenizer["template"] == "<s> $A </s>" and tokenizer["pad_id"] == 1
    assert tokenizer["max_seq_length"] == 40  # sentence-transformers' limit, not tokenizer.json's 128
    assert tokenizer["normalized_special_tokens"] == ["<unk>"]
    # ORT's optimizer fuses MPNet's GELU and residual LayerNorms; its attention (relative position bias) stays
    fused = manifest["targets"]["onnx"]["variants"]["optimized"]["fused"]
    assert "SkipLayerNormalization" in fused and "Attention" not in fused


@pytest.mark.parametrize("target", ["onnx", "savedmodel", "tflite"])
def test_special_token_literals_match_like_the_reference(mpnet_export, target):
    from exporter.verify.reference import ReferenceRunner

    graph = open_tokenizer(mpnet_export.out, target)
    reference = ReferenceRunner(mpnet_export.manifest["source"]["path"])
    assert reference.tokenize(["<UNK>"])["input_ids"].tolist() == [[0, 3, 2]]  # the fixture is what we claim
    report = compare_tokens(reference, graph, SPECIAL_TEXTS)
    assert report.mismatches == [], report.mismatches[:3]
