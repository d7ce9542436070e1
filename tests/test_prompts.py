"""Named prompts: every prompt of a model reachable in every target, against SentenceTransformer's prompt handling.

The tiny models have a query and a document prompt of different token lengths, so that with include_prompt False
(pooling skips the prompt's tokens) each prompt pools from its own first token.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import once_per_run

import exporter
from exporter.errors import InvalidInputError, InvalidModelError
from exporter.model import read_model
from exporter.runtime.artifacts import artifact
from exporter.runtime.prompts import prompt_key

PROMPTS = {"query": "query: ", "document": "the passage to find: "}
TEXTS = ["What is the capital of France?", "Paris is the capital of France.", "", "naïve café ünïcode"]
TARGETS = ("onnx", "savedmodel", "tflite")
#: the serving layout that exposes the prompts too (TF Serving: a request's signature_name)
LAYOUTS = ("tfserving",)


@pytest.fixture(scope="module")
def prompt_model(tiny_model):
    return tiny_model("bert_prompts_excluded", prompts=PROMPTS, default_prompt_name="query", include_prompt=False)


@pytest.fixture(scope="module")
def prompt_export(prompt_model, tmp_path_factory) -> exporter.ExportResult:
    return once_per_run(tmp_path_factory, "prompts", lambda folder: exporter.export(
        prompt_model, folder / "export", targets=",".join(TARGETS + LAYOUTS), variants=False))


@pytest.fixture(scope="module")
def reference(prompt_model):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(prompt_model), device="cpu")


def test_each_prompt_has_its_graph_and_passes_parity_in_every_target(prompt_export):
    manifest = prompt_export.manifest
    assert manifest["prompts"]["default_prompt_name"] == "query"
    rows = manifest["prompts"]["prompts"]
    assert {name: row["text"] for name, row in rows.items()} == PROMPTS
    assert rows["query"]["key"] == "" and rows["document"]["key"] == "document"
    assert rows["query"]["pooled_from_token"] == 3 and rows["document"]["pooled_from_token"] == 6  # [CLS] + pieces
    assert manifest["targets"]["onnx"]["prompt_graphs"] == {"document": "onnx/model.document.onnx"}
    assert "document" in manifest["targets"]["savedmodel"]["signatures"]
    assert manifest["targets"]["tfserving"]["prompt_signatures"]["document"]["body"]["signature_name"] == "document"
    assert {row.target for row in prompt_export.rows if "prompts" in row.parity} == set(TARGETS + LAYOUTS)
    for row in prompt_export.rows:
        document = row.parity["prompts"]["document"]
        assert document["passed"] and document.get("tokens", {}).get("mismatches", 0) == 0, (row.target, document)
        assert document["max_abs_diff"] <= 1e-5 and row.passed


def test_summary_table_has_a_row_per_prompt_graph(prompt_export):
    from exporter.cli import format_table

    lines = {line.split(" | ")[0].strip(): line for line in format_table(prompt_export.rows).splitlines()}
    for target in TARGETS + LAYOUTS:
        assert lines[f"{target} prompt=document"].rstrip().endswith("PASS")
    assert "model.document.onnx" in lines["onnx prompt=document"]


def test_prompt_graphs_share_one_weight_file(prompt_export):
    import onnx

    folder = prompt_export.out / "onnx"
    locations = {entry.value for path in ("model.onnx", "model.document.onnx")
                 for tensor in onnx.load(str(folder / path), load_external_data=False).graph.initializer
                 for entry in tensor.external_data if entry.key == "location"}
    assert locations == {"model.onnx.data"}
    assert not list(folder.glob("*.data")) or [p.name for p in folder.glob("*.data")] == ["model.onnx.data"]


@pytest.mark.parametrize("target", TARGETS)
def test_encode_with_prompts_matches_sentence_transformers(prompt_export, reference, target):
    model = exporter.load(prompt_export.out, target)
    cases = {
        "default": (model.encode(TEXTS), reference.encode(TEXTS)),
        "prompt_name": (model.encode(TEXTS, prompt_name="document"), reference.encode(TEXTS, prompt_name="document")),
        "encode_query": (model.encode_query(TEXTS), reference.encode_query(TEXTS)),
        "encode_document": (model.encode_document(TEXTS), reference.encode_document(TEXTS)),
        "prompt_text": (model.encode(TEXTS, prompt="the passage to find: "),
                        reference.encode(TEXTS, prompt="the passage to find: ")),
    }
    for case, (got, want) in cases.items():
        assert np.abs(got - want).max() <= 1e-5, case
    assert np.abs(cases["default"][0] - cases["encode_document"][0]).max() > 1e-3  # the prompts differ


def test_unknown_prompt_name_is_refused_listing_the_prompts(prompt_export):
    model = exporter.load(prompt_export.out)
    with pytest.raises(InvalidInputError, match=r"prompt_name='passage' is not a prompt of this model; available: "
                                                r"'query' \('query: '\), 'document'"):
        model.encode(TEXTS, prompt_name="passage")


def test_a_free_text_prompt_the_export_does_not_hold_is_refused(prompt_export):
    model = exporter.load(prompt_export.out)
    with pytest.raises(InvalidInputError, match=r"prompt='Represent: ': an export holds its model's prompts only"):
        model.encode(TEXTS, prompt="Represent: ")


def test_onnx_variants_hold_the_default_prompt_only():
    with pytest.raises(InvalidInputError, match="onnx:int8 holds its model's default prompt only"):
        artifact("onnx:int8").open_prompt("unused", "document")


def test_include_prompt_true_on_bpe_matches_each_prompt(tiny_model, tmp_path_factory):
    from sentence_transformers import SentenceTransformer

    model_dir = tiny_model("roberta_prompts_pooled", arch="roberta", prompts=PROMPTS, default_prompt_name="document")
    result = once_per_run(tmp_path_factory, "prompts-roberta", lambda folder: exporter.export(
        model_dir, folder / "export", targets="onnx", variants=False))
    assert result.passed and result.rows[0].parity["prompts"]["query"]["tokens"]["mismatches"] == 0
    loaded, reference = exporter.load(result.out), SentenceTransformer(str(model_dir), device="cpu")
    for got, want in ((loaded.encode_query(TEXTS), reference.encode_query(TEXTS)),
                      (loaded.encode(TEXTS), reference.encode(TEXTS))):
        assert np.abs(got - want).max() <= 1e-5


def test_no_prompt_model_keeps_one_graph(tiny_model):
    spec = read_model(tiny_model("bert_uncased_mean_norm"))
    assert spec.prompts == {"query": "", "document": ""} and spec.prompt_graphs() == {}


@pytest.mark.parametrize("names, problem", [
    (("a-b", "a b"), r"prompts \['a-b', 'a b'\] all become the signature key 'a_b'"),
    (("tokenize",), r"prompt 'tokenize' becomes the signature key 'tokenize', which the export uses"),
])
def test_prompt_names_that_clash_as_signature_keys_are_refused(prompt_model, tmp_path, names, problem):
    folder = tmp_path / "model"
    shutil.copytree(prompt_model, folder)
    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text())
    config["prompts"].update({name: f"{name}: " for name in names})
    config_path.write_text(json.dumps(config))
    with pytest.raises(InvalidModelError, match=problem):
        read_model(folder)


def test_prompt_key_makes_a_signature_key_of_any_name():
    assert [prompt_key(name) for name in ("query", "Retrieval-Query", "1st", "  ")] == \
        ["query", "Retrieval_Query", "p_1st", "prompt"]


def test_router_models_are_refused_by_name(prompt_model, tmp_path):
    from exporter.errors import UnsupportedModelError

    folder = tmp_path / "model"
    shutil.copytree(prompt_model, folder)
    (folder / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "",
                                                      "type": "sentence_transformers.base.modules.router.Router"}]))
    with pytest.raises(UnsupportedModelError, match=r"Router'? \(a Router \(Asym\) model runs other modules per "
                                                    r"route .*not exported yet\)"):
        read_model(folder)
