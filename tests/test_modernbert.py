"""ModernBERT: what the tiny model's parity (tests/test_tiny_models.py) would not show on its own.

The corpus must reach past the local window (or the local layers' mask goes untested), the fused-encoder path
(``model_optimized.onnx``, the int8 variant's source) runs the layers through ``Architecture.layers``, and the
TF bridge's integer division is rewritten to float32 for TFLite.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from conftest import MODERNBERT_OPTIONS
from exporter.verify.corpus import parity_texts
from exporter.verify.reference import ReferenceRunner

NAME = "modernbert_cls_mean_norm"


@pytest.fixture(scope="module")
def reference(tiny_model) -> ReferenceRunner:
    return ReferenceRunner(tiny_model(NAME, **MODERNBERT_OPTIONS))


def test_the_corpus_reaches_past_the_local_window(reference):
    """With the window widened to the whole text, the reference's embeddings change: parity covers the local mask."""
    transformer = reference.model[0].model
    assert set(transformer.config.layer_types) == {"full_attention", "sliding_attention"}
    texts = parity_texts()
    local = reference.encode(texts)
    window = transformer.config.local_attention
    try:
        transformer.config.local_attention = 4 * reference.model.max_seq_length
        widened = reference.encode(texts)
    finally:
        transformer.config.local_attention = window
    assert np.abs(local - widened).max() > 1e-3


def test_the_fused_encoder_matches_the_reference(reference, tiny_model):
    """``model_optimized.onnx`` is built from ``embeddings`` and ``layers``; ORT's "bert" fusions match the GeGLU's
    GELU and the residual LayerNorms, not the rotary attention."""
    from exporter.graphs.encoder_fused import fused_encoder
    from exporter.model import read_model

    spec = read_model(tiny_model(NAME, **MODERNBERT_OPTIONS))
    model, counts = fused_encoder(spec, opset=20)
    assert counts.get("Gelu") == 4 and "Attention" not in counts, counts
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    texts = parity_texts()
    tokens = reference.tokenize(texts)
    tokens.setdefault("token_type_ids", np.zeros_like(tokens["input_ids"]))
    got = session.run(None, tokens)[0]
    expected = reference.encode(texts, batch_size=len(texts))
    assert np.abs(got - expected).max() <= 1e-5


def test_integer_division_is_rewritten_to_float32_with_the_same_quotients():
    from exporter.graphs.onnx_for_tflite import integer_div_in_float32

    graph = helper.make_graph(
        [helper.make_node("Div", ["a", "b"], ["q"], name="div")], "g",
        [helper.make_tensor_value_info(name, onnx.TensorProto.INT64, [None]) for name in ("a", "b")],
        [helper.make_tensor_value_info("q", onnx.TensorProto.INT64, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 8
    feeds = {"a": np.array([7, 64, 32, 767, 1], np.int64), "b": np.array([2, 2, 3, 12, 4], np.int64)}
    before = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    assert integer_div_in_float32(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Cast", "Cast", "Div", "Cast"]
    after = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    np.testing.assert_array_equal(after[0], before)
    assert after[0].dtype == np.int64
