"""The TFLite target: Flex-free files, parity of fp32/fp16/int8 against SentenceTransformer, sizes."""
from __future__ import annotations

import dataclasses
import json
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

from exporter.runtime.artifacts import artifact, variants_of
from exporter.runtime.tflite import TFLiteRunner
from exporter.verify.parity import compare_embeddings, compare_tokens
from exporter.verify.reference import ReferenceRunner
from targets.tflite import FILES, FP32_BAR, VARIANT_BARS, describe

TF_TEXT_OPS = {"TFText>ByteSplitWithOffsets", "TFText>FastWordpieceDetokenize", "FastWordpieceTokenizeWithOffsets"}
FP32_MIN_COSINE, INT8_MIN_COSINE = 0.9999, 0.98


@pytest.fixture(scope="module")
def tflite(bundled_export) -> dict:
    return bundled_export.manifest["targets"]["tflite"]


def test_three_files_without_flex_ops(bundled_export, tflite):
    assert sorted(p.name for p in (bundled_export.out / "tflite").iterdir()) == sorted(FILES)
    for name, graph in tflite["graphs"].items():
        assert graph["ops"]["flex"] == [], name
        assert set(graph["ops"]["tensorflow-text"]) == TF_TEXT_OPS, name
        assert "GELU" in graph["ops"]["builtin"], name  # the reordered GELU became the builtin
    assert tflite["runtime"].startswith("ai-edge-litert")


def test_signatures_take_strings_of_any_batch_size(bundled_export):
    runner = TFLiteRunner(bundled_export.out / "tflite/model.tflite")
    signatures = runner.interpreter.get_signature_list()
    assert signatures["serving_default"] == {"inputs": ["text"], "outputs": ["sentence_embedding"]}
    assert sorted(signatures["tokenize"]["outputs"]) == ["attention_mask", "input_ids", "token_type_ids"]
    (text,) = runner.interpreter.get_signature_runner("serving_default").get_input_details().values()
    assert text["shape_signature"].tolist() == [-1] and text["dtype"] == np.bytes_
    sizes = [runner.encode(["a"] * n).shape for n in (3, 1, 7, 1)]  # resized each time
    assert sizes == [(3, 384), (1, 384), (7, 384), (1, 384)]


def test_fp32_parity_at_the_issue_bar(tflite):
    parity = tflite["parity"]
    assert parity["tokens"]["mismatches"] == 0
    emb = parity["embeddings"]
    assert emb["batch_sizes"] == ["all", "1", "7"] and emb["min_cosine"] >= FP32_MIN_COSINE and emb["passed"]


def test_quantized_variants_measured_and_int8_at_its_bar(tflite):
    variants = tflite["parity"]["variants"]
    assert set(variants) == {"fp16", "int8"}
    for name, report in variants.items():
        assert 0.9 < report["retention"] <= 1.0 and report["mean_cosine"] >= report["min_cosine"], name
        assert report["batch_sizes"] == ["all", "1", "7"]
    assert variants["int8"]["min_cosine"] >= INT8_MIN_COSINE
    assert variants["fp16"]["min_cosine"] >= variants["int8"]["min_cosine"]


def test_int8_weights_are_a_quarter_of_fp32(tflite):
    fp32 = tflite["graphs"]["model.tflite"]["constant_bytes"]
    int8 = tflite["graphs"]["model_int8.tflite"]["constant_bytes"]
    fp16 = tflite["graphs"]["model_fp16.tflite"]["constant_bytes"]
    assert 0.24 <= int8["int8"] / fp32["float32"] <= 0.27
    assert fp16["float16"] / fp32["float32"] == pytest.approx(0.5, abs=0.01)


def test_tokens_and_embeddings_through_the_runner(bundled_export, bundled_reference, corpus):
    runner = TFLiteRunner(bundled_export.out / "tflite/model.tflite")
    long_texts = [" ".join(["word"] * n) for n in (253, 254, 255)] + ["a " * 5000]
    assert compare_tokens(bundled_reference, runner, corpus + long_texts).mismatches == []
    report = compare_embeddings(bundled_reference, runner, [*corpus[:20], *long_texts], batch_sizes=(None, 1))
    assert report.min_cosine >= FP32_MIN_COSINE, report


def test_empty_string_and_empty_batch(bundled_export, bundled_reference):
    for name in FILES:
        runner = TFLiteRunner(bundled_export.out / "tflite" / name)
        assert runner.encode([]).shape == (0, 384), name
        assert runner.tokenize([])["input_ids"].shape == (0, 0), name
    runner = TFLiteRunner(bundled_export.out / "tflite/model.tflite")
    got, expected = runner.encode(["", " ", "\x00"]), bundled_reference.encode(["", " ", "\x00"])
    assert np.abs(got - expected).max() < 1e-4


def test_overlapping_special_tokens_are_refused_before_building(bundled_export):
    from exporter.model import read_model
    from targets.savedmodel import SavedModelTarget

    spec = read_model(None)
    tokenizer = dataclasses.replace(spec.tokenizer, specials=(("<ab>", 1), ("b>x", 2)))
    problems = SavedModelTarget().problems(dataclasses.replace(spec, tokenizer=tokenizer))
    assert any("can overlap" in p for p in problems), problems
    assert SavedModelTarget().problems(spec) == []


# Why exporter/graphs/onnx_for_tflite.py exists: without its rewrites the encoder does not convert.

def _converted_ops(encoder) -> set[str]:
    import onnx
    import tensorflow as tf

    from exporter.graphs.onnx_tf_compat import onnx_tf_backend

    module = onnx_tf_backend().prepare(onnx.ModelProto.FromString(encoder.SerializeToString())).tf_module
    with tempfile.TemporaryDirectory() as tmp:
        module.outputs = ["sentence_embedding"]
        signature = tf.function(lambda ids, mask, types: module(input_ids=ids, attention_mask=mask,
                                                                token_type_ids=types)["sentence_embedding"],
                                input_signature=[tf.TensorSpec([None, None], tf.int64)] * 3)
        tf.saved_model.save(module, tmp, signatures=signature.get_concrete_function())  # tracks its weights
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.allow_custom_ops = True  # anything without a builtin shows up as a custom op
        data = converter.convert()
    ops = describe(data)["ops"]
    return set(ops["builtin"]) | {f"custom:{op}" for op in ops["tensorflow-text"]}


def test_encoder_rewrites_are_needed_and_exact(tiny_model):
    import onnx
    import onnxruntime as ort

    from exporter.graphs.encoder import export_encoder
    from exporter.model import read_model
    from exporter.graphs.onnx_for_tflite import tflite_friendly
    from exporter.graphs.onnx_tf_compat import ONNX_TF_OPSET

    spec = read_model(tiny_model("dense_gelu_nobias_norm", dense=((16, "GELU", False),)))
    with tempfile.TemporaryDirectory() as tmp:
        original = export_encoder(spec, Path(tmp) / "encoder.onnx", opset=ONNX_TF_OPSET)
    rewritten = onnx.ModelProto.FromString(original.SerializeToString())
    counts = tflite_friendly(rewritten)
    assert counts["gelu_reordered"] == 3 and counts["bool_expand_via_int32"] >= 1  # 2 layers + the Dense GELU
    ids = np.array([[101, 7592, 2088, 102], [101, 7592, 102, 0]], np.int64)
    feeds = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64), "token_type_ids": np.zeros_like(ids)}
    run = lambda model: ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]  # noqa: E731
    assert np.abs(run(original) - run(rewritten)).max() < 1e-6  # the same function
    assert {"custom:Erf", "custom:Mul"} <= _converted_ops(original)  # no kernel: the file would not run
    after = _converted_ops(rewritten)
    assert "GELU" in after and not any(op.startswith("custom:") for op in after)


def test_mpnet_rewrites_are_needed_and_exact(tiny_model):
    """MPNet's relative-position buckets take an int64 Abs (no TFLite kernel); its pad positions are
    zeroed after the embeddings (fp16 NaN, see exporter/graphs/onnx_for_tflite.py): same embeddings."""
    import onnx
    import onnxruntime as ort

    from exporter.graphs.encoder import export_encoder
    from exporter.graphs.onnx_tf_compat import ONNX_TF_OPSET
    from exporter.model import read_model

    spec = read_model(tiny_model("mpnet_v6", arch="mpnet", tokenizer_json_limits=128))
    with tempfile.TemporaryDirectory() as tmp:
        original = export_encoder(spec, Path(tmp) / "encoder.onnx", opset=ONNX_TF_OPSET)
    rewritten = onnx.ModelProto.FromString(original.SerializeToString())
    counts = [rewrite(rewritten) for rewrite in spec.transformer.architecture.tf_rewrites()]
    assert counts[-2:] == [1, 1]  # one Abs, one embedding LayerNorm output
    ids = np.array([[0, 7596, 2088, 1041, 2], [0, 7596, 2, 1, 1]], np.int64)
    feeds = {"input_ids": ids, "attention_mask": (ids != 1).astype(np.int64), "token_type_ids": np.zeros_like(ids)}
    run = lambda model: ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]  # noqa: E731
    assert np.abs(run(original) - run(rewritten)).max() < 1e-6
    assert "custom:Abs" in _converted_ops(original)
    assert not any(op.startswith("custom:") for op in _converted_ops(rewritten))


def test_manifest_says_what_an_app_needs(bundled_export):
    manifest = json.loads((bundled_export.out / "manifest.json").read_text())
    tflite = manifest["targets"]["tflite"]
    assert "tensorflow-text" in tflite["app_needs"] and "Flex" in tflite["app_needs"]
    assert tflite["converted_from"].startswith("savedmodel/")
    assert manifest["libraries"]["ai-edge-litert"]


def test_tensorflows_interpreter_is_refused_without_litert(bundled_export, monkeypatch):
    """TensorFlow's tf.lite interpreter dies with SIGFPE on the XLM-R file given [""]: never a silent fallback."""
    import sys

    from exporter.runtime.tflite import LiteRTMissingError

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails as if not installed
    with pytest.raises(LiteRTMissingError, match=r"pip install ai-edge-litert.*tf\.lite InterpreterWithCustomOps"):
        TFLiteRunner(bundled_export.out / "tflite/model.tflite")


@pytest.mark.parametrize("module, target", [("tensorflow_text", "tflite"), ("tensorflow", "savedmodel")])
def test_a_runtime_package_missing_is_named_with_its_pip_install(bundled_export, monkeypatch, module, target):
    """Before: a raw ModuleNotFoundError from inside the runner when tensorflow-text (or TF) is not installed."""
    import sys

    import exporter
    from exporter.errors import MissingPackageError

    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(MissingPackageError, match=rf"the {target} target's runner needs .*pip install"):
        exporter.load(bundled_export.out, target)


#: the texts whose graphs are smallest: no word at all, only a space, one character; each alone and together
EDGE_TEXTS = ["", " ", "a"]
#: every export with tflite files the suite builds with its variants: BERT (the bundled MiniLM), MPNet, XLM-R
TFLITE_EXPORTS = ("bundled_export", "mpnet_export", "xlmr_export")


@pytest.mark.parametrize("fixture", TFLITE_EXPORTS)
def test_empty_space_and_one_char_texts_match_the_reference_in_litert(fixture, request):
    result = request.getfixturevalue(fixture)
    reference = ReferenceRunner(result.manifest["source"]["path"])
    expected = reference.encode(EDGE_TEXTS)
    for row in (artifact("tflite"), *variants_of("tflite")):
        runner = row.open(result.out)
        assert runner.runtime == f"ai-edge-litert {version('ai-edge-litert')} InterpreterWithCustomOps"
        bar = VARIANT_BARS[row.variant] if row.variant else FP32_BAR
        report = compare_embeddings(reference, runner, EDGE_TEXTS, batch_sizes=(None, 1), thresholds=bar,
                                    reference_embeddings=expected)
        assert report.passed, (row.target, report.failures)


def test_docs_name_the_interpreter_proven_with_its_version():
    serving = (Path(__file__).parents[1] / "docs" / "serving.md").read_text(encoding="utf-8")
    assert f"ai-edge-litert {version('ai-edge-litert')}" in serving
