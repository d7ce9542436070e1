"""The Triton model repository: configs read with Triton's own schema, matched against the artifacts'
real signatures, and the repository's ONNX model run with the tensors a Triton request carries."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from google.protobuf import text_format

import exporter
from exporter.cli import main
from exporter.errors import InvalidOptionError
from exporter.verify.parity import compare_embeddings
from exporter.runtime.onnx import OnnxRunner, ort_session
from exporter.runtime.triton import TritonRequestRunner, model_config_schema, read_model_config
from exporter.verify.reference import ReferenceRunner
from targets.triton import DEFAULT_OP_LIBRARY, model_folders

MIN_COSINE, MAX_ABS_DIFF = 0.99999, 1e-5
NAME = "all-MiniLM-L6-v2"


def _onnx_dims(value_info) -> list[int]:
    return [-1 if d.dim_param or not d.dim_value else d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_every_config_parses_against_tritons_schema(bundled_export):
    configs = sorted((bundled_export.out / "triton").glob("*/config.pbtxt"))
    assert [c.parent.name for c in configs] == [f"{NAME}_onnx", f"{NAME}_tf"]
    schema = model_config_schema()
    assert "model_operations" in schema.ModelConfig.DESCRIPTOR.fields_by_name
    with pytest.raises(text_format.ParseError):  # the schema is strict: a misspelt field is an error
        text_format.Parse('name: "x"\nmax_batch: 4\n', schema.ModelConfig())
    for path in configs:
        config = read_model_config(path)
        assert config.name == path.parent.name
        assert config.max_batch_size == 64 and config.HasField("dynamic_batching")
        assert [(i.name, schema.DataType.Name(i.data_type)) for i in config.input] == [("text", "TYPE_STRING")]
        assert [(o.name, schema.DataType.Name(o.data_type), list(o.dims)) for o in config.output] == [
            ("sentence_embedding", "TYPE_FP32", [384])]
        assert (path.parent / "1").is_dir()


def test_onnx_config_matches_the_models_signature(bundled_export):
    folder = model_folders(bundled_export.out)["onnx"]
    config = read_model_config(folder / "config.pbtxt")
    assert config.platform == "onnxruntime_onnx"
    assert list(config.model_operations.op_library_filename) == [DEFAULT_OP_LIBRARY]
    model = onnx.load(str(folder / "1" / "model.onnx"), load_external_data=False)
    (text,), (embedding,) = model.graph.input, model.graph.output
    assert text.type.tensor_type.elem_type == onnx.TensorProto.STRING
    assert embedding.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    # with batching, Triton expects the model's shape to be [-1] + dims, or [-1] + reshape.shape where the
    # config reshapes: a request's [n, 1] reaches the graph as [n]
    (text_config,) = config.input
    assert list(text_config.dims) == [1] and text_config.HasField("reshape") and list(text_config.reshape.shape) == []
    assert _onnx_dims(text) == [-1] + list(text_config.reshape.shape) == [-1]
    assert _onnx_dims(embedding) == [-1] + list(config.output[0].dims) == [-1, 384]
    assert {n.domain for n in model.graph.node} >= {"ai.onnx.contrib"}


def test_onnx_repository_model_is_onnx_model_with_its_own_data_file(bundled_export):
    """Not hard links: onnx.load refuses external data with more than one link, on either path."""
    folder = model_folders(bundled_export.out)["onnx"] / "1"
    served = onnx.load(str(folder / "model.onnx"))
    proven = onnx.load(str(bundled_export.out / "onnx" / "model.onnx"))
    assert [n.SerializeToString() for n in served.graph.node] == [n.SerializeToString() for n in proven.graph.node]
    assert all(np.array_equal(onnx.numpy_helper.to_array(a), onnx.numpy_helper.to_array(b))
               for a, b in zip(served.graph.initializer, proven.graph.initializer, strict=True))
    assert (folder / "model.onnx.data").stat().st_nlink == 1
    assert (folder / "model.onnx.data").stat().st_size < (bundled_export.out / "onnx/model.onnx.data").stat().st_size


def test_tf_config_matches_the_signature_and_names_the_tf_text_libraries(bundled_export):
    import tensorflow as tf

    from exporter.verify.tf_ops import savedmodel_op_sources

    folder = model_folders(bundled_export.out)["tf"]
    config = read_model_config(folder / "config.pbtxt")
    assert config.platform == "tensorflow_savedmodel" and "deprecated" in (folder / "config.pbtxt").read_text()
    signature = tf.saved_model.load(str(folder / "1" / "model.savedmodel")).signatures["serving_default"]
    (spec,) = signature.structured_input_signature[1].values()
    (text,) = config.input
    # the request's [n, 1] becomes [n] + reshape.shape, which must be the signature's shape
    assert list(text.dims) == [1] and list(text.reshape.shape) == []
    assert [None] + list(text.reshape.shape) == spec.shape.as_list()
    assert signature.structured_outputs["sentence_embedding"].shape.as_list() == [None] + list(config.output[0].dims)
    needed = sorted({s.split(":")[1] for s in savedmodel_op_sources(folder / "1" / "model.savedmodel").values()
                     if s.startswith("tensorflow-text:")})
    assert needed and [p.rsplit("/", 1)[1] for p in config.model_operations.op_library_filename] == needed


def test_repository_onnx_model_runs_with_triton_request_tensors(bundled_export, bundled_reference, corpus):
    """Independent of TritonRequestRunner (whose parity on the whole corpus the export recorded)."""
    corpus = corpus[::2]
    folder = model_folders(bundled_export.out)["onnx"]
    session = ort_session(folder / "1" / "model.onnx")
    config = read_model_config(folder / "config.pbtxt")
    max_batch = config.max_batch_size // 2  # several requests, as a client sends

    def reshaped(request):  # Triton's reshape of a [n, 1] request for the backend: [n] + reshape.shape
        return request.reshape([len(request)] + list(config.input[0].reshape.shape))

    requests = [corpus[i:i + max_batch] for i in range(0, len(corpus), max_batch)]
    got = np.concatenate([session.run(None, {"text": reshaped(np.array(r, dtype=object).reshape(len(r), 1))})[0]
                          for r in requests])
    expected = bundled_reference.encode(corpus)
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= MIN_COSINE and np.abs(got - expected).max() <= MAX_ABS_DIFF
    empty = session.run(None, {"text": reshaped(np.zeros((0, 1), dtype=object))})[0]
    assert empty.shape == (0, 384)
    with pytest.raises(Exception, match="(?i)rank|dimension|shape"):  # the request's [n, 1] itself is refused
        session.run(None, {"text": np.array(corpus[:2], dtype=object).reshape(2, 1)})


def test_parity_of_both_triton_models_is_recorded(bundled_export):
    parity = bundled_export.manifest["targets"]["triton"]["parity"]
    for figures in (parity["embeddings"], parity["variants"]["tf"]):
        assert figures["passed"] and figures["batch_sizes"] == ["all"]  # the files are onnx's and savedmodel's
        assert figures["min_cosine"] >= MIN_COSINE and figures["max_abs_diff"] <= MAX_ABS_DIFF
    details = bundled_export.manifest["targets"]["triton"]
    assert details["name"] == NAME and set(details["models"]) == {f"{NAME}_onnx", f"{NAME}_tf"}


def test_check_reruns_every_layout_runner(tiny_model, tmp_path):
    model = tiny_model("bert_uncased_mean_norm")
    exporter.export(model, tmp_path / "out", targets=["triton", "tfserving"], check=False, variants=False)
    result = exporter.check(tmp_path / "out")
    rows = {sub.target: sub for row in result.rows for sub in (row, *row.variant_rows())}
    assert set(rows) == {"onnx", "savedmodel", "triton", "triton:tf", "tfserving"}
    assert result.passed and all(row.parity["embeddings"]["max_abs_diff"] <= MAX_ABS_DIFF for row in rows.values())


def test_settings_name_no_batching_and_no_tf_model_without_savedmodel(tiny_model, tmp_path, corpus):
    model = tiny_model("bert_uncased_mean_norm")
    result = exporter.export(model, tmp_path / "out", targets=["triton"], check=False, options={
        "name": "my.model-1", "triton_op_library": "/srv/lib/libortextensions.so", "triton_max_batch_size": 0})
    assert [row.target for row in result.rows] == ["onnx", "triton"]
    assert sorted(p.name for p in (result.out / "triton").iterdir()) == ["my.model-1_onnx"]
    config = read_model_config(result.out / "triton/my.model-1_onnx/config.pbtxt")
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    # without batching a request is the graph's own [n] (no reshape)
    assert list(config.input[0].dims) == [-1] and not config.input[0].HasField("reshape")
    assert list(config.output[0].dims) == [-1, 32]
    assert list(config.model_operations.op_library_filename) == ["/srv/lib/libortextensions.so"]
    runner = TritonRequestRunner(result.out / "triton/my.model-1_onnx")
    assert runner.request_shape(5) == [5]
    report = compare_embeddings(ReferenceRunner(model), runner, corpus[:20], batch_sizes=(None, 3))
    assert report.passed, report.failures
    np.testing.assert_array_equal(runner.encode(corpus[:4]), OnnxRunner(result.out / "onnx/model.onnx").encode(corpus[:4]))


@pytest.mark.parametrize("options, message", [
    ({"name": "bad/name"}, "model name"),
    ({"name": "-dash-first"}, "model name"),
    ({"triton_op_library": "relative/lib.so"}, "absolute path"),
    ({"triton_max_batch_size": -1}, "integer from 0"),
    ({"triton_max_batch_size": 2**31}, "max_batch_size is an int32"),
])
def test_bad_settings_fail_before_anything_is_built(options, message, tiny_model, tmp_path):
    with pytest.raises(InvalidOptionError, match=message):
        exporter.export(tiny_model("bert_uncased_mean_norm"), tmp_path / "out", targets=["triton"], options=options)
    assert list(tmp_path.iterdir()) == []


def test_cli_maps_serving_flags(capsys, tiny_model, tmp_path):
    code = main([str(tiny_model("bert_uncased_mean_norm")), "-o", str(tmp_path / "out"), "--targets", "triton",
                 "--no-check", "--name", "tiny", "--triton-max-batch-size", "8", "--triton-op-library", "/x/o.so"])
    assert code == 0
    config = read_model_config(tmp_path / "out/triton/tiny_onnx/config.pbtxt")
    assert config.max_batch_size == 8 and list(config.model_operations.op_library_filename) == ["/x/o.so"]
    assert main([str(tiny_model("bert_uncased_mean_norm")), "-o", str(tmp_path / "bad"), "--targets", "triton",
                 "--name", "a b"]) == 2
    assert "invalid-option" in capsys.readouterr().err


def test_configs_are_schema_messages_so_any_path_round_trips(tmp_path):
    """config.pbtxt and models.config are built as Triton's ModelConfig and TF Serving's ModelServerConfig and printed
    by protobuf's text format: a path with a backslash, a quote, a space or non-ASCII reads back exactly (string
    formatting wrote ``"\\x"`` escapes the parser then decoded into other paths)."""
    from exporter.runtime.tfserving import read_models_config
    from targets.tfserving import models_config
    from targets.triton import model_config

    odd = ['/opt/ext\\lib/libortextensions.so', '/opt/"quoted" dir/lib.so', "/opt/bibliothèque/lib.so"]
    path = tmp_path / "config.pbtxt"
    path.write_text(model_config(name="m_tf", platform="tensorflow_savedmodel", max_batch_size=8, inputs=["text"],
                                 input_dims=[1], input_reshape=[], outputs={"sentence_embedding": [384]},
                                 op_libraries=odd, comment="test"),
                    encoding="utf-8")
    config = read_model_config(path)
    assert list(config.model_operations.op_library_filename) == odd
    (text,) = config.input
    assert text.HasField("reshape") and list(text.reshape.shape) == [] and config.HasField("dynamic_batching")
    served = tmp_path / "models.config"
    served.write_text(models_config("m", '/srv/"models"\\x'), encoding="utf-8")
    (entry,) = read_models_config(served).model_config_list.config
    assert (entry.name, entry.base_path, entry.model_platform) == ("m", '/srv/"models"\\x/m', "tensorflow")
