"""``truncate_dim`` (Matryoshka, issue 25): ``st-export --truncate-dim N`` exports what
``SentenceTransformer(model, truncate_dim=N).encode`` returns, in every target, and ``load(OUT).encode(truncate_dim=M)``
slices further as sentence-transformers does (slice after the last module, a Normalize module included; normalize
again only for ``normalize_embeddings=True``).

Two tiny models, each exported once: with a Normalize module to onnx, savedmodel and tflite (the truncated vector
is then not unit-norm, as in sentence-transformers), and Dense without Normalize to onnx. The serving layouts copy
those files; their configs are read for the truncated size.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import exporter
from exporter.cli import main
from exporter.errors import InvalidInputError, InvalidModelError, InvalidOptionError, OutputExistsError
from exporter.model import read_model
from targets.savedmodel import signature_io

#: the models, their export's targets and truncate_dim (HIDDEN 32 in tests/model_factory.py; the Dense gives 20)
MODELS = {"normalize": (dict(), "onnx,savedmodel,tflite", 12),
          "no_normalize": (dict(dense=((20, "Tanh", True),), normalize=False), "onnx", 7)}
#: the target → max |Δ| against SentenceTransformer held here (tflite: XNNPACK's kernels, as targets/tflite.py's bar)
TOLERANCE = {"onnx": 1e-5, "savedmodel": 1e-5, "tflite": 1e-4}
TEXTS = ["A man is eating food.", "Matryoshka embeddings keep their first dimensions.", "", "x " * 60]


@pytest.fixture(scope="module")
def truncated(tiny_model, tmp_path_factory):
    """Return get(name) → (model folder, N, ExportResult): the model exported once with ``truncate_dim=N``."""
    from conftest import once_per_run

    done = {}

    def get(name: str):
        if name not in done:
            options, targets, dim = MODELS[name]
            model = tiny_model(f"truncate_{name}", **options)
            done[name] = model, dim, once_per_run(
                tmp_path_factory, f"truncate-{name}",
                lambda folder: exporter.export(model, folder / "export", targets=targets, variants=False,
                                               truncate_dim=dim))
        return done[name]

    return get


@pytest.fixture(scope="module")
def loaded(truncated):
    """Return get(name, target) → exporter.load of the model's export, each opened once."""
    cache = {}

    def get(name: str, target: str):
        if (name, target) not in cache:
            cache[name, target] = exporter.load(truncated(name)[2].out, target)
        return cache[name, target]

    return get


@pytest.fixture(scope="module")
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    cache = {}

    def get(model, truncate_dim=None):
        if (model, truncate_dim) not in cache:
            cache[model, truncate_dim] = SentenceTransformer(str(model), device="cpu", local_files_only=True,
                                                             truncate_dim=truncate_dim)
        return cache[model, truncate_dim]

    return get


@pytest.mark.parametrize("name", list(MODELS))
def test_every_target_is_checked_against_sentence_transformer_truncated(truncated, name):
    model, dim, result = truncated(name)
    assert result.passed and result.manifest["truncate_dim"] == dim
    assert result.manifest["output"]["shape"] == ["batch", dim]
    assert result.manifest["source"]["embedding_dim"] == read_model(model).embedding_dim > dim
    for row in result.rows:
        assert row.parity["embeddings"]["passed"] and row.parity["embeddings"]["texts"] > 80, row.target


def test_serving_layouts_declare_the_truncated_size(tiny_model):
    from targets.tfserving import rest_examples
    from targets.triton import _served_io, http_example

    spec = read_model(tiny_model("truncate_normalize", **MODELS["normalize"][0])).truncated(5)
    assert signature_io(spec) == (["text"], {"sentence_embedding": 5})  # savedmodel's and tflite's signature
    assert _served_io(spec, batching=True)["outputs"] == {"sentence_embedding": [5]}  # Triton's config.pbtxt dims
    assert http_example("m", spec)["response"]["outputs"][0]["shape"] == [2, 5]
    assert "one list of 5 floats per text" in rest_examples("m", spec)["row"]["response"]["predictions"]


@pytest.mark.parametrize("target, name", [("onnx", "normalize"), ("savedmodel", "normalize"), ("tflite", "normalize"),
                                          ("onnx", "no_normalize")])
@pytest.mark.parametrize("normalize_embeddings", [False, True])
def test_load_encodes_as_sentence_transformer_with_truncate_dim(truncated, loaded, sentence_transformer, target, name,
                                                                normalize_embeddings):
    model, dim, result = truncated(name)
    reference = sentence_transformer(model, dim)
    loaded = loaded(name, target)
    got = loaded.encode(TEXTS, normalize_embeddings=normalize_embeddings)
    expected = reference.encode(TEXTS, normalize_embeddings=normalize_embeddings)
    assert got.shape == expected.shape == (len(TEXTS), dim)
    assert np.abs(got - expected).max() <= TOLERANCE[target]
    assert loaded.get_sentence_embedding_dimension() == reference.get_embedding_dimension() == dim
    assert loaded.truncate_dim == dim
    norms = np.linalg.norm(got, axis=1)
    if normalize_embeddings:
        assert np.allclose(norms, 1, atol=1e-5)
    elif name == "normalize":  # sliced after the Normalize module: shorter than 1, as sentence-transformers returns
        assert norms.max() < 0.999


@pytest.mark.parametrize("target", ["onnx", "savedmodel"])
@pytest.mark.parametrize("normalize_embeddings", [False, True])
def test_encode_truncate_dim_slices_the_export_further_as_sentence_transformer(truncated, loaded, sentence_transformer,
                                                                              target, normalize_embeddings):
    model, dim, result = truncated("normalize")
    loaded = loaded("normalize", target)
    for smaller in (1, 5, dim):
        got = loaded.encode(TEXTS, truncate_dim=smaller, normalize_embeddings=normalize_embeddings)
        expected = sentence_transformer(model).encode(TEXTS, truncate_dim=smaller,
                                                      normalize_embeddings=normalize_embeddings)
        assert got.shape == (len(TEXTS), smaller)
        assert np.abs(got - expected).max() <= TOLERANCE[target]
    one = loaded.encode(TEXTS[0], truncate_dim=3)
    assert one.shape == (3,)


def test_encode_refuses_a_truncate_dim_the_export_does_not_hold(truncated, loaded):
    model, dim, result = truncated("normalize")
    loaded = loaded("normalize", "onnx")
    full = read_model(model).embedding_dim
    with pytest.raises(InvalidInputError, match=rf"{dim + 1} is more than the {dim} dimensions.*truncated at export "
                                                rf"from {full}"):
        loaded.encode(TEXTS, truncate_dim=dim + 1)
    for bad in (0, -1, 2.5, "4", True):
        with pytest.raises(InvalidInputError, match="give a whole number of dimensions from 1 to"):
            loaded.encode(TEXTS, truncate_dim=bad)


@pytest.mark.parametrize("value", ["0", "-3", "abc", "2.5"])
def test_cli_refuses_a_bad_truncate_dim_before_reading_the_model(capsys, tmp_path, value):
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "no-model"), "-o", str(tmp_path / "out"), "--truncate-dim", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "argument --truncate-dim" in err
    assert "give a whole number of dimensions from 1" in err and not (tmp_path / "out").exists()


def test_cli_and_api_refuse_a_truncate_dim_over_the_models_dimension(capsys, tiny_model, tmp_path):
    model = tiny_model("truncate_normalize", **MODELS["normalize"][0])
    full = read_model(model).embedding_dim
    assert main([str(model), "-o", str(tmp_path / "out"), "--targets", "onnx", "--truncate-dim", str(full + 1),
                 "-q"]) == 2
    err = capsys.readouterr().err
    assert f"--truncate-dim (truncate_dim=) {full + 1} is more than the {full} dimensions" in err
    assert "[invalid-option]" in err and "Traceback" not in err and not (tmp_path / "out").exists()
    for bad in (0, "8", True):
        with pytest.raises(InvalidOptionError, match="give a whole number of dimensions from 1 to 32"):
            exporter.export(model, tmp_path / "out", targets="onnx", truncate_dim=bad)
    assert not (tmp_path / "out").exists()


def test_a_crossencoder_refuses_truncate_dim(tmp_path):
    from model_factory import build_cross_encoder

    model = build_cross_encoder(tmp_path / "cross")
    with pytest.raises(InvalidOptionError, match="is a reranker model, whose outputs are not truncated"):
        exporter.export(model, tmp_path / "out", targets="onnx", truncate_dim=1)


def test_add_refuses_an_export_of_another_truncate_dim(truncated):
    model, dim, result = truncated("no_normalize")
    with pytest.raises(OutputExistsError, match=rf"truncate_dim: {dim} in the export, None now"):
        exporter.export(model, result.out, targets="onnx", add=True)


def test_check_proves_the_export_against_sentence_transformer_truncated(truncated):
    _, dim, result = truncated("no_normalize")
    checked = exporter.check(result.out)
    assert checked.passed and checked.rows[0].parity["embeddings"]["passed"]
    assert checked.rows[0].parity["settings"]["passed"]  # output.shape [batch, N] is what the model, truncated, has


def test_a_truncate_dim_stored_in_the_model_folder_is_exported(copy_of, sentence_transformer, tmp_path):
    model = copy_of("truncate_no_normalize", **MODELS["no_normalize"][0])
    config_file = model / "config_sentence_transformers.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "truncate_dim": 9}))
    result = exporter.export(model, tmp_path / "out", targets="onnx", variants=False)
    assert result.passed and result.manifest["truncate_dim"] == 9
    got = exporter.load(result.out).encode(TEXTS)
    expected = sentence_transformer(model).encode(TEXTS)  # SentenceTransformer(path) reads the config's truncate_dim
    assert got.shape == expected.shape == (len(TEXTS), 9) and np.abs(got - expected).max() <= 1e-5
    # --truncate-dim replaces it, up to the model's own dimension, as SentenceTransformer(path, truncate_dim=) does
    assert read_model(model).truncated(20).embedding_dim == 20
    config_file.write_text(json.dumps({**config, "truncate_dim": 0}))
    with pytest.raises(InvalidModelError, match="truncate_dim 0: give a whole number of dimensions from 1"):
        read_model(model)
    shutil.rmtree(tmp_path / "out")
