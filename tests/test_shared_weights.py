"""ONNX external data shared by several graphs (exporter/graphs/shared_weights.py)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from exporter.graphs.shared_weights import ALIGNMENT, DATA_FILE, SharedWeights


def _graph(weight: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, weight.shape[0]])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, weight.shape[1]])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    graph = helper.make_graph(nodes, "g", [x], [y], [numpy_helper.from_array(weight, "w"),
                                                     numpy_helper.from_array(bias, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_each_tensor_is_stored_once_and_every_graph_runs_from_the_shared_file(tmp_path):
    rng = np.random.default_rng(0)
    shared, other = (rng.standard_normal((64, 40)).astype(np.float32) for _ in range(2))  # 10,240 bytes
    bias = np.ones(40, np.float32)  # 128 bytes: stays inside the graph
    weights = SharedWeights(tmp_path / DATA_FILE)
    first = weights.save(_graph(shared, bias), tmp_path / "first.onnx")
    second = weights.save(_graph(shared, bias), tmp_path / "second.onnx")
    assert (tmp_path / DATA_FILE).stat().st_size == shared.nbytes  # the second graph added nothing
    third = weights.save(_graph(other, bias), tmp_path / "third.onnx")
    assert (tmp_path / DATA_FILE).stat().st_size == 3 * ALIGNMENT + other.nbytes  # the new tensor starts on a page
    x = rng.standard_normal((3, 64)).astype(np.float32)
    for path, w in ((first, shared), (second, shared), (third, other)):
        onnx.checker.check_model(str(path))
        model = onnx.load(str(path), load_external_data=False)
        assert [t.data_location for t in model.graph.initializer] == [TensorProto.EXTERNAL, TensorProto.DEFAULT]
        (got,) = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
        assert np.allclose(got, x @ w + bias, atol=1e-5)


def test_a_graph_is_saved_only_beside_its_data(tmp_path):
    weights = SharedWeights(tmp_path / DATA_FILE)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(ValueError, match="beside its external data"):
        weights.save(_graph(np.zeros((64, 32), np.float32), np.zeros(32, np.float32)),
                     tmp_path / "elsewhere" / "g.onnx")


def test_a_graph_pointing_to_another_folders_data_file_of_the_same_name_is_copied(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    weight = np.arange(64 * 40, dtype=np.float32).reshape(64, 40)
    SharedWeights(first / DATA_FILE).save(_graph(weight, np.zeros(40, np.float32)), first / "g.onnx")
    model = onnx.load(str(first / "g.onnx"), load_external_data=False)
    copy = SharedWeights(second / DATA_FILE)
    copy.save(copy.externalize(model, base_dir=first), second / "g.onnx")
    assert (second / DATA_FILE).read_bytes() == (first / DATA_FILE).read_bytes()
    (got,) = ort.InferenceSession(str(second / "g.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": np.ones((1, 64), np.float32)})
    assert np.allclose(got, weight.sum(0, keepdims=True))


def test_a_hard_linked_data_file_is_still_read(tmp_path):
    """`st-export --add` links the previous export's files: onnx's own loader refuses such a file."""
    import os

    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    weight = np.ones((64, 40), np.float32)
    SharedWeights(first / DATA_FILE).save(_graph(weight, np.zeros(40, np.float32)), first / "g.onnx")
    os.link(first / DATA_FILE, tmp_path / "link.data")
    with pytest.raises(Exception, match="hard link"):
        onnx.load(str(first / "g.onnx"))
    copy = SharedWeights(second / DATA_FILE)
    copy.save(copy.externalize(onnx.load(str(first / "g.onnx"), load_external_data=False), base_dir=first),
              second / "g.onnx")
    assert onnx.numpy_helper.to_array(onnx.load(str(second / "g.onnx")).graph.initializer[0]).sum() == weight.sum()
