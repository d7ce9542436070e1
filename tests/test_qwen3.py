"""Qwen3 decoders (Qwen3-Embedding): what the tiny model's parity (tests/test_tiny_models.py) does not show alone.

The reference pads on the left (Qwen3-Embedding's tokenizer_config.json) and gives a padded text position ids
offset by its pad count; every export pads on the right. The parity test compares the two at batch sizes
all, 1 and 7 (mixed lengths) on every target; these tests hold the pieces it rests on.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import exporter
from conftest import QWEN3_OPTIONS
from exporter.errors import UnsupportedModelError
from exporter.graphs import TOKEN_NAMES
from exporter.graphs.onnx_for_tflite import integer_div_in_float32
from exporter.verify.reference import ReferenceRunner

NAME = "qwen3_lasttoken_left_padded_prompts"
TEXTS = ["a", "a longer text of several words", "", "mid length text"]


@pytest.fixture(scope="module")
def qwen3_model(tiny_model):
    return tiny_model(NAME, **QWEN3_OPTIONS)


def test_tiny_qwen3_is_qwen3_embedding_shaped(qwen3_model):
    """Grouped-query attention with a head_dim apart from hidden / heads, as the real 0.6B (16 × 128 over 1024)."""
    config = json.loads((qwen3_model / "config.json").read_text())
    assert config["model_type"] == "qwen3"
    assert config["num_key_value_heads"] < config["num_attention_heads"]
    assert config["head_dim"] * config["num_attention_heads"] != config["hidden_size"]


def test_reference_pads_left_and_its_ids_compare_right_aligned(qwen3_model):
    reference = ReferenceRunner(qwen3_model)
    tokenizer = reference.model.tokenizer
    left = tokenizer(TEXTS, padding=True, return_tensors="np")
    assert (left["attention_mask"][:, -1] == 1).all() and (left["attention_mask"][:, 0] == 0).any()
    right = tokenizer(TEXTS, padding=True, padding_side="right", return_tensors="np")
    got = reference.tokenize(TEXTS)
    for name in ("input_ids", "attention_mask"):
        np.testing.assert_array_equal(got[name], right[name])


def test_left_padded_reference_embeds_each_text_as_alone(qwen3_model):
    """The reference's own claim the exports rely on: left padding (positions offset by the pads) leaves each
    text's last-token embedding as it is alone, to rounding."""
    model = ReferenceRunner(qwen3_model).model
    batch = model.encode(TEXTS, batch_size=len(TEXTS))
    alone = np.stack([model.encode([text])[0] for text in TEXTS])
    assert np.abs(batch - alone).max() <= 1e-5


def test_encoder_graph_has_no_cache(qwen3_export):
    encoder = onnx.load(qwen3_export.out / "onnx" / "encoder.onnx", load_external_data=False)
    assert [i.name for i in encoder.graph.input] == list(TOKEN_NAMES)
    assert [o.name for o in encoder.graph.output] == ["sentence_embedding"]


def test_every_variant_passes_and_the_optimized_one_says_why_it_is_not_fused(qwen3_export):
    """model_optimized.onnx is the plain decoder (no ORT fusion for it); int8 and fp16 at their own bars."""
    assert all(row.passed for row in qwen3_export.rows), [row.parity.get("variants") for row in qwen3_export.rows]
    onnx_target = qwen3_export.manifest["targets"]["onnx"]
    assert set(onnx_target["parity"]["variants"]) >= {"optimized", "int8"}
    assert onnx_target["variants"]["optimized"]["fused"].startswith("none (qwen3): ")


def test_sliding_window_attention_is_refused_by_name(qwen3_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(qwen3_model, model)
    config = json.loads((model / "config.json").read_text())
    config.update(use_sliding_window=True, sliding_window=4, max_window_layers=1,
                  layer_types=["full_attention", "sliding_attention"])
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match=r"sliding-window attention .*layer_types \[1\]"):
        exporter.export(model, tmp_path / "out", targets="onnx", check=False)
    assert not (tmp_path / "out").exists()


def test_integer_div_in_float32_gives_onnx_integer_division():
    """The TFLite rewrite of rotate_half's ``x.shape[-1] // 2``: the same integers as ONNX's integer Div."""
    graph = helper.make_graph([helper.make_node("Div", ["a", "b"], ["q"], name="div")], "g",
                              [helper.make_tensor_value_info("a", TensorProto.INT64, [None]),
                               helper.make_tensor_value_info("b", TensorProto.INT64, [None])],
                              [helper.make_tensor_value_info("q", TensorProto.INT64, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 12)])
    model.ir_version = 8
    a = np.arange(0, 5000, dtype=np.int64)
    b = np.resize(np.arange(1, 257, dtype=np.int64), a.shape)

    def run(m):
        return ort.InferenceSession(m.SerializeToString()).run(None, {"a": a, "b": b})[0]

    expected = run(model)
    assert integer_div_in_float32(model) == 1
    assert {n.op_type for n in model.graph.node} == {"Cast", "Div"}
    np.testing.assert_array_equal(run(model), expected)


def test_qwen3_embedding_as_shipped_with_its_own_tokenizer_passes_on_onnx(tiny_model, tmp_path):
    """The whole of Qwen3-Embedding's layout at once: the decoder, Qwen2's byte-level BPE (NFC, its pre-token regex,
    <|endoftext|> appended by the post-processor, which last-token pooling reads), the tokenizer padding on the left
    and the query instruction; the pieces are proven apart (here, tests/test_bpe_variants.py), this proves them
    composed, on onnx (the BPE TF graph is the same emitter as test_bpe_variants' savedmodel)."""
    model = tiny_model("qwen3_qwen2_tokenizer", **{**QWEN3_OPTIONS, "vocab": "qwen2"})
    result = exporter.export(model, tmp_path / "out", targets="onnx", variants=False)
    tokenizer = result.manifest["tokenizer"]
    assert tokenizer["normalizer"] == "NFC" and "Qwen2" in tokenizer["pre_tokenizer"]
    row = result.rows[0]
    assert row.passed, row.parity
    assert row.parity["tokens"]["mismatches"] == 0
    assert row.parity["embeddings"]["min_cosine"] >= 0.99999 and row.parity["embeddings"]["max_abs_diff"] <= 1e-5
    for prompt in row.prompt_rows():
        assert prompt.passed, (prompt.target, prompt.parity)
    ids = ReferenceRunner(model).tokenize(["a text"])["input_ids"][0]
    assert ids[-1] == json.loads((model / "tokenizer.json").read_text())["post_processor"]["special_tokens"][
        "<|endoftext|>"]["ids"][0]
