"""The SavedModel target: signatures, a TF-only process, no Python in the graph, Keras, parity."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from exporter.verify.parity import compare_embeddings, compare_tokens
from exporter.runtime.loaded import keras_layer
from exporter.runtime.savedmodel import SavedModelRunner

MIN_COSINE, MAX_ABS_DIFF = 0.99999, 1e-5
TF_ONLY_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401
model = tf.saved_model.load(sys.argv[1])
texts = json.load(open(sys.argv[2], encoding="utf-8"))
out = model.signatures["serving_default"](text=tf.constant(texts))["sentence_embedding"].numpy()
np.save(sys.argv[3], out)
heavy = [m for m in ("torch", "exporter", "targets", "onnxruntime", "sentence_transformers") if m in sys.modules]
print(json.dumps({"heavy": heavy}))
"""


def test_signatures(bundled_export):
    import tensorflow as tf

    model = tf.saved_model.load(str(bundled_export.out / "savedmodel"))
    serving = model.signatures["serving_default"]
    (spec,) = serving.structured_input_signature[1].values()
    assert spec.name == "text" and spec.dtype == tf.string and spec.shape.as_list() == [None]
    output = serving.structured_outputs["sentence_embedding"]
    assert output.dtype == tf.float32 and output.shape.as_list() == [None, 384]
    assert set(model.signatures["tokenize"].structured_outputs) == {"input_ids", "attention_mask", "token_type_ids"}


def test_parity_figures_at_the_bar(bundled_export):
    parity = bundled_export.manifest["targets"]["savedmodel"]["parity"]
    assert parity["tokens"]["mismatches"] == 0
    assert parity["embeddings"]["min_cosine"] >= MIN_COSINE and parity["embeddings"]["max_abs_diff"] <= MAX_ABS_DIFF
    libs = bundled_export.manifest["libraries"]
    assert libs["tensorflow"] and libs["tensorflow-text"] and libs["onnx-tf"]


def test_tokens_and_embeddings_alone_and_batched(bundled_export, bundled_reference, corpus):
    runner = SavedModelRunner(bundled_export.out / "savedmodel")
    assert compare_tokens(bundled_reference, runner, corpus).mismatches == []
    report = compare_embeddings(bundled_reference, runner, corpus, batch_sizes=(None, 1, 7))
    assert report.passed, report.failures


def test_runs_in_a_process_with_only_tensorflow(bundled_export, bundled_reference, corpus, tmp_path):
    (tmp_path / "texts.json").write_text(json.dumps(corpus), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-c", TF_ONLY_SCRIPT, str(bundled_export.out / "savedmodel"), str(tmp_path / "texts.json"),
         str(tmp_path / "out.npy")], capture_output=True, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "2",
                                                                          "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"heavy": []}
    got, expected = np.load(tmp_path / "out.npy"), bundled_reference.encode(corpus)
    assert np.abs(got - expected).max() <= MAX_ABS_DIFF


WRONG_RANK_SCRIPT = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401
model = tf.saved_model.load(sys.argv[1])
inputs = {"0-D": tf.constant("Hello world"), "2-D": tf.constant([["a b", "c"], ["d", "e f"]]),
          "3-D": tf.constant([[["a"], ["b"]]])}
found = {}
for signature in ("serving_default", "tokenize"):
    for name, text in inputs.items():
        try:
            model.signatures[signature](text=text)
            found[f"{signature} {name}"] = "answered"
        except tf.errors.InvalidArgumentError as exc:
            found[f"{signature} {name}"] = "refused" if "text" in exc.message and "[?]" in exc.message else exc.message
print(json.dumps(found))
"""


def test_signatures_refuse_anything_but_a_vector_of_strings(bundled_export):
    """A 2-D or 3-D tensor was flattened (embeddings of its first N strings), a 0-D one crashed the process."""
    result = subprocess.run([sys.executable, "-c", WRONG_RANK_SCRIPT, str(bundled_export.out / "savedmodel")],
                            capture_output=True, text=True, env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, (result.returncode, result.stderr[-1500:])
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(found.values()) == {"refused"}, found


def test_graph_has_no_python_functions(bundled_export):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((bundled_export.out / "savedmodel/saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    assert not ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc"}
    # the tokenizer is tf-text kernels plus integer ops: the same graph converts to TFLite without Flex
    assert {"FastWordpieceTokenizeWithOffsets", "TFText>ByteSplitWithOffsets", "TFText>FastWordpieceDetokenize"} <= ops
    served = {node.op for function in graph.library.function if "traced_save" not in function.signature.name
              for node in function.node_def}  # TF's checkpoint saver joins shard names; serving never runs it
    assert not served & {"StaticRegexReplace", "RegexReplace", "UnicodeDecodeWithOffsets", "ReduceJoin", "StringJoin"}


def test_empty_batch_and_keras_layer(bundled_export):
    import tensorflow as tf

    runner = SavedModelRunner(bundled_export.out / "savedmodel")
    assert runner.encode([]).shape == (0, 384)
    assert runner.encode([""]).shape == (1, 384)
    layer = keras_layer(bundled_export.out)
    out = layer(tf.constant(["Hello world"]))
    assert out["sentence_embedding"].shape == (1, 384)


def test_dense_layers_become_2d_matmuls_with_the_same_outputs(tiny_model, tmp_path):
    """TensorFlow runs [B, L, K] × W as a broadcast BatchMatMulV2, about half as fast as MatMul (onnx_for_tf.py)."""
    import onnx
    import onnxruntime as ort

    from exporter.graphs.encoder import export_encoder
    from exporter.model import read_model
    from exporter.graphs.onnx_for_tf import weight_matmuls_as_2d
    from exporter.graphs.onnx_tf_compat import ONNX_TF_OPSET

    spec = read_model(tiny_model("dense_tanh", dense=((20, "Tanh", True),), normalize=True))
    original = export_encoder(spec, tmp_path / "encoder.onnx", opset=ONNX_TF_OPSET)
    rewritten = onnx.ModelProto.FromString(original.SerializeToString())
    weights = {init.name for init in original.graph.initializer if len(init.dims) == 2}
    dense = [n for n in original.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    assert weight_matmuls_as_2d(rewritten) == len(dense) > 0
    onnx.checker.check_model(rewritten)
    ids = np.array([[101, 7592, 2088, 102], [101, 7592, 102, 0]], np.int64)
    for batch in (ids, ids[:1]):
        feeds = {"input_ids": batch, "attention_mask": (batch > 0).astype(np.int64),
                 "token_type_ids": np.zeros_like(batch)}
        run = lambda model: ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]  # noqa: E731
        assert np.abs(run(original) - run(rewritten)).max() < 1e-6


def test_savedmodel_has_no_broadcast_weight_products(bundled_export):
    """Only attention's two activation × activation products per layer stay batched (6 layers)."""
    import tensorflow as tf

    model = tf.saved_model.load(str(bundled_export.out / "savedmodel"))
    graph = model.signatures["serving_default"].graph.as_graph_def()
    nodes = [n for f in graph.library.function for n in f.node_def]
    assert sum(n.op == "BatchMatMulV2" for n in nodes) == 12 and sum(n.op == "MatMul" for n in nodes) == 36
