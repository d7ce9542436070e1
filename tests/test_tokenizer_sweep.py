"""Every code point through the in-graph tokenizer, against the reference tokenizer.

A corpus cannot find every character the normalization treats differently (onnxruntime-extensions'
stock BertTokenizer op tokenized 10,138 of the 194,528 code points U+0020..U+2FFFF differently from the
reference), so each of the ``len(SWEEP)`` code points below (204,304) is tokenized alone
and inside a word ("a{c}b": isolation and whitespace rules), for the uncased bundled
tokenizer, for a cased one with accents kept and for MPNet's (``<s> $A </s>``, pad 1), in the ONNX graph, in the SavedModel and in
the TFLite file converted from it.
"""
from __future__ import annotations

import numpy as np
import pytest

import exporter
from exporter.runtime.artifacts import open_tokenizer

TARGETS = ["onnx", "savedmodel", "tflite"]

# planes 0-3 (every assigned script), tags/variation selectors, ends of the private-use planes
SWEEP = [*range(0x0, 0xD800), *range(0xE000, 0x32400), *range(0xE0000, 0xE01F0),
         *range(0xF0000, 0xF0010), *range(0x10FFF0, 0x110000)]
CHUNK = 16384
assert len(SWEEP) == 204_304, "the module docstring states the sweep's size"


def _padded(a: np.ndarray, width: int) -> np.ndarray:
    return np.pad(a, ((0, 0), (0, width - a.shape[1])))


_REFERENCE_IDS: dict[tuple[int, str], list[np.ndarray]] = {}


def _reference_ids(tokenizer, template: str) -> list[np.ndarray]:
    """Return the reference's ids of every chunk, computed once per tokenizer and template (3 targets use them)."""
    key = (id(tokenizer), template)
    if key not in _REFERENCE_IDS:
        _REFERENCE_IDS[key] = [
            tokenizer([template.format(chr(cp)) for cp in SWEEP[start:start + CHUNK]], padding=True, truncation=True,
                      max_length=512, return_tensors="np")["input_ids"]
            for start in range(0, len(SWEEP), CHUNK)]
    return _REFERENCE_IDS[key]


def _sweep(reference_tokenizer, graph, template: str) -> list[str]:
    bad = []
    for start, expected in zip(range(0, len(SWEEP), CHUNK), _reference_ids(reference_tokenizer, template), strict=True):
        cps = SWEEP[start:start + CHUNK]
        got = graph.tokenize([template.format(chr(cp)) for cp in cps])["input_ids"]
        width = max(got.shape[1], expected.shape[1])
        rows = np.nonzero((_padded(got, width) != _padded(expected, width)).any(axis=1))[0]
        bad += [f"U+{cps[i]:04X}" for i in rows]
    return bad


@pytest.fixture(scope="module")
def cased_export(tiny_model, tmp_path_factory):
    model = tiny_model("bert_cased", vocab="cased", arch="bert")
    return exporter.export(model, tmp_path_factory.mktemp("cased") / "out", targets=TARGETS, check=False,
                           variants=False)


@pytest.fixture(scope="module")
def cased_reference(cased_export):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(cased_export.manifest["source"]["path"]), device="cpu")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("template", ["{}", "a{}b"])
def test_bundled_tokenizer_every_code_point(bundled_export, bundled_reference, template, target):
    graph = open_tokenizer(bundled_export.out, target)
    assert _sweep(bundled_reference.model.tokenizer, graph, template) == []


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("template", ["{}", "a{}b"])
def test_cased_tokenizer_every_code_point(cased_export, cased_reference, template, target):
    graph = open_tokenizer(cased_export.out, target)
    assert cased_export.manifest["tokenizer"]["normalizer"]["steps"][0]["lowercase"] is False
    assert _sweep(cased_reference.tokenizer, graph, template) == []


@pytest.fixture(scope="module")
def mpnet_reference(mpnet_export):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(mpnet_export.manifest["source"]["path"]), device="cpu")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("template", ["{}", "a{}b"])
def test_mpnet_tokenizer_every_code_point(mpnet_export, mpnet_reference, template, target):
    graph = open_tokenizer(mpnet_export.out, target)
    assert _sweep(mpnet_reference.tokenizer, graph, template) == []


EDGE_TEXTS = [
    "a\x00b c", "\x00", "[MA\x00SK] [MASK]\x00[SEP]", "[CLS][SEP][PAD][UNK][MASK]", "x[MASK]y", "[mask] [ MASK ]",
    "x" * 99, "x" * 100, "x" * 101, "é" * 100, "é" * 101,  # HF limits words by characters, not bytes
    "Σίσυφος ΣΊΣΥΦΟΣ", "İstanbul ǅ ẞ ß", "\U000F0000 \U0010FFFD \U0010FFFC placeholders we use inside the graph",
    "a\u0301\u0302\u0303 \u1100\u1161\u11a8 각", "\ud7a3\ud7a4", "trailing space ", " ", "",
]


@pytest.mark.parametrize("target", TARGETS)
def test_edge_texts_alone_and_batched(bundled_export, bundled_reference, target):
    from exporter.verify.parity import compare_tokens

    report = compare_tokens(bundled_reference, open_tokenizer(bundled_export.out, target), EDGE_TEXTS)
    assert report.mismatches == [], report.mismatches[:3]
