"""The bundled all-MiniLM-L6-v2 exported to ONNX: files, contract, and parity at the issue's bar."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from exporter.verify.corpus import SHARED_CORPUS, shared_corpus_path
from exporter.verify.parity import compare_embeddings, compare_tokens
from exporter.runtime.onnx import OnnxRunner

MIN_COSINE, MAX_ABS_DIFF = 0.99999, 1e-5


def test_export_writes_the_contracted_files(bundled_export):
    out = bundled_export.out
    for name in ("onnx/model.onnx", "onnx/tokenizer.onnx", "onnx/encoder.onnx", "manifest.json"):
        assert (out / name).is_file(), name
    assert not list(out.parent.glob(".*partial*")), "temp directory left behind"


def test_model_onnx_signature(bundled_export):
    model = onnx.load(str(bundled_export.out / "onnx/model.onnx"))
    (text,) = model.graph.input
    assert text.name == "text" and text.type.tensor_type.elem_type == onnx.TensorProto.STRING
    assert [d.dim_param for d in text.type.tensor_type.shape.dim] == ["batch"]
    (out,) = model.graph.output
    assert out.name == "sentence_embedding" and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert out.type.tensor_type.shape.dim[1].dim_value == 384
    assert {n.domain for n in model.graph.node} >= {"ai.onnx.contrib"}


def test_encoder_onnx_has_no_custom_ops(bundled_export):
    model = onnx.load(str(bundled_export.out / "onnx/encoder.onnx"))
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}
    import onnxruntime as ort

    session = ort.InferenceSession(str(bundled_export.out / "onnx/encoder.onnx"))  # no extensions library
    ids = np.array([[101, 7592, 102]], dtype=np.int64)
    (emb,) = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                                "token_type_ids": np.zeros_like(ids)})
    assert emb.shape == (1, 384)


def test_shared_corpus_is_used_when_present(corpus):
    path = shared_corpus_path()
    if path is None:
        pytest.skip(f"no shared corpus at {SHARED_CORPUS}")
    shared = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert set(shared) <= set(corpus)


def test_token_ids_equal_the_reference(bundled_export, bundled_reference, corpus):
    tokenizer = OnnxRunner(bundled_export.out / "onnx/tokenizer.onnx")
    report = compare_tokens(bundled_reference, tokenizer, corpus, alone=True)
    assert report.mismatches == [], report.mismatches[:3]
    assert bundled_export.rows[0].parity["tokens"]["mismatches"] == 0


def test_embeddings_match_the_reference(bundled_export, bundled_reference, corpus):
    model = OnnxRunner(bundled_export.out / "onnx/model.onnx")
    report = compare_embeddings(bundled_reference, model, corpus, batch_sizes=(None, 1, 7))
    assert report.min_cosine >= MIN_COSINE, report
    assert report.max_abs_diff <= MAX_ABS_DIFF, report
    assert report.passed


def test_manifest_records_source_versions_and_parity(bundled_export):
    manifest = json.loads((bundled_export.out / "manifest.json").read_text())
    assert manifest["source"]["weights_sha256"]["model.safetensors"]
    for lib in ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime", "onnxruntime-extensions"):
        assert manifest["libraries"][lib]
    onnx_target = manifest["targets"]["onnx"]
    assert onnx_target["opset"] >= 20 and onnx_target["ir_version"] <= 13 and onnx_target["min_onnxruntime"]
    assert onnx_target["parity"]["tokens"]["mismatches"] == 0
    assert onnx_target["parity"]["embeddings"]["min_cosine"] >= MIN_COSINE
    assert manifest["tokenizer"]["max_seq_length"] == 256
    assert set(onnx_target["files"]) == {"onnx/model.onnx", "onnx/tokenizer.onnx", "onnx/encoder.onnx",
                                         "onnx/model.onnx.data"}


def test_empty_batch_returns_empty_result(bundled_export):
    model = OnnxRunner(bundled_export.out / "onnx/model.onnx")
    assert model.encode([]).shape == (0, 384)
    tokens = OnnxRunner(bundled_export.out / "onnx/tokenizer.onnx").tokenize([])
    assert tokens["input_ids"].shape == (0, 0)


def test_truncation_at_the_boundary(bundled_export, bundled_reference):
    """Texts of max_seq_length-3 .. max_seq_length+1 word pieces truncate exactly like the reference."""
    tokenizer = OnnxRunner(bundled_export.out / "onnx/tokenizer.onnx")
    texts = [" ".join(["word"] * n) for n in range(250, 258)] + ["a " * 5000]
    report = compare_tokens(bundled_reference, tokenizer, texts)
    assert report.mismatches == []
    assert tokenizer.tokenize(texts)["input_ids"].shape == (len(texts), 256)


def test_encode_splits_big_inputs_into_batches(bundled_export, corpus):
    """Memory grows with batch × length² (one call of 10,000 texts asked ONNX Runtime for 31 GB): ``encode`` runs
    DEFAULT_BATCH_SIZE texts per model call unless told otherwise, with the same result as one call."""
    from exporter.errors import InvalidInputError
    from exporter.runtime.runners import DEFAULT_BATCH_SIZE

    runner = OnnxRunner(bundled_export.out / "onnx/model.onnx")
    calls, session = [], runner.session

    class Counting:
        def run(self, names, feeds):
            calls.append(len(feeds["text"]))
            return session.run(names, feeds)

    runner.session = Counting()
    texts = (corpus * 3)[:2 * DEFAULT_BATCH_SIZE + 5]
    split = runner.encode(texts)
    assert calls == [DEFAULT_BATCH_SIZE, DEFAULT_BATCH_SIZE, 5]
    whole = runner.encode(texts, batch_size=len(texts))
    assert calls[3:] == [len(texts)] and np.abs(split - whole).max() < 1e-5
    runner.encode(texts[:10], batch_size=4)
    assert calls[4:] == [4, 4, 2]
    for bad in (0, -1, 2.5, "8", True):
        with pytest.raises(InvalidInputError, match="batch_size"):
            runner.encode(texts, batch_size=bad)


def test_each_set_of_weights_is_stored_once(bundled_export, bundled_reference):
    """ONNX graphs share one external-data file, the SavedModel keeps its weights in variables/, layouts link."""
    out = bundled_export.out
    weights = sum(p.numel() * p.element_size() for p in bundled_reference.model.parameters())
    by_inode = {}
    for path in out.rglob("*"):
        if path.is_file():
            stat = path.stat()
            by_inode[(stat.st_dev, stat.st_ino)] = stat.st_size
    graphs = [*(out / "onnx").glob("*.onnx"), out / "savedmodel" / "saved_model.pb"]
    assert all(path.stat().st_size < 0.05 * weights for path in graphs), {p.name: p.stat().st_size for p in graphs}
    # fp32 once, plus the int8 weights, the fused attention's joined Q/K/V matrices and int8w's 8-bit blocks with
    # their scales (about 1.13 bytes per weight of the layers' MatMuls: 0.13 of the fp32 size; measured 1.32 in all)
    assert (out / "onnx" / "model.onnx.data").stat().st_size < 1.45 * weights
    # onnx (1.45) + triton's copy (1) + savedmodel, linked into its layouts (1) + tflite fp32, fp16, int8 (1.8)
    assert sum(by_inode.values()) < 5.45 * weights
