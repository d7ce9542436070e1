"""CrossEncoder rerankers (issue 24): read as the reranker kind, exported to onnx, scored as CrossEncoder.predict.

Tiny random CrossEncoders with the three real vocabularies of the embedding tests (the bundled MiniLM WordPiece,
multilingual-e5-small's Unigram, the trained byte-level BPE), saved with ``CrossEncoder.save`` and as a plain
transformers folder (CrossEncoders saved before sentence-transformers 5). Each family is exported once per run, to
every target it can hold (conftest's ``reranker_exports``, shared with tests/test_reranker_serving.py, which tests
the other targets); these tests load its onnx files.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import exporter
from conftest import RERANKER_FAMILIES
from exporter.errors import InvalidInputError, UnsupportedModelError
from exporter.model import read_model
from exporter.verify.corpus.pairs import parity_pairs
from exporter.verify.reference import CrossEncoderRunner

TOLERANCE = 1e-5


@pytest.fixture(scope="session")
def onnx_only(reranker_exports, tmp_path_factory):
    """Return export(family) → ExportResult: the family's CrossEncoder exported to onnx alone, unchecked (what
    ``check`` on it proves is the test's own)."""
    done = {}

    def export(family: str):
        if family not in done:
            _, model, _ = reranker_exports(family)
            done[family] = exporter.export(model, tmp_path_factory.mktemp(f"{family}_onnx") / "export",
                                           targets="onnx", variants=False, check=False)
        return done[family]

    return export


@pytest.fixture(scope="session", params=list(RERANKER_FAMILIES))
def reranker_export(request, reranker_exports):
    return reranker_exports(request.param)


@pytest.fixture(scope="session")
def reference_of():
    cache = {}

    def get(model):
        if model not in cache:
            cache[model] = CrossEncoderRunner(model).model
        return cache[model]

    return get


def test_onnx_export_is_a_reranker_export(reranker_export):
    _, _, result = reranker_export
    assert result.passed
    assert result.manifest["kind"] == "reranker"
    assert result.rows[0].target == "onnx"  # targets="onnx" alone: the variants test below


def test_export_parity_has_no_token_mismatch_and_scores_within_the_bar(reranker_export):
    _, _, result = reranker_export
    parity = result.manifest["targets"]["onnx"]["parity"]
    assert parity["tokens"]["mismatches"] == 0
    assert parity["scores"]["max_abs_diff"] <= TOLERANCE
    assert parity["scores"]["texts"] >= len(parity_pairs())


@pytest.mark.parametrize("batch_size", [5, 32])
def test_predict_equals_cross_encoder_predict(reranker_export, reference_of, batch_size):
    _, model, result = reranker_export
    pairs = [list(pair) for pair in parity_pairs()]
    got = exporter.load(result.out).predict(pairs, batch_size=batch_size)
    want = reference_of(model).predict(pairs, batch_size=batch_size)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)


def test_predict_return_shapes_follow_cross_encoder(reranker_export, reference_of):
    _, model, result = reranker_export
    loaded, reference = exporter.load(result.out), reference_of(model)
    pair = ["what is a reranker", "A model that scores a query and a document together."]
    for kwargs in ({}, {"convert_to_tensor": True}, {"apply_softmax": True},
                   {"activation_fn": torch.nn.Identity()}, {"activation_fn": torch.nn.Tanh()}):
        got, want = loaded.predict(pair, **kwargs), reference.predict(pair, **kwargs)
        assert np.shape(got) == np.shape(want), kwargs
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=TOLERANCE, rtol=0)
    empty = loaded.predict([])
    assert empty.shape == reference.predict([]).shape == (0,)


def test_rank_equals_cross_encoder_rank(reranker_export, reference_of):
    family, model, result = reranker_export
    loaded, reference = exporter.load(result.out), reference_of(model)
    documents = [document for _, document in parity_pairs()][:12]
    query = "what is a cross encoder"
    if reference.num_labels != 1:
        with pytest.raises(InvalidInputError, match="one label"):
            loaded.rank(query, documents)
        return
    got = loaded.rank(query, documents, return_documents=True, top_k=5)
    want = reference.rank(query, documents, return_documents=True, top_k=5)
    assert [row["corpus_id"] for row in got] == [row["corpus_id"] for row in want]
    assert [row["text"] for row in got] == [row["text"] for row in want]
    np.testing.assert_allclose([row["score"] for row in got], [row["score"] for row in want], atol=TOLERANCE)


def test_encode_on_a_reranker_says_to_use_predict(reranker_exports):
    _, _, result = reranker_exports("wordpiece")
    with pytest.raises(InvalidInputError, match="predict"):
        exporter.load(result.out).encode(["a text"])


@pytest.mark.parametrize("pairs, problem", [
    ([["one side only"]], "pairs\\[0\\]"),
    ([["q", 3]], "pairs\\[0\\]\\[1\\] is int, expected str"),
    ([["q", b"d"]], "pairs\\[0\\]\\[1\\] is bytes, expected str: decode it"),
    (["q", "d", "third"], "pairs\\[0\\] is list .*expected a \\[query, document\\] pair of two str"),
    ({("q", "d")}, "no order"),
])
def test_predict_refuses_what_is_not_a_list_of_pairs(reranker_exports, pairs, problem):
    _, _, result = reranker_exports("wordpiece")
    with pytest.raises(InvalidInputError, match=problem):
        exporter.load(result.out).predict(pairs)


def test_check_accepts_a_jsonl_of_pairs(onnx_only, tmp_path):
    result = onnx_only("wordpiece")
    texts = tmp_path / "pairs.jsonl"
    texts.write_text(json.dumps(["my own query", "my own document"]) + "\n" + json.dumps(["", "x"]) + "\n")
    checked = exporter.check(result.out, texts=texts)
    assert checked.passed
    assert checked.manifest["checked_texts"]["user"]["texts"] == 2


def test_check_refuses_a_line_that_is_not_a_pair(onnx_only, tmp_path):
    result = onnx_only("wordpiece")
    texts = tmp_path / "texts.jsonl"
    texts.write_text(json.dumps("a plain text") + "\n")
    with pytest.raises(InvalidInputError, match="line 1: not a \\[query, document\\] pair"):
        exporter.check(result.out, texts=texts)


def test_an_llm_reranker_is_refused_by_name(reranker_exports, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(reranker_exports("wordpiece")[1], model)
    rows = json.loads((model / "modules.json").read_text())
    rows.append({"idx": 1, "name": "1", "path": "1_LogitScore",
                 "type": "sentence_transformers.cross_encoder.modules.logit_score.LogitScore"})
    (model / "modules.json").write_text(json.dumps(rows))
    with pytest.raises(UnsupportedModelError, match="LLM rerankers .*LogitScore.* not exported yet"):
        read_model(model)


@pytest.mark.parametrize("activation", ["torch.nn.modules.activation.Hardswish", "my_package.MyActivation"])
def test_an_activation_the_graph_cannot_hold_is_refused_by_name(reranker_exports, tmp_path, activation):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(reranker_exports("wordpiece")[1], model)
    config = json.loads((model / "config_sentence_transformers.json").read_text())
    config["activation_fn"] = activation
    (model / "config_sentence_transformers.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match=f"activation_fn '{activation}'.*supported: torch.nn Sigmoid"):
        read_model(model)


def test_the_activation_of_a_plain_folder_is_read_from_config_json(reranker_exports):
    _, model, result = reranker_exports("bpe")
    head = result.manifest["output"]
    assert head["activation"] == "torch.nn.modules.activation.Tanh"
    assert head["activation_from"] == "config.json sentence_transformers.activation_fn"
    assert str(CrossEncoderRunner(model).model.activation_fn) == "Tanh()"


def test_cli_check_takes_a_jsonl_of_pairs_for_a_reranker(onnx_only, tmp_path, capsys):
    from exporter.cli import main

    result = onnx_only("bpe")
    texts = tmp_path / "pairs.jsonl"
    texts.write_text(json.dumps(["¿qué es un reranker?", "Un modelo que puntúa pares."], ensure_ascii=False) + "\n")
    assert main(["check", str(result.out), "--texts", str(texts), "-q"]) == 0
    assert "onnx" in capsys.readouterr().out


def test_predict_on_an_embedding_export_says_to_use_encode(tiny_model, tmp_path):
    out = exporter.export(tiny_model("bert_uncased_mean_norm"), tmp_path / "out", targets="onnx", variants=False,
                          check=False).out  # its parity: tests/test_tiny_models.py
    loaded = exporter.load(out)
    for call in (lambda: loaded.predict([["q", "d"]]), lambda: loaded.rank("q", ["d"])):
        with pytest.raises(InvalidInputError, match="embedding model .*use encode"):
            call()


def test_a_manifest_of_an_unknown_kind_is_refused_by_name(reranker_exports, tmp_path):
    import shutil

    from exporter.errors import InvalidManifestError

    _, _, result = reranker_exports("wordpiece")
    out = tmp_path / "export"
    shutil.copytree(result.out, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["kind"] = "multi_vector"
    (out / "manifest.json").write_text(json.dumps(manifest))
    for call in (exporter.load, exporter.check):
        with pytest.raises(InvalidManifestError, match="kind: \"multi_vector\"; this version of st-exporter "
                                                      "reads embedding, reranker, sparse, static"):
            call(out)


def test_wordpiece_reranker_with_variants_writes_optimized_int8_and_int8w_within_their_bars(reranker_exports,
                                                                                            reference_of, tmp_path):
    from targets.onnx_variants import RERANKER_INT8_MAX_SCORE_DIFF

    _, model, _ = reranker_exports("wordpiece")
    result = exporter.export(model, tmp_path / "export", targets="onnx", variants=True)
    assert [row.target for row in result.rows] == ["onnx"]
    onnx_entry = result.manifest["targets"]["onnx"]
    assert set(onnx_entry["variants"]) == {"optimized", "int8", "int8w"}
    for name in ("model_optimized.onnx", "model_int8.onnx", "model_int8w.onnx"):
        assert (result.out / "onnx" / name).is_file()
    variants = onnx_entry["parity"]["variants"]
    assert variants["optimized"]["passed"] and variants["optimized"]["max_abs_diff"] <= TOLERANCE
    assert variants["int8"]["passed"] and variants["int8"]["max_abs_diff"] <= RERANKER_INT8_MAX_SCORE_DIFF
    assert variants["int8"]["thresholds"]["max_abs_diff"] == RERANKER_INT8_MAX_SCORE_DIFF
    assert variants["int8w"]["passed"] and variants["int8w"]["max_abs_diff"] <= RERANKER_INT8_MAX_SCORE_DIFF
    pairs = [list(pair) for pair in parity_pairs()[:8]]
    got = exporter.load(result.out, "onnx:int8").predict(pairs)
    want = reference_of(model).predict(pairs)
    assert np.abs(np.asarray(got) - want).max() <= RERANKER_INT8_MAX_SCORE_DIFF
