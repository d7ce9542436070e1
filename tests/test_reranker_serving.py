"""Rerankers (issue 24) on the savedmodel, tflite, triton and tfserving targets, scored against CrossEncoder.predict.

One tiny random CrossEncoder per vocabulary (the bundled MiniLM WordPiece, multilingual-e5-small's Unigram, the
trained byte-level BPE), exported once with the default targets: every target the family can hold (RoBERTa/BPE has
no TFLite kernel: left out by name). The export's own parity run compares each target's scores and token ids with the
reference; the tests below read those figures and feed each served layout as its server would.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import exporter
from conftest import RERANKER_FAMILIES, RERANKER_NAME
from exporter.errors import UnsupportedModelError
from exporter.runtime.triton import TritonRequestRunner, model_config_schema, read_model_config
from exporter.verify.corpus.pairs import parity_pairs
from exporter.verify.reference import CrossEncoderRunner

#: |Δscore| bars (issue 24): onnx and TensorFlow 1e-5, TFLite fp32 1e-4 (XNNPACK rounds otherwise)
BARS = {"savedmodel": 1e-5, "tflite": 1e-4, "triton": 1e-5, "tfserving": 1e-5}
LOADED = ("savedmodel", "tflite")


@pytest.fixture(scope="module", params=list(RERANKER_FAMILIES))
def served(request, reranker_exports):
    """(family, model folder, ExportResult): a tiny CrossEncoder exported to every target it can hold (conftest's,
    shared with tests/test_reranker.py)."""
    return reranker_exports(request.param)


@pytest.fixture(scope="module")
def reference_runner(served):
    return CrossEncoderRunner(served[1])


@pytest.fixture(scope="module")
def reference(reference_runner):
    return reference_runner.model


def _pairs() -> list[list[str]]:
    return [list(pair) for pair in parity_pairs()]


def test_every_target_the_family_holds_is_built_and_tflite_is_refused_for_bpe_by_name(served):
    family, _, result = served
    built = [row.target for row in result.rows]
    if family == "bpe":
        assert built == ["onnx", "savedmodel", "triton", "tfserving"]
        (why,) = result.skipped["tflite"]
        assert "TFLite has no BPE kernel" in why
    else:
        assert built == ["onnx", "savedmodel", "tflite", "triton", "tfserving"]
        assert not result.skipped


def test_parity_per_target_no_token_mismatch_and_scores_within_the_bar(served):
    family, _, result = served
    assert result.passed
    for row in result.rows:
        if row.target == "onnx":
            continue
        parity = result.manifest["targets"][row.target]["parity"]
        if "tokens" in parity:  # the targets with a tokenizer graph: savedmodel, tflite
            assert parity["tokens"]["mismatches"] == 0, (family, row.target)
        scores = parity["scores"]
        assert scores["texts"] >= len(parity_pairs())
        assert scores["max_abs_diff"] <= BARS[row.target] and scores["max_logit_diff"] <= BARS[row.target], (
            family, row.target, scores)
        print(f"{family} {row.target}: tokens {parity.get('tokens', {}).get('mismatches', '-')} mismatches, "
              f"max |Δscore| {scores['max_abs_diff']:.2e}, |Δlogit| {scores['max_logit_diff']:.2e}")
    tf_model = result.manifest["targets"]["triton"]["parity"]["variants"]["tf"]
    assert tf_model["passed"] and tf_model["max_abs_diff"] <= BARS["triton"]
    print(f"{family} triton:tf: max |Δscore| {tf_model['max_abs_diff']:.2e}, |Δlogit| {tf_model['max_logit_diff']:.2e}")


@pytest.mark.parametrize("target", LOADED)
def test_load_predict_equals_cross_encoder_predict(served, reference, target):
    family, _, result = served
    if target not in result.manifest["targets"]:
        pytest.skip(f"{family}: no {target} export (see the refusal test)")
    pairs = _pairs()
    loaded = exporter.load(result.out, target)
    got, want = loaded.predict(pairs, batch_size=5), reference.predict(pairs, batch_size=5)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=BARS[target], rtol=0)
    assert loaded.predict([]).shape == (0,)


@pytest.mark.parametrize("target", LOADED)
def test_pair_token_ids_equal_what_cross_encoder_feeds_its_model(served, reference_runner, target):
    family, _, result = served
    if target not in result.manifest["targets"]:
        pytest.skip(f"{family}: no {target} export")
    from exporter.runtime.artifacts import open_tokenizer

    pairs = _pairs()
    queries, documents = [q for q, _ in pairs], [d for _, d in pairs]
    want = reference_runner.tokenize_pairs(queries, documents)  # CrossEncoder.preprocess, one padded batch
    got = open_tokenizer(result.out, target).tokenize_pairs(queries, documents)
    for name, ids in want.items():  # XLM-R and RoBERTa are fed no token types: the graph's are zeros, unused
        np.testing.assert_array_equal(got[name], ids, err_msg=f"{family} {target} {name}")


@pytest.mark.parametrize("model", ["onnx", "tf"])
def test_triton_config_has_two_string_inputs_and_score_logits_of_num_labels(served, reference, model):
    _, _, result = served
    folder = result.out / "triton" / f"{RERANKER_NAME}_{model}"
    config = read_model_config(folder / "config.pbtxt")
    schema = model_config_schema()
    assert [(i.name, i.data_type, list(i.dims), i.HasField("reshape"), list(i.reshape.shape)) for i in config.input] \
        == [("query", schema.TYPE_STRING, [1], True, []), ("document", schema.TYPE_STRING, [1], True, [])]
    labels = reference.num_labels
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [
        ("score", schema.TYPE_FP32, [labels]), ("logits", schema.TYPE_FP32, [labels])]


def test_triton_request_runner_scores_pairs_as_triton_feeds_them(served, reference):
    _, _, result = served
    runner = TritonRequestRunner(result.out / "triton" / f"{RERANKER_NAME}_onnx")
    assert runner.request_shape(3, "query") == runner.request_shape(3, "document") == [3, 1]
    pairs = _pairs()
    score, logits = runner.score_and_logits([q for q, _ in pairs], [d for _, d in pairs], batch_size=7)
    want = reference.predict(pairs, activation_fn=None, convert_to_numpy=True)
    assert score.shape == logits.shape == (len(pairs), reference.num_labels)
    np.testing.assert_allclose(score.reshape(want.shape), want, atol=BARS["triton"], rtol=0)


# the manifest's REST bodies through the signature in a process with only tensorflow and tensorflow_text, read as
# TF Serving's REST API reads them (row format: one object by input name per instance; columnar: lists by name)
TF_ONLY_SCRIPT = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401

signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
names = sorted(signature.structured_input_signature[1])
responses = []
for body in json.load(open(sys.argv[2], encoding="utf-8")):
    body = json.loads(json.dumps(body))
    if "instances" in body:
        columns = {name: [row[name] for row in body["instances"]] for name in names}
    else:
        columns = body["inputs"]
    outputs = signature(**{name: tf.constant(columns[name], dtype=tf.string, shape=[len(columns[name])])
                           for name in names})
    outputs = {name: value.numpy().tolist() for name, value in outputs.items()}
    rows = len(columns[names[0]])
    responses.append({"predictions": [{k: v[i] for k, v in outputs.items()} for i in range(rows)]}
                     if "instances" in body else {"outputs": outputs})
heavy = [m for m in ("torch", "exporter", "targets", "onnxruntime", "sentence_transformers") if m in sys.modules]
print(json.dumps({"responses": responses, "heavy": heavy}))
"""


def test_tfserving_rest_bodies_score_pairs_in_a_tensorflow_only_process(served, reference, tmp_path):
    family, _, result = served
    if family != "unigram":  # a TensorFlow process takes ~30 s to start here: once, on the model of 3 labels
        pytest.skip("run on the unigram (3-label) reranker only")
    rest = result.manifest["targets"]["tfserving"]["rest"]
    pairs = _pairs()[:9]
    bodies = [rest["row"]["body"], rest["columnar"]["body"],
              {"instances": [{"query": q, "document": d} for q, d in pairs]}]
    path = tmp_path / "bodies.json"
    path.write_text(json.dumps(bodies, ensure_ascii=False), encoding="utf-8")
    signature = result.out / "tfserving" / RERANKER_NAME / "1"
    run = subprocess.run([sys.executable, "-c", TF_ONLY_SCRIPT, str(signature), str(path)],
                         capture_output=True, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["heavy"] == []
    row, columnar, corpus = answer["responses"]
    documented = [[item["query"], item["document"]] for item in rest["row"]["body"]["instances"]]
    want = reference.predict(documented, activation_fn=None)
    got_row = np.array([prediction["score"] for prediction in row["predictions"]])
    np.testing.assert_allclose(got_row.reshape(want.shape), want, atol=BARS["tfserving"], rtol=0)
    np.testing.assert_allclose(np.array(columnar["outputs"]["score"]), got_row, atol=0, rtol=0)
    got = np.array([prediction["score"] for prediction in corpus["predictions"]])
    np.testing.assert_allclose(got.reshape(-1), reference.predict(pairs).reshape(-1), atol=BARS["tfserving"], rtol=0)


def test_a_named_tflite_target_is_refused_for_a_bpe_reranker(served, tmp_path):
    family, model, _ = served
    if family != "bpe":
        pytest.skip("WordPiece and Unigram have TFLite kernels")
    with pytest.raises(UnsupportedModelError, match="tflite: .*TFLite has no BPE kernel"):
        exporter.export(model, tmp_path / "out", targets="tflite")
    assert not (tmp_path / "out").exists()
