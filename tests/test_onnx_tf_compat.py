"""The onnx-tf workarounds: each one is still needed, and onnx-tf still converts through them.

When a library upgrade makes a shim unnecessary or breaks it, one of these fails and names it.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from exporter.graphs.onnx_tf_compat import ONNX_TF_OPSET, OnnxTfUnavailableError, install_shims, onnx_tf_backend


def test_onnx_mapping_is_still_gone_so_the_shim_is_needed():
    from pathlib import Path

    assert not (Path(onnx.__file__).parent / "mapping.py").exists(), "onnx ships onnx.mapping again: drop the shim"


def test_mapping_tables_hold_what_onnx_tf_reads():
    install_shims()
    assert onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[TensorProto.FLOAT] == np.dtype("float32")
    assert onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype("int64")] == TensorProto.INT64
    assert onnx.mapping.STORAGE_TENSOR_TYPE_TO_FIELD[TensorProto.INT64] == "int64_data"
    storage = onnx.mapping.TENSOR_TYPE_TO_STORAGE_TENSOR_TYPE  # read as in onnx_tf/pb_wrapper.py
    assert onnx.mapping.STORAGE_TENSOR_TYPE_TO_FIELD[storage[TensorProto.FLOAT16]] == "int32_data"
    assert onnx.mapping.STORAGE_TENSOR_TYPE_TO_FIELD[storage[TensorProto.FLOAT]] == "float_data"
    assert onnx.helper.mapping is onnx.mapping


def test_stubbed_modules_fail_clearly_when_used():
    stubbed = install_shims()
    import sys

    for name in stubbed:
        with pytest.raises(OnnxTfUnavailableError, match=name):
            sys.modules[name].anything.at_all()


def test_onnx_tf_converts_an_encoder_shaped_graph():
    backend = onnx_tf_backend()
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], np.eye(4, dtype=np.float32).ravel())
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Erf", ["m"], ["e"]),
             helper.make_node("Unsqueeze", ["e"], ["u"], axes=[1]), helper.make_node("Squeeze", ["u"], ["s"], axes=[1]),
             helper.make_node("Softmax", ["s"], ["y"], axis=-1)]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", ONNX_TF_OPSET)])
    data = np.arange(8, dtype=np.float32).reshape(2, 4) / 8
    got = backend.prepare(model).run({"x": data})["y"]
    erf = np.vectorize(math.erf)(data)
    expected = np.exp(erf) / np.exp(erf).sum(axis=-1, keepdims=True)
    assert np.allclose(got, expected, atol=1e-6)


def test_weights_become_variables_built_from_arrays_and_small_initializers_constants():
    """Shim 4: onnx-tf alone makes every initializer a constant through a Python list of floats."""
    import tensorflow as tf

    from exporter.graphs.onnx_tf_compat import VARIABLE_MIN_ELEMENTS

    backend = onnx_tf_backend()
    weight = np.random.default_rng(0).standard_normal((64, VARIABLE_MIN_ELEMENTS // 64)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])
    inits = [onnx.numpy_helper.from_array(weight, "w"), onnx.numpy_helper.from_array(np.array([-1], np.int64), "s")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Reshape", ["m", "s"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", ONNX_TF_OPSET)])
    module = backend.prepare(model).tf_module
    assert isinstance(module.initializer_dict["w"], tf.Variable) and not module.initializer_dict["w"].trainable
    assert not isinstance(module.initializer_dict["s"], tf.Variable)
    assert [v.name.split(":")[0] for v in module.variables] == ["w"]  # tracked: tf.saved_model.save writes it
    data = np.ones((2, 64), np.float32)
    got = module(x=tf.constant(data))["y"].numpy()
    assert np.allclose(got, (data @ weight).ravel(), rtol=1e-5)
