"""TF Serving: the versioned layout and models.config (TF Serving's own schema), the documented REST
bodies run through the signature in a process with only TensorFlow, and the op list the server needs."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from exporter.files import sha256_of
from exporter.verify.tf_ops import PYTHON_OPS, savedmodel_ops, unservable_ops
from exporter.runtime.tfserving import read_models_config

MAX_ABS_DIFF = 1e-5
NAME = "all-MiniLM-L6-v2"
# Run with only tensorflow and tensorflow_text imported: reads TF Serving's JSON the way its REST
# API does (row format: one value per instance for a one-input signature; columnar: the input by
# name), answers as it does (a lone output loses its name), and lists the ops that tensorflow alone
# registers and the ones tensorflow_text adds.
TF_ONLY_SCRIPT = r"""
import json, sys
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api

def registered():
    ops = op_def_pb2.OpList()
    ops.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    return {op.name for op in ops.op}

core = registered()
import tensorflow_text  # noqa: F401
text_ops = registered() - core

model = tf.saved_model.load(sys.argv[1])
signature = model.signatures["serving_default"]
(input_name,) = signature.structured_input_signature[1]
responses = []
for body in json.load(open(sys.argv[2], encoding="utf-8")):
    body = json.loads(json.dumps(body))
    row = "instances" in body
    values = body["instances"] if row else body["inputs"]
    if isinstance(values, dict):
        values = values[input_name]
    outputs = signature(**{input_name: tf.constant(values, dtype=tf.string, shape=[len(values)])})
    (output,) = outputs.values()
    responses.append({"predictions" if row else "outputs": output.numpy().tolist()})
heavy = [m for m in ("torch", "exporter", "targets", "onnxruntime", "sentence_transformers", "tensorflow_serving")
         if m in sys.modules]
print(json.dumps({"responses": responses, "core_ops": sorted(core), "tf_text_ops": sorted(text_ops),
                  "heavy": heavy}))
"""


@pytest.fixture(scope="module")
def tf_only_run(bundled_export, corpus, tmp_path_factory):
    """The REST bodies of the manifest, and the corpus in both formats, through a TensorFlow-only process."""
    rest = bundled_export.manifest["targets"]["tfserving"]["rest"]
    # the export's runner already sent the whole corpus through REST JSON; here a third of it, in both formats
    bodies = [rest["row"]["body"], rest["columnar"]["body"], {"instances": corpus[::3]},
              {"inputs": {"text": corpus[1::3]}}, {"inputs": corpus[:3]}]
    path = tmp_path_factory.mktemp("rest") / "bodies.json"
    path.write_text(json.dumps(bodies, ensure_ascii=False), encoding="utf-8")
    result = subprocess.run([sys.executable, "-c", TF_ONLY_SCRIPT, str(bundled_export.out / "tfserving" / NAME / "1"),
                             str(path)], capture_output=True, text=True,
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    return bodies, json.loads(result.stdout.strip().splitlines()[-1])


def test_layout_and_models_config_read_with_tf_servings_schema(bundled_export):
    folder = bundled_export.out / "tfserving"
    config = read_models_config(folder / "models.config")
    (entry,) = config.model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == (NAME, f"/models/{NAME}", "tensorflow")
    version = folder / NAME / "1"
    assert (version / "saved_model.pb").is_file() and (version / "variables" / "variables.index").is_file()
    for source in (bundled_export.out / "savedmodel").rglob("*"):  # the very SavedModel the savedmodel target proved
        if source.is_file():
            assert sha256_of(source) == sha256_of(version / source.relative_to(bundled_export.out / "savedmodel"))


def test_documented_rest_bodies_run_in_a_tensorflow_only_process(tf_only_run, bundled_reference, corpus):
    bodies, run = tf_only_run
    assert run["heavy"] == []
    row, columnar, corpus_row, corpus_columnar, bare_columnar = run["responses"]
    examples = bodies[0]["instances"]
    assert bodies[1]["inputs"]["text"] == examples
    expected = bundled_reference.encode(examples)
    for response, key in ((row, "predictions"), (columnar, "outputs")):
        assert list(response) == [key]
        got = np.array(response[key], dtype=np.float32)
        assert got.shape == (len(examples), 384) and np.abs(got - expected).max() <= MAX_ABS_DIFF
    expected = bundled_reference.encode(corpus)
    assert np.abs(np.array(corpus_row["predictions"], np.float32) - expected[::3]).max() <= MAX_ABS_DIFF
    assert np.abs(np.array(corpus_columnar["outputs"], np.float32) - expected[1::3]).max() <= MAX_ABS_DIFF
    assert np.array(bare_columnar["outputs"]).shape == (3, 384)


def test_manifest_lists_every_op_and_tf_serving_can_run_them_all(bundled_export, tf_only_run):
    _, run = tf_only_run
    core, text_ops = set(run["core_ops"]), set(run["tf_text_ops"])
    details = bundled_export.manifest["targets"]["tfserving"]
    listed = details["ops"]
    assert set(listed) == savedmodel_ops(bundled_export.out / "tfserving" / NAME / "1")
    assert not set(listed) & set(PYTHON_OPS)
    assert set(listed) <= core | text_ops, sorted(set(listed) - core - text_ops)
    assert {op for op in listed if op in text_ops} == {op for op, s in listed.items() if s.startswith("tensorflow-text:")}
    # the tokenizer's kernels (exporter/tokenizers/wordpiece/emit_tf.py); everything else is core TensorFlow
    assert text_ops & set(listed) == {
        "TFText>ByteSplitWithOffsets", "TFText>FastWordpieceDetokenize", "FastWordpieceTokenizeWithOffsets"}
    assert details["unservable_ops"] == [] and details["min_runtime"]["tensorflow_model_server"]


def test_unservable_ops_are_named():
    sources = {"Const": "tensorflow", "PyFunc": "tensorflow", "Addons>GeLU": "unregistered",
               "RegexSplitWithOffsets": "tensorflow-text:_regex_split_ops.so", "Sentencepiece": "sentencepiece"}
    assert unservable_ops(sources) == ["Addons>GeLU", "PyFunc", "Sentencepiece"]


def test_rest_runner_parity_is_recorded(bundled_export):
    parity = bundled_export.manifest["targets"]["tfserving"]["parity"]["embeddings"]
    assert parity["passed"] and parity["max_abs_diff"] <= MAX_ABS_DIFF and parity["batch_sizes"] == ["all"]
