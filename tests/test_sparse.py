"""SPLADE SparseEncoders (issue 25 item 1): read as the sparse kind, exported to onnx, savedmodel and tflite, loaded
as ExportedSparseEncoder and compared with SparseEncoder.encode / decode.

Tiny random masked LMs with two of the real vocabularies (the bundled MiniLM WordPiece; the trained byte-level BPE),
saved with ``SparseEncoder.save``: WordPiece as ``MLMTransformer`` + max pooling, with the dense output, to every
target; BPE as ``Transformer`` (fill-mask) + sum pooling with ``max_active_dims`` to onnx (its savedmodel is the same
onnx-tf path; tflite has no BPE tokenizer kernel). Each is exported once.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import exporter
from exporter.errors import InvalidInputError, InvalidOptionError, UnsupportedModelError
from exporter.model import read_model
from exporter.verify.corpus import parity_texts

#: family → (architecture, how the transformer module is saved, pooling, max_active_dims, targets, options)
FAMILIES = {"wordpiece": ("bert", True, "max", None, "onnx,tflite,triton,tfserving", {"sparse_dense": True}),
            "bpe": ("roberta", False, "sum", 8, "onnx", {})}
TOLERANCE = 1e-5
TEXTS = parity_texts()[:24]


@pytest.fixture(scope="session")
def sparse_model(tmp_path_factory):
    """Return build(family) → a tiny SparseEncoder folder, each built once."""
    from model_factory import build_sparse_encoder

    built = {}

    def build(family: str):
        if family not in built:
            arch, legacy, pooling, max_active, _, _ = FAMILIES[family]
            built[family] = build_sparse_encoder(tmp_path_factory.mktemp("sparse") / family, arch=arch,
                                                 legacy_module=legacy, pooling_strategy=pooling,
                                                 max_active_dims=max_active)
        return built[family]

    return build


@pytest.fixture(scope="session")
def sparse_exports(sparse_model, tmp_path_factory):
    done = {}

    def export(family: str):
        if family not in done:
            *_, targets, options = FAMILIES[family]
            model = sparse_model(family)
            # variants asked for, as a plain st-export asks: the kind writes none (onnx, tflite) and says why
            done[family] = model, exporter.export(model, tmp_path_factory.mktemp(family) / "export", targets=targets,
                                                  options=options)
        return done[family]

    return export


@pytest.fixture(scope="session", params=list(FAMILIES))
def sparse_export(request, sparse_exports):
    return (request.param, *sparse_exports(request.param))


@pytest.fixture(scope="session")
def sparse_encoder():
    from sentence_transformers import SparseEncoder

    cache = {}

    def get(model):
        if model not in cache:
            cache[model] = SparseEncoder(str(model), device="cpu")
        return cache[model]

    return get


def test_every_target_has_the_active_dims_and_values_of_sparse_encoder(sparse_export):
    family, _, result = sparse_export
    assert result.passed
    for row in result.rows:
        sparse = row.parity["sparse"]
        assert sparse["set_mismatches"] == 0 and sparse["active_dims"] > 0, (family, row.target, sparse)
        if row.target in ("onnx", "savedmodel", "tflite"):  # the serving layouts hold these files' tokenizers
            assert row.parity["tokens"]["mismatches"] == 0
        if row.target in ("onnx", "savedmodel"):
            assert sparse["max_abs_diff"] <= TOLERANCE


def test_manifest_describes_the_sparse_outputs(sparse_export):
    family, model, result = sparse_export
    manifest = result.manifest
    max_active = FAMILIES[family][3]
    assert manifest["kind"] == "sparse"
    assert manifest["sparse"]["top_k"] == (max_active or 0)
    assert manifest["sparse"]["pad"] == {"index": -1, "value": 0}
    assert manifest["output"]["indices"]["type"] == "int64"


def test_load_encode_returns_what_sparse_encoder_encode_returns(sparse_export, sparse_encoder):
    _, model, result = sparse_export
    reference = sparse_encoder(model)
    loaded = exporter.load(result.out)
    expected = reference.encode(TEXTS)
    for encode in (loaded.encode, loaded.encode_query, loaded.encode_document):
        got = encode(TEXTS, batch_size=5)
        assert got.is_sparse and got.shape == expected.shape
        assert torch.equal(got.to_dense() > 0, expected.to_dense() > 0)
        assert torch.allclose(got.to_dense(), expected.to_dense(), atol=TOLERANCE, rtol=0)
    one = loaded.encode(TEXTS[0])
    assert one.shape == expected[0].shape
    assert torch.allclose(one.to_dense(), expected[0].to_dense(), atol=TOLERANCE, rtol=0)


def test_max_active_dims_keeps_the_largest_dimensions(sparse_export, sparse_encoder):
    _, model, result = sparse_export
    loaded = exporter.load(result.out)
    got = loaded.encode(TEXTS, max_active_dims=3).to_dense()
    expected = sparse_encoder(model).encode(TEXTS, max_active_dims=3).to_dense()
    assert torch.allclose(got, expected, atol=TOLERANCE, rtol=0)
    indices, values = loaded.encode_sparse(TEXTS)
    max_active = FAMILIES[sparse_export[0]][3]
    if max_active:
        assert indices.shape[1] == max_active
    assert np.all(np.diff(values, axis=1) <= 0)  # descending, pads (value 0) last


def test_decode_gives_the_tokens_and_weights_of_sparse_encoder_decode(sparse_export, sparse_encoder):
    _, model, result = sparse_export
    reference = sparse_encoder(model)
    loaded = exporter.load(result.out)
    for top_k in (None, 4):
        expected = reference.decode(reference.encode(TEXTS[:6]), top_k=top_k)
        got = loaded.decode(loaded.encode(TEXTS[:6]), top_k=top_k)
        assert [[token for token, _ in row] for row in got] == [[token for token, _ in row] for row in expected]
        assert np.allclose([w for row in got for _, w in row], [w for row in expected for _, w in row],
                           atol=TOLERANCE)
    arrays = loaded.encode_sparse(TEXTS[:2])  # the (indices, values) arrays are taken too
    assert loaded.decode(arrays) == loaded.decode(loaded.encode(TEXTS[:2]))


def test_every_runtime_returns_the_dense_vectors_when_asked(sparse_exports, sparse_encoder):
    model, result = sparse_exports("wordpiece")
    reference_dense = sparse_encoder(model).encode(TEXTS, convert_to_sparse_tensor=False).numpy()
    from exporter.runtime.artifacts import open_runner

    for target in ("onnx", "savedmodel", "tflite"):
        dense = open_runner(result.out, target)._sparse_outputs(TEXTS)["dense"]
        assert dense.shape == reference_dense.shape
        assert np.max(np.abs(dense - reference_dense)) <= (TOLERANCE if target != "tflite" else 1e-4), target


def test_empty_batch_gives_no_rows(sparse_exports):
    _, result = sparse_exports("wordpiece")
    indices, values = exporter.load(result.out).encode_sparse([])
    assert indices.shape[0] == 0 and values.shape[0] == 0


def test_predict_on_a_sparse_export_is_refused_by_name(sparse_exports):
    _, result = sparse_exports("wordpiece")
    with pytest.raises(InvalidInputError, match="sparse encoder"):
        exporter.load(result.out).predict([["a", "b"]])


def _with_module(model, tmp_path, index: int, type_name: str):
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    rows = json.loads((copy / "modules.json").read_text())
    rows[index]["type"] = type_name
    (copy / "modules.json").write_text(json.dumps(rows))
    return copy


@pytest.mark.parametrize("index,type_name,says", [
    (0, "sentence_transformers.base.modules.router.Router", "inference-free SPLADE"),
    (1, "sentence_transformers.sparse_encoder.modules.sparse_auto_encoder.SparseAutoEncoder", "SparseAutoEncoder"),
])
def test_router_and_sparse_auto_encoder_models_are_refused_by_name(sparse_model, tmp_path, index, type_name, says):
    with pytest.raises(UnsupportedModelError, match=says):
        read_model(_with_module(sparse_model("wordpiece"), tmp_path, index, type_name))


def test_triton_config_declares_int64_indices_of_any_k(sparse_exports):
    from exporter.runtime.triton import model_config_schema, read_model_config

    _, result = sparse_exports("wordpiece")
    schema = model_config_schema()
    for folder in sorted((result.out / "triton").iterdir()):
        outputs = {row.name: (row.data_type, list(row.dims)) for row in read_model_config(folder / "config.pbtxt").output}
        vocab = result.manifest["head"]["vocab_size"]
        assert outputs == {"indices": (schema.TYPE_INT64, [-1]), "values": (schema.TYPE_FP32, [-1]),
                           "dense": (schema.TYPE_FP32, [vocab])}, folder.name


def test_serving_layouts_give_the_top_k_of_the_graph_they_serve(sparse_exports):
    from exporter.runtime.artifacts import open_runner

    _, result = sparse_exports("wordpiece")
    for target, source in (("triton", "onnx"), ("tfserving", "savedmodel")):  # triton:tf: checked in the export
        expected = open_runner(result.out, source).encode_sparse(TEXTS, batch_size=len(TEXTS))
        got = open_runner(result.out, target).encode_sparse(TEXTS, batch_size=len(TEXTS))
        assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]), target
    assert open_runner(result.out, "tfserving").encode_sparse([])[0].shape[0] == 0


def test_sparse_options_are_refused_for_an_embedding_model(tiny_model, tmp_path):
    with pytest.raises(InvalidOptionError, match="--sparse-top-k"):
        exporter.export(tiny_model("bert_uncased_mean_norm"), tmp_path / "out", targets="onnx",
                        options={"sparse_top_k": 5})


def test_bad_sparse_top_k_is_refused(sparse_model, tmp_path):
    with pytest.raises(InvalidOptionError, match="whole number"):
        exporter.export(sparse_model("wordpiece"), tmp_path / "out", targets="onnx", options={"sparse_top_k": -2})


def test_without_torch_encode_returns_scipy_csr_and_decode_reads_it(sparse_exports, sparse_encoder, monkeypatch):
    from scipy.sparse import csr_array

    import exporter.runtime.loaded as loaded_module

    model, result = sparse_exports("bpe")
    monkeypatch.setattr(loaded_module, "_has_torch", lambda: False)
    loaded = exporter.load(result.out)
    got = loaded.encode(TEXTS)
    reference = sparse_encoder(model)
    expected = reference.encode(TEXTS)
    assert isinstance(got, csr_array)
    assert np.allclose(got.toarray(), expected.to_dense().numpy(), atol=TOLERANCE, rtol=0)
    assert [[t for t, _ in row] for row in loaded.decode(got, top_k=3)] == \
        [[t for t, _ in row] for row in reference.decode(expected, top_k=3)]


def test_check_reruns_the_sparse_parity_and_the_manifest_promises(sparse_exports):
    _, result = sparse_exports("bpe")
    checked = exporter.check(result.out)
    assert checked.passed, [row.parity for row in checked.rows]
    (row,) = checked.rows
    assert row.parity["settings"]["passed"] and row.parity["sparse"]["set_mismatches"] == 0


def test_cli_sparse_flags_set_k_and_the_dense_output(sparse_model, tmp_path):
    from exporter.cli import main

    out = tmp_path / "out"
    assert main([str(sparse_model("bpe")), "-o", str(out), "--targets", "onnx", "--no-variants", "-q",
                 "--sparse-top-k", "3", "--sparse-dense"]) == 0  # parity checked: the reference's top 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sparse"]["top_k"] == 3 and manifest["sparse"]["dense"] is True
    indices, values = exporter.load(out).encode_sparse(TEXTS)
    assert indices.shape == (len(TEXTS), 3)


def test_a_default_export_writes_no_unproven_quantized_file_and_says_why(sparse_exports):
    """TFLite's fp16/int8 files move the active dimensions: a plain export (variants on) writes model.tflite alone
    and records why, instead of failing parity on the int8 file and writing nothing."""
    _, result = sparse_exports("wordpiece")
    tflite = result.manifest["targets"]["tflite"]
    assert sorted(f.rsplit("/", 1)[-1] for f in tflite["files"]) == ["model.tflite"]
    assert "active dimensions" in tflite["no_variants"] and result.passed


def test_a_sparse_encoder_with_a_query_prompt_is_refused_by_name(sparse_model, tmp_path):
    """SparseEncoder.encode_query prepends a "query" prompt; an export holding none would answer otherwise."""
    model = tmp_path / "model"
    shutil.copytree(sparse_model("wordpiece"), model)
    config = json.loads((model / "config_sentence_transformers.json").read_text())
    config["prompts"] = {"query": "query: ", "document": ""}
    (model / "config_sentence_transformers.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match=r"prompts \['query'\]: a SparseEncoder's prompts are not "
                                                    r"exported yet"):
        read_model(model)
