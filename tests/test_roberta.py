"""RoBERTa with a byte-level BPE tokenizer on every target that can run it (TFLite cannot: no BPE kernel).

The tokenizer is trained here with HF ``tokenizers`` (real merges, every byte of the alphabet) and
loaded through ``AutoTokenizer`` from ``vocab.json`` + ``merges.txt``, as RoBERTa hub folders are.
The tiny model (conftest's ``roberta_export``: random weights, mean pooling, Normalize) is exported
as ``st-export ROBERTA_DIR -o OUT`` does. Token ids are checked against the reference on the
corpora, on special-token and edge texts, on a sample of the code-point sweep (every
``CODE_POINT_STEP``-th code point of planes 0-3, alone and inside a word: every byte-level
mapping) and of the sequence sweep; the whole sweeps run in ``python -m benchmarks.tokenizer_sweeps``.
"""
from __future__ import annotations

import numpy as np
import pytest

import exporter
from exporter.errors import UnsupportedModelError
from exporter.runtime.artifacts import open_tokenizer
from exporter.verify.corpus import parity_texts
from exporter.verify.parity import compare_tokens
from exporter.verify.sweeps import CODE_POINTS, code_point_sweep, sequence_sweep, texts_that_differ
from exporter.verify.reference import ReferenceRunner
from targets import available

TARGETS = ["onnx", "savedmodel"]
CODE_POINT_STEP = 8
SEQUENCE_STEP = 4
EDGE_TEXTS = [
    "", " ", "\x00", "a\x00b", "\x00\x00 \x00", "x\x00'\x00s", "<mask>", "a<mask>b", "x <mask> y", "x  <mask>",
    "x \n\t <mask>", "x\u00a0<mask>", "x\u3000<mask>", " <mask>", "<mask> ", "<mask><mask> <mask>", "<s>", "</s>",
    "<pad>", "<unk>", "<s></s><pad>", "a  <s>  b", "<Mask>", "<ma\x00sk>", "<mask\u0301>",
    "it's I'm we're they've I'd you'll", "'s 't 're 've 'm 'll 'd", "x's!'s 's\n's", "DON'T 'S", "''s", "'",
    "a  b", "a   \n\n  b", "   ", "trailing   ", "\t\ttabs", "\r\n\r\n", "\u2028\u2029\u0085\u3000", "x" * 300,
    "é" * 120, "Donaudampfschifffahrtsgesellschaftskapitän", "1,234.56 ١٢٣ ²³ ½ Ⅻ", "a1b2 ab12cd",
    "!!! ??? ... ---", "👩‍👩‍👧 🇩🇪 ✊🏽", "\ufeffBOM", "\u200b\u200c\u200d", "\U000F0000\U000F0001 our marks",
    "Tie\u0302\u0301ng Vie\u0323\u0302t", "\U0010FFFF \U000E0001",
]


@pytest.fixture(scope="module")
def roberta_reference(roberta_export) -> ReferenceRunner:
    return ReferenceRunner(roberta_export.manifest["source"]["path"])


def test_every_runnable_target_and_variant_passes(roberta_export):
    assert [row.target for row in roberta_export.rows] == [t for t in available() if t != "tflite"]
    for row in roberta_export.rows:
        assert row.passed, (row.target, row.parity)
        emb = row.parity["embeddings"]
        if "tokens" in row.parity:
            assert row.parity["tokens"]["mismatches"] == 0, row.parity["tokens"]["first_mismatches"]
        assert emb["min_cosine"] >= 0.99999 and emb["max_abs_diff"] <= 1e-5, (row.target, emb)
    variants = {v.target for row in roberta_export.rows for v in row.variant_rows()}
    assert {"onnx:optimized", "onnx:int8", "triton:tf"} <= variants


def test_manifest_records_the_family_and_why_tflite_is_left_out(roberta_export):
    manifest = roberta_export.manifest
    assert manifest["source"]["modules"][0]["architecture"] == "roberta"
    tokenizer = manifest["tokenizer"]
    assert tokenizer["family"] == "bpe" and tokenizer["template"] == "<s> $A </s>" and tokenizer["pad_id"] == 1
    assert tokenizer["lstrip"] == ["<mask>"] and tokenizer["merges"] > 2000
    assert list(manifest["skipped_targets"]) == ["tflite"]
    assert "TFLite" in manifest["skipped_targets"]["tflite"][0]
    assert "tflite" not in manifest["targets"] and not (roberta_export.out / "tflite").exists()


def test_naming_tflite_is_refused_before_anything_is_written(roberta_export, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UnsupportedModelError, match="tflite: .*FastSentencepieceTokenizer"):
        exporter.export(roberta_export.manifest["source"]["path"], out, targets="onnx,tflite")
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", TARGETS)
def test_edge_texts_alone_and_batched(roberta_export, roberta_reference, target):
    ids = roberta_reference.tokenize(["a\x00b x <mask>"])["input_ids"][0].tolist()
    tokens = roberta_reference.model.tokenizer.convert_ids_to_tokens(ids)
    assert tokens[2] == "Ā" and tokens[-2] == "<mask>" and "Ġ" not in tokens  # NUL's byte; lstrip takes the space
    report = compare_tokens(roberta_reference, open_tokenizer(roberta_export.out, target), EDGE_TEXTS)
    assert report.mismatches == [], report.mismatches[:3]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("template", ["{}", "a{}b"])
def test_code_point_sweep_sample(roberta_export, roberta_reference, target, template):
    texts = [template.format(chr(cp)) for cp in CODE_POINTS[::CODE_POINT_STEP]]
    graph = open_tokenizer(roberta_export.out, target)
    assert texts_that_differ(roberta_reference, graph, texts) == []


@pytest.mark.parametrize("target", TARGETS)
def test_sequence_sweep_sample(roberta_export, roberta_reference, target):
    """Every class is exact, runs of one character included (BPE has no ties)."""
    graph = open_tokenizer(roberta_export.out, target)
    for name, texts in sequence_sweep(SEQUENCE_STEP).items():
        report = compare_tokens(roberta_reference, graph, texts, alone=False)
        assert report.count == 0, (name, report.mismatches[:3])


def test_pretoken_rules_are_the_reference_regex(roberta_export, roberta_reference):
    """``bpe.pretoken_starts`` (what both graphs apply) puts every boundary where GPT-2's regex in the reference
    does, on the corpora, a code-point sample inside words and the sequence sweep's sample."""
    from exporter.model import read_model
    from exporter.tokenizers.bpe.spec import pretoken_starts

    classes = read_model(roberta_export.manifest["source"]["path"]).tokenizer.classes()
    pre = roberta_reference.model.tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str
    texts = parity_texts() + EDGE_TEXTS + code_point_sweep("a{}b")[::CODE_POINT_STEP * 4]
    texts += [t for group in sequence_sweep(SEQUENCE_STEP * 4).values() for t in group]
    differ = []
    for text in filter(None, texts):
        cps = np.array([ord(c) for c in text])
        first = np.zeros(len(cps), bool)
        first[0] = True
        if np.flatnonzero(pretoken_starts(cps, classes[cps], first)).tolist() != [s for _, (s, _) in pre(text)]:
            differ.append(text)
    assert differ == [], differ[:3]


def test_tflite_kernel_would_tokenize_bpe_wrongly(roberta_export, roberta_reference):
    """Why TFLite is refused: tensorflow-text's TFLite SentencePiece kernel runs the same BPE model as Unigram
    (other pieces, no error), while the SavedModel's kernel reproduces the reference on the same words."""
    import tensorflow_text as tf_text

    from exporter.model import read_model
    from exporter.tokenizers.bpe.spec import byte_alphabet

    spec = read_model(roberta_export.manifest["source"]["path"]).tokenizer
    backend = roberta_reference.model.tokenizer.backend_tokenizer
    alphabet = byte_alphabet()
    words = sorted({"".join(alphabet[b] for b in word.encode("utf-8")) for text in parity_texts()
                    for word, _ in backend.pre_tokenizer.pre_tokenize_str(text)})
    expected = [[t.id for t in backend.model.tokenize(w)] for w in words]
    fast = tf_text.FastSentencepieceTokenizer(spec.model_proto()).tokenize(words).to_list()
    plain = tf_text.SentencepieceTokenizer(spec.model_proto()).tokenize(words).to_list()
    assert plain == expected
    wrong = sum(a != b for a, b in zip(fast, expected, strict=True))
    assert wrong > len(words) // 10, (wrong, len(words))
    print(f"FastSentencepieceTokenizer: {wrong} of {len(words)} words differ")
