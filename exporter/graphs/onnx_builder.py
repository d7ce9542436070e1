"""A small helper to write ONNX graphs by hand: unique names, constants, custom-op domains."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CONTRIB = "ai.onnx.contrib"
ML = "ai.onnx.ml"


class GraphBuilder:
    """Collects nodes and initializers; ``op`` returns the output name(s) of the node it adds."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._ids = itertools.count()

    def name(self, hint: str) -> str:
        return f"{self.prefix}/{hint}_{next(self._ids)}"

    def const(self, value: Any, hint: str = "const", dtype: Any = None) -> str:
        array = np.array(value, dtype=dtype if dtype is not None else (object if isinstance(value, str) or (
            isinstance(value, list) and value and isinstance(value[0], str)) else None))
        name = self.name(hint)
        if array.dtype == object:
            tensor = helper.make_tensor(name, TensorProto.STRING, array.shape,
                                        [s.encode("utf-8") for s in array.reshape(-1)])
        else:
            tensor = numpy_helper.from_array(array, name)
        self.initializers.append(tensor)
        return name

    def op(self, op_type: str, inputs: list[str], *, outputs: int = 1, domain: str = "", **attrs: Any):
        names = [self.name(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, domain=domain or None, **attrs))
        return names[0] if outputs == 1 else names

    def contrib(self, op_type: str, inputs: list[str], *, outputs: int = 1, **attrs: Any):
        return self.op(op_type, inputs, outputs=outputs, domain=CONTRIB, **attrs)

    def rename(self, source: str, target: str) -> None:
        """Expose ``source`` under the graph output name ``target``."""
        self.nodes.append(helper.make_node("Identity", [source], [target]))


def make_model(graph: onnx.GraphProto, *, opset: int, ir_version: int, domains: dict[str, int]) -> onnx.ModelProto:
    """Return a model with the default opset and every extra domain the graph uses."""
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in domains.items()]
    model = helper.make_model(graph, opset_imports=imports, producer_name="st-exporter")
    model.ir_version = ir_version
    return model


def ones_at(b: GraphBuilder, size: str, indices: str, **attrs: Any) -> str:
    """Return an int64 vector of shape ``size``: 1 at ``indices`` (summed with reduction="add"), else 0."""
    zeros = b.op("ConstantOfShape", [size], value=helper.make_tensor("zero", TensorProto.INT64, [1], [0]))
    ones = b.op("Expand", [b.const([1]), b.op("Shape", [indices])])
    return b.op("ScatterElements", [zeros, indices, ones], **attrs)
