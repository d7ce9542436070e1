"""The onnx target's variants (model_optimized.onnx, model_int8.onnx, model_int8w.onnx): files, manifest, bars."""
from __future__ import annotations

import json

import onnx

import exporter
from targets.onnx_variants import FILES, THRESHOLDS


def _variants(result) -> dict:
    return result.manifest["targets"]["onnx"]["parity"]["variants"]


def test_bundled_variants_meet_their_bars(bundled_export):
    parity = _variants(bundled_export)
    assert set(parity) == {"optimized", "int8", "int8w"}
    optimized, int8 = parity["optimized"], parity["int8"]
    assert optimized["passed"] and optimized["min_cosine"] >= 0.99999 and optimized["max_abs_diff"] <= 1e-5
    assert int8["passed"] and int8["min_cosine"] >= 0.99 and int8["retention"] >= 0.99
    int8w = parity["int8w"]
    assert int8w["passed"] and int8w["min_cosine"] >= 0.99 and int8w["retention"] >= 0.99


def test_bundled_variants_are_fused_and_recorded(bundled_export):
    entries = bundled_export.manifest["targets"]["onnx"]["variants"]
    for name, file in FILES.items():
        assert (bundled_export.out / "onnx" / file).is_file()
        assert entries[name]["file"] == f"onnx/{file}" and entries[name]["sha256"]
        assert "com.microsoft" in entries[name]["needs"] and "ONNX Runtime" in entries[name]["needs"]
    ops = {n.op_type for n in onnx.load(str(bundled_export.out / "onnx" / FILES["optimized"])).graph.node}
    assert {"Attention", "SkipLayerNormalization", "EmbedLayerNormalization", "BiasGelu"} <= ops
    assert entries["int8"]["quantized_matmuls"] > 0 and "recipe" in entries["int8"]
    int8w = {n.op_type for n in onnx.load(str(bundled_export.out / "onnx" / FILES["int8w"])).graph.node}
    assert {"MatMulNBits", "Attention", "SkipLayerNormalization", "BiasGelu"} <= int8w and "MatMul" not in int8w
    assert entries["int8w"]["quantized_matmuls"] > 0 and all(entries[name]["use"] for name in ("int8", "int8w"))


def test_bundled_variants_checked_at_every_batch_size(bundled_export):
    for name, parity in _variants(bundled_export).items():
        assert parity["batch_sizes"] == ["all", "1", "7"], name
        assert parity["thresholds"]["min_cosine"] == THRESHOLDS[name].min_cosine


def test_tiny_model_variants(tiny_model, tmp_path):
    """A DistilBERT (no token_type_ids, its own attention module); tiny BERT variants run in test_benchmarks."""
    model = tiny_model("distilbert_cased", arch="distilbert", vocab="cased", pooling=("mean",))
    result = exporter.export(model, tmp_path / "out", targets="onnx")
    parity = _variants(result)
    assert parity["optimized"]["passed"] and parity["optimized"]["max_abs_diff"] <= 1e-5
    assert parity["int8"]["passed"] and parity["int8"]["min_cosine"] >= 0.99
    assert parity["int8w"]["passed"] and parity["int8w"]["min_cosine"] >= 0.99
    fused = result.manifest["targets"]["onnx"]["variants"]["optimized"]["fused"]
    assert "Attention" in fused and "SkipLayerNormalization" in fused, fused


def test_no_variants_writes_none(tiny_model, tmp_path):
    result = exporter.export(tiny_model("bert_uncased_mean_norm"), tmp_path / "out", targets="onnx", check=False,
                             variants=False)
    assert not any((result.out / "onnx" / f).exists() for f in FILES.values())
    manifest = json.loads((result.out / "manifest.json").read_text())
    assert "variants" not in manifest["targets"]["onnx"]


def test_past_the_protobuf_limit_only_the_weight_only_variant_is_built_from_encoder_onnx(tiny_model, tmp_path,
                                                                                        monkeypatch):
    """A model whose weights pass 2 GiB (here: a limit of 1 byte) gets model_int8w.onnx, quantized from encoder.onnx
    one weight at a time, checked against the reference; the other variants are skipped with the reason."""
    import targets.onnx

    monkeypatch.setattr(targets.onnx, "PROTOBUF_LIMIT", 1)
    result = exporter.export(tiny_model("bert_uncased_mean_norm"), tmp_path / "out", targets="onnx")
    onnx_entry = result.manifest["targets"]["onnx"]
    assert set(onnx_entry["variants"]) == {"int8w"} and "int8w (weight-only" in onnx_entry["variants_skipped"]
    assert not (result.out / "onnx" / FILES["int8"]).exists() and not (result.out / "onnx" / FILES["optimized"]).exists()
    parity = _variants(result)
    assert set(parity) == {"int8w"} and parity["int8w"]["passed"] and parity["int8w"]["min_cosine"] >= 0.99
    ops = {n.op_type for n in onnx.load(str(result.out / "onnx" / FILES["int8w"])).graph.node}
    assert "MatMulNBits" in ops
