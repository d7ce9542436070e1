"""Static embeddings (issue 25): a SentenceTransformer whose first module is ``StaticEmbedding`` (model2vec), read as
the static kind and exported string-in to every target (onnx, savedmodel, tflite, the Triton and TF Serving
layouts), each held to ``SentenceTransformer.encode``.

The tiny model is a random table on the bundled MiniLM's WordPiece vocabulary whose tokenizer.json keeps 24 pieces
(StaticEmbedding leaves a file's truncation on: model2vec writes 512), exported once. The BPE family is exported
to onnx alone (its tflite is refused by name, as for any BPE model). The model2vec-distilled MiniLM (about 20 s to distil on a quiet machine, minutes on a busy one) is
measured by ``benchmarks/static.py`` instead.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import exporter
import targets
from exporter.errors import UnsupportedModelError
from exporter.model import read_model
from exporter.verify.reference import StaticReferenceRunner
from model_factory import build_static_model

from conftest import once_per_run

TARGETS = ("onnx", "savedmodel", "tflite")
#: the serving layouts, beside the files ``exporter.load`` opens
LAYOUTS = ("triton", "tfserving")
TOLERANCE = {"onnx": 1e-5, "savedmodel": 1e-5, "tflite": 1e-4, "triton": 1e-5, "tfserving": 1e-5}
MAX_LENGTH = 24
#: beside the parity corpus: no pieces, only unknown pieces, an added token typed in, pieces past the truncation
EDGE_TEXTS = ["", "   ", "[UNK] [PAD]", "\u2603\u2604", "hello world " * 40, "[CLS] x [SEP]"]


@pytest.fixture(scope="session")
def static_export(tmp_path_factory):
    """Return (the tiny static model's folder, its export to every target, no variants)."""
    def build(folder):
        model = build_static_model(folder / "model", max_length=MAX_LENGTH)
        exporter.export(model, folder / "export", targets=[*TARGETS, *LAYOUTS], variants=False)
        return model, folder / "export"
    return once_per_run(tmp_path_factory, "static_wordpiece", build)


@pytest.fixture(scope="session")
def static_reference(static_export):
    return StaticReferenceRunner(static_export[0])


def test_a_static_embedding_folder_is_read_as_the_static_kind_without_special_tokens(static_export):
    spec = read_model(static_export[0])
    assert spec.kind == "static"
    assert (spec.tokenizer.framing.prefix, spec.tokenizer.framing.suffix) == ((), ())
    assert spec.tokenizer.framing.max_seq_length == MAX_LENGTH


@pytest.mark.parametrize("target", [*TARGETS, *LAYOUTS])
def test_export_parity_has_no_token_mismatch_and_embeddings_within_the_bar(static_export, target):
    manifest = json.loads((static_export[1] / "manifest.json").read_text())
    assert manifest["kind"] == "static"
    parity = manifest["targets"][target]["parity"]
    assert parity.get("tokens", {}).get("mismatches", 0) == 0, parity["tokens"]["first_mismatches"]
    assert parity["embeddings"]["passed"], parity["embeddings"]["failures"]
    assert parity["embeddings"]["max_abs_diff"] <= TOLERANCE[target]


@pytest.mark.parametrize("target", TARGETS)
def test_load_encode_equals_sentence_transformer_encode_on_edge_texts(static_export, static_reference, target):
    model = exporter.load(static_export[1], target)
    want = static_reference.encode(EDGE_TEXTS)
    got = model.encode(EDGE_TEXTS)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= TOLERANCE[target]
    assert not np.any(want[:2]) and not np.any(got[:2])  # no pieces: the zero vector, as EmbeddingBag's empty bag


@pytest.mark.parametrize("target", TARGETS)
def test_tokens_are_the_pieces_alone_cut_where_the_tokenizer_json_cuts(static_export, static_reference, target):
    tokens = targets.get(target).runners(static_export[1])["tokenizer"].tokenize(EDGE_TEXTS)
    want = static_reference.tokenize(EDGE_TEXTS)
    backend = static_reference.model[0].tokenizer
    typed_specials = want["input_ids"][5][want["attention_mask"][5] == 1].tolist()  # matched, not added
    assert typed_specials == backend.encode("[CLS] x [SEP]", add_special_tokens=False).ids
    assert want["attention_mask"].sum(axis=1)[4] == MAX_LENGTH  # "hello world " * 40: 80 pieces, 24 kept
    for name in ("input_ids", "attention_mask"):
        np.testing.assert_array_equal(tokens[name], want[name])


@pytest.mark.parametrize("target", TARGETS)
def test_an_empty_batch_and_a_batch_of_empty_texts_embed_as_sentence_transformer(static_export, static_reference,
                                                                                  target):
    runner = targets.get(target).runners(static_export[1])["model"]
    assert runner.encode([]).shape == (0, 16)
    np.testing.assert_array_equal(runner.encode(["", ""]), static_reference.encode(["", ""]))


def test_a_bpe_static_embedding_matches_on_onnx_and_its_tflite_is_refused_by_name(tmp_path):
    model = build_static_model(tmp_path / "model", vocab="roberta", max_length=None)
    result = exporter.export(model, tmp_path / "export", targets=["onnx"], variants=False)
    parity = result.manifest["targets"]["onnx"]["parity"]
    assert parity["tokens"]["mismatches"] == 0, parity["tokens"]["first_mismatches"]
    assert parity["embeddings"]["max_abs_diff"] <= TOLERANCE["onnx"]
    with pytest.raises(UnsupportedModelError, match="tflite: .*BPE"):
        exporter.export(model, tmp_path / "tflite", targets=["tflite"])
    assert not (tmp_path / "tflite").exists()


def _with_weights(model, dtype):
    from safetensors.torch import load_file, save_file

    weights = load_file(str(model / "model.safetensors"))
    save_file({name: tensor.to(dtype) for name, tensor in weights.items()}, str(model / "model.safetensors"))
    return model


def test_float16_weights_are_refused_by_name(tmp_path):
    import torch

    model = _with_weights(build_static_model(tmp_path / "model"), torch.float16)
    with pytest.raises(UnsupportedModelError, match=r"embedding.weight is float16.*SentenceTransformer\(path\)"
                                                    r"\.float\(\)\.save"):
        read_model(model)


def test_a_module_after_the_static_embedding_other_than_normalize_is_refused_by_name(tmp_path):
    model = build_static_model(tmp_path / "model")
    modules = json.loads((model / "modules.json").read_text())
    modules[1]["type"] = "sentence_transformers.models.Dense"
    (model / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedModelError, match="StaticEmbedding → Dense; supported for a static embedding: "
                                                    "StaticEmbedding, optionally followed by Normalize"):
        read_model(model)


def test_check_reruns_parity_against_sentence_transformer(static_export):
    result = exporter.check(static_export[1])
    assert result.passed, [row.target for row in result.rows]


def test_stages_are_refused_by_name_for_a_static_embedding(static_export):
    from exporter.verify.debug import drift_by_stage

    with pytest.raises(UnsupportedModelError, match="--stages: a static embedding has no stages to bisect"):
        drift_by_stage(static_export[0], ["hello"])


def test_truncate_dim_of_a_static_embedding_is_sentence_transformers_on_every_target(static_export, tmp_path):
    """SentenceTransformer(path, truncate_dim=N) slices a static model's embedding after its Normalize, too."""
    from sentence_transformers import SentenceTransformer

    model = static_export[0]
    result = exporter.export(model, tmp_path / "out", targets=list(TARGETS), variants=False, truncate_dim=5)
    assert result.passed and result.manifest["output"]["shape"] == ["batch", 5]
    texts = ["hello world", "", "the quick brown fox " * 3]
    expected = SentenceTransformer(str(model), device="cpu", truncate_dim=5).encode(texts)
    for target in TARGETS:
        got = exporter.load(result.out, target).encode(texts)
        assert got.shape == (3, 5) and np.abs(got - expected).max() <= TOLERANCE[target], target


def test_a_static_embedding_with_prompts_is_refused_by_name(tmp_path):
    model = build_static_model(tmp_path / "model")
    config = json.loads((model / "config_sentence_transformers.json").read_text())
    config["prompts"] = {"query": "query: ", "document": ""}
    (model / "config_sentence_transformers.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match=r"prompts \['query'\]: a static embedding's prompts are not "
                                                    r"exported yet"):
        read_model(model)
