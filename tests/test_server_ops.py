"""Which stock servers link our SavedModels' tensorflow-text ops: the manifest's ``custom_ops`` against the
saved_model.pb files, the verdict table against every op an emitter writes, and ``check`` failing a layout
whose server would not find an op."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import GEMMA_OPTIONS, ROBERTA_OPTIONS, XLMR_OPTIONS
from exporter.verify.server_ops import (LINKED, NOT_LINKED, SERVERS, TEXT_OPS, TF_SERVING, TRITON_TF, UNKNOWN,
                                        server_problems, server_verdicts)
from exporter.verify.tf_ops import savedmodel_ops

#: the ops beyond core TensorFlow each family's SavedModel needs, as docs/serving.md lists them
DOCUMENTED = {
    "wordpiece": {"FastWordpieceTokenizeWithOffsets", "TFText>ByteSplitWithOffsets", "TFText>FastWordpieceDetokenize"},
    "unigram": {"TFText>FastSentencepieceTokenize", "TFText>ByteSplitWithOffsets", "TFText>FastWordpieceDetokenize"},
    "bpe": {"SentencepieceOp", "SentencepieceTokenizeOp", "TFText>ByteSplitWithOffsets"},
    "spbpe": {"SentencepieceOp", "SentencepieceTokenizeOp"},
}
EXPORTS = {"bundled_export": "wordpiece", "mpnet_export": "wordpiece", "xlmr_export": "unigram",
           "roberta_export": "bpe"}
#: a tiny model per family (the names and options of conftest's and test_tiny_models' models: built once)
FAMILY_MODELS = {"wordpiece": ("bert_uncased_mean_norm", {}), "unigram": ("xlmr_cls_mean_dense_norm", XLMR_OPTIONS),
                 "bpe": ("roberta_mean_norm", ROBERTA_OPTIONS),
                 "spbpe": ("gemma3_text_mean_dense_norm", GEMMA_OPTIONS)}


@pytest.fixture(scope="module")
def core_ops() -> set[str]:
    """The ops a process that imports only TensorFlow registers (read here, apart from exporter/verify/tf_ops.py)."""
    script = ("import json, tensorflow as tf\nfrom tensorflow.core.framework import op_def_pb2\n"
              "from tensorflow.python.client import pywrap_tf_session as c\nops = op_def_pb2.OpList()\n"
              "ops.ParseFromString(c.TF_GetBuffer(c.TF_GetAllOpList()))\nprint(json.dumps([o.name for o in ops.op]))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def _saved_models(export) -> dict[str, tuple[list, object]]:
    """Return {artifact: (its manifest custom_ops, its SavedModel folder)} for every SavedModel-based artifact."""
    out, targets = export.out, export.manifest["targets"]
    found = {"savedmodel": (targets["savedmodel"]["custom_ops"], out / "savedmodel")}
    if "tfserving" in targets:
        name = targets["tfserving"]["name"]
        found["tfserving"] = (targets["tfserving"]["custom_ops"], out / "tfserving" / name / "1")
    for model, details in targets.get("triton", {}).get("models", {}).items():
        if details["platform"] == "tensorflow_savedmodel":
            found["triton:tf"] = (details["custom_ops"], out / "triton" / model / "1" / "model.savedmodel")
    return found


@pytest.mark.parametrize("fixture", list(EXPORTS))
def test_manifest_lists_exactly_the_non_core_ops_of_each_saved_model(fixture, core_ops, request):
    export = request.getfixturevalue(fixture)
    artifacts = _saved_models(export)
    assert {"savedmodel", "tfserving", "triton:tf"} <= set(artifacts)
    for artifact, (listed, folder) in artifacts.items():
        in_file = savedmodel_ops(folder) - core_ops
        assert [entry["op"] for entry in listed] == sorted(in_file), artifact
        assert in_file == DOCUMENTED[EXPORTS[fixture]], artifact
        for entry in listed:
            assert entry["library"].startswith("_") and entry["library"].endswith(".so"), entry
            assert entry["servers"][TF_SERVING]["verdict"] == LINKED, entry
            assert entry["servers"][TRITON_TF]["verdict"] == NOT_LINKED, entry
            assert all(v["sources"] for v in entry["servers"].values()), entry
    config = export.manifest["targets"]["triton"]["models"]
    (tf_model,) = [details for details in config.values() if details["platform"] == "tensorflow_savedmodel"]
    # Triton's backend links none of them: each library is named for it to load
    assert sorted(p.rsplit("/", 1)[1] for p in tf_model["op_library_filename"]) == sorted(
        {entry["library"] for entry in tf_model["custom_ops"]})


@pytest.mark.parametrize("family", list(DOCUMENTED))
def test_verdict_table_covers_every_op_the_family_emitter_writes(family, tiny_model, core_ops, tmp_path):
    """The tokenizer alone saved as the SavedModel saves it (with a prompt too): saving also writes the ops that
    create its resources (SentencepieceOp), which a traced function only captures."""
    import tensorflow as tf

    from exporter.model import read_model
    from exporter.tokenizers.shared.framing_tf import TokenizerTF

    name, options = FAMILY_MODELS[family]
    spec = read_model(tiny_model(name, **options))
    assert spec.tokenizer.family == family
    tokenizer = TokenizerTF(spec.tokenizer)
    tokenizer.serve = tf.function(lambda text: tokenizer.tokenize(text, prompt="query: ", min_rows=1),
                                  input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(tokenizer, str(tmp_path / "tokenizer"), signatures={"serving_default": tokenizer.serve})
    used = savedmodel_ops(tmp_path / "tokenizer")
    assert used - core_ops == DOCUMENTED[family]
    assert used - core_ops <= set(TEXT_OPS)


def test_every_family_has_documented_ops():
    from exporter.tokenizers import FAMILIES

    assert set(DOCUMENTED) == set(FAMILIES) == set(FAMILY_MODELS)
    assert set(TEXT_OPS) == set().union(*DOCUMENTED.values())


def test_server_problems_name_unlinked_and_unknown_ops():
    entries = [{"op": op, "library": library, "servers": server_verdicts(op, library)}
               for op, library in (("TFText>ByteSplitWithOffsets", "_byte_splitter.so"), ("Addons>GeLU", "unregistered"))]
    assert {v["verdict"] for v in entries[1]["servers"].values()} == {UNKNOWN}
    assert server_problems(entries, TF_SERVING) == [
        "tf-serving: op Addons>GeLU (unregistered): no verdict read in its sources"]
    triton = server_problems(entries, TRITON_TF)
    assert len(triton) == 2 and "op TFText>ByteSplitWithOffsets (_byte_splitter.so): not linked" in triton[0]
    assert server_problems(entries[:1], TRITON_TF, loaded=("/opt/tensorflow_text/ops/_byte_splitter.so",)) == []
    assert set(entries[0]["servers"]) == set(SERVERS)


def test_check_fails_a_triton_tf_model_whose_config_loads_no_op_library(mpnet_export, tmp_path):
    from google.protobuf import text_format

    from exporter.runtime.triton import read_model_config
    from targets import get

    target = get("triton")
    assert target.server_problems(mpnet_export.out) == []
    (model,) = (mpnet_export.out / "triton").glob("*_tf")
    out = tmp_path / "out"
    shutil.copytree(model, out / "triton" / model.name)  # the _tf model alone: what server_problems reads
    config_path = out / "triton" / model.name / "config.pbtxt"
    config = read_model_config(config_path)
    kept = [p for p in config.model_operations.op_library_filename if not p.endswith("/_byte_splitter.so")]
    del config.model_operations.op_library_filename[:]
    config.model_operations.op_library_filename.extend(kept)
    config_path.write_text(text_format.MessageToString(config), encoding="utf-8")
    (problem,) = target.server_problems(out)
    assert "triton-tf: op TFText>ByteSplitWithOffsets (_byte_splitter.so): not linked" in problem


def test_check_fails_a_tfserving_layout_with_an_op_no_verdict_covers(mpnet_export, monkeypatch):
    from targets import get

    target = get("tfserving")
    assert target.server_problems(mpnet_export.out) == []
    monkeypatch.delitem(TEXT_OPS, "TFText>ByteSplitWithOffsets")
    (problem,) = target.server_problems(mpnet_export.out)
    assert problem.endswith("tf-serving: op TFText>ByteSplitWithOffsets (_byte_splitter.so): no verdict read in its "
                            "sources")


def test_tfserving_target_refuses_a_saved_model_with_an_op_not_proven_linked(mpnet_export, tmp_path, monkeypatch):
    from exporter.model import read_model
    from targets import get
    from targets.tfserving import UnservableOpsError

    spec = read_model(mpnet_export.manifest["source"]["path"])
    shutil.copytree(mpnet_export.out / "savedmodel", tmp_path / "savedmodel")
    monkeypatch.delitem(TEXT_OPS, "FastWordpieceTokenizeWithOffsets")
    with pytest.raises(UnservableOpsError, match=r"op FastWordpieceTokenizeWithOffsets \(_fast_wordpiece_tokenizer.so\): "
                                                 "no verdict read in its sources"):
        get("tfserving").build(spec, tmp_path, options={})
    assert not (tmp_path / "tfserving").exists()
