"""Weight-only MatMulNBits (exporter/graphs/quantize_nbits.py): packing, any architecture, external data."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from exporter.graphs.quantize_nbits import WeightsNotLoaded, blockwise, dequantized, quantizable, quantize_nbits


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def _decoder_mlp(k: int = 96, hidden: int = 256, seed: int = 0) -> onnx.ModelProto:
    """A decoder block's shape without attention: RMSNorm-free SwiGLU MLP (gate, up, down) and a self-product
    of activations (x @ xᵀ, as attention scores are: no constant weight, so it stays a MatMul)."""
    rng = np.random.default_rng(seed)
    weights = {name: (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)
               for name, shape in (("gate", (k, hidden)), ("up", (k, hidden)), ("down", (hidden, k)))}
    nodes = [helper.make_node("MatMul", ["x", "gate"], ["g"], name="/layers.0/mlp/gate_proj/MatMul"),
             helper.make_node("MatMul", ["x", "up"], ["u"], name="/layers.0/mlp/up_proj/MatMul"),
             helper.make_node("Sigmoid", ["g"], ["sg"]), helper.make_node("Mul", ["g", "sg"], ["silu"]),
             helper.make_node("Mul", ["silu", "u"], ["h"]),
             helper.make_node("MatMul", ["h", "down"], ["d"], name="/layers.0/mlp/down_proj/MatMul"),
             helper.make_node("Transpose", ["d"], ["dt"], perm=[1, 0]),
             helper.make_node("MatMul", ["d", "dt"], ["y"], name="/scores/MatMul")]
    graph = helper.make_graph(nodes, "decoder_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["t", k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["t", "t"])],
                              [numpy_helper.from_array(w, name) for name, w in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


@pytest.mark.parametrize("bits", [4, 8])
def test_the_packed_weights_are_the_ones_onnxruntime_multiplies_by(bits):
    """At accuracy_level 0 (fp32 arithmetic) the kernel's product is x @ the dequantized weight: the packing
    (nibble order, blocks, K padded to a whole block, zero point 2**(bits-1)) is the one MatMulNBits reads."""
    rng = np.random.default_rng(bits)
    k, n = 100, 48  # K not a multiple of the block: the last block is padded
    w = rng.standard_normal((k, n)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    x = rng.standard_normal((5, k)).astype(np.float32)
    blob, scales = blockwise(w, bits=bits, block_size=32)
    result = quantize_nbits(model, quantizable(model), bits=bits, block_size=32, accuracy_level=0)
    np.testing.assert_allclose(_run(result.model, x), x @ dequantized(blob, scales, bits=bits, k=k), rtol=1e-4,
                               atol=1e-4)
    step = np.repeat(np.abs(scales), 32, axis=1)[:, :k].T  # one quantization step of each weight
    # rounding: half a step; at 4 bits a value opposite the block's extreme may be clipped at 7 (not -8): one step
    bound = step / 2 if bits == 8 else step
    assert (np.abs(dequantized(blob, scales, bits=bits, k=k) - w) <= bound * (1 + 1e-5)).all()


def test_every_matmul_with_a_constant_weight_of_a_decoder_shaped_graph_is_rewritten():
    model = _decoder_mlp()
    names = quantizable(model)
    assert names == ["/layers.0/mlp/gate_proj/MatMul", "/layers.0/mlp/up_proj/MatMul", "/layers.0/mlp/down_proj/MatMul"]
    result = quantize_nbits(model, names, bits=8, block_size=32)
    ops = [n.op_type for n in result.model.graph.node]
    assert ops.count("MatMulNBits") == 3 and ops.count("MatMul") == 1  # the product of two activations stays
    assert not {"gate", "up", "down"} & {i.name for i in result.model.graph.initializer}
    x = np.random.default_rng(1).standard_normal((7, 96)).astype(np.float32)
    want, got = _run(model, x).ravel(), _run(result.model, x).ravel()
    assert want @ got / np.linalg.norm(want) / np.linalg.norm(got) > 0.999


def test_weights_in_external_data_are_read_from_the_file_or_refused_by_name(tmp_path):
    """A model past 2 GB keeps its weights in model.onnx.data: loaded without them, the pass reads each weight
    from the file given base_dir, and without base_dir names the MatMul and the weight it cannot read."""
    model = _decoder_mlp()
    onnx.save(model, str(tmp_path / "model.onnx"), save_as_external_data=True, location="model.onnx.data",
              size_threshold=0)
    bare = onnx.load(str(tmp_path / "model.onnx"), load_external_data=False)
    with pytest.raises(WeightsNotLoaded, match=r"gate_proj/MatMul.*'gate'.*base_dir"):
        quantize_nbits(bare, quantizable(bare), bits=8, block_size=32)
    from_file = quantize_nbits(bare, quantizable(bare), bits=8, block_size=32, base_dir=tmp_path)
    fresh = _decoder_mlp()  # onnx.save above moved model's tensors out in place
    in_memory = quantize_nbits(fresh, quantizable(fresh), bits=8, block_size=32)
    assert [numpy_helper.to_array(i).tobytes() for i in from_file.model.graph.initializer] == \
        [numpy_helper.to_array(i).tobytes() for i in in_memory.model.graph.initializer]


@pytest.mark.parametrize(("bits", "block_size", "problem"), [(3, 32, "bits 3"), (8, 24, "block_size 24")])
def test_settings_the_kernel_does_not_take_are_refused(bits, block_size, problem):
    model = _decoder_mlp()
    with pytest.raises(ValueError, match=problem):
        quantize_nbits(model, quantizable(model), bits=bits, block_size=block_size)
