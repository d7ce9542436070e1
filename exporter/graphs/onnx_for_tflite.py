"""Rewrites of the encoder's ONNX graph so that onnx-tf's TensorFlow graph converts to TFLite builtins.

Both are the same function computed with other ops; the SavedModel is built from the rewritten
graph, so the TFLite files are a plain conversion of the SavedModel. tests/test_tflite.py shows
each rewrite is needed (the conversion keeps an op TFLite has no kernel for without it).

**GELU.** TFLite has no Erf kernel. Its converter fuses ``0.5 * x * (1 + erf(x / sqrt(2)))`` into the GELU
builtin, but torch exports ``(x * (1 + erf(x / sqrt(2)))) * 0.5`` and, once onnx-tf has
converted it, the trailing ``* 0.5`` is folded into the next layer's weights before the fusion
runs: the graph keeps ``tf.Erf`` and cannot convert without Flex. Computing ``x * 0.5`` first
is the same function (one rounding moved) and fuses.

**Boolean Expand.** onnx-tf expands a bool tensor as ``cast(x, int8) * ones`` and TFLite's MUL
has no plain int8 kernel; expanding an int32 copy and casting back to bool converts to builtins.

**Padded positions after the embeddings** (only architectures that ask for it, e.g. MPNet): a pad
token whose word and position embeddings are both zero rows (MPNet's ``padding_idx``) has zero
variance in the embedding LayerNorm; the fp16 TFLite file stores its epsilon (1e-5, a float16
subnormal) as 0, so the pad positions become 0/0 = NaN and every padded text's embedding NaN
through attention (NaN × 0 is NaN). Setting the pad positions to 0 after the LayerNorm changes no
real token (pad keys are masked, pooling skips them) and keeps NaN out.

**Integer Abs** (only architectures that ask for it, e.g. MPNet's relative-position buckets):
TFLite's ABS has no int64 kernel, so the conversion keeps ``tf.Abs`` (a Flex op); ``Max(x, -x)``
is the same integers and converts to builtins.

**Integer Div** (only architectures that ask for it, the rotary ``rotate_half`` of Qwen3, NomicBERT and ModernBERT, and ModernBERT's GeGLU ``chunk``, ``x.shape[-1] // 2``):
onnx-tf divides integers with ``tf.math.truediv``, a float64 ``RealDiv`` TFLite has no kernel for;
dividing float32 copies and casting back (truncation, as ONNX's integer Div) is the same integers for
the shape arithmetic it meets (non-negative, far below 2**24).
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _constant(model: onnx.ModelProto, name: str) -> float | None:
    for init in model.graph.initializer:
        if init.name == name:
            value = numpy_helper.to_array(init)
            return float(value) if value.size == 1 else None
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name and node.attribute[0].name == "value":
            value = numpy_helper.to_array(node.attribute[0].t)
            return float(value) if value.size == 1 else None
    return None


def tflite_friendly(model: onnx.ModelProto) -> dict[str, int]:
    """Apply every rewrite in place; return how many nodes each one changed."""
    return {"gelu_reordered": reorder_gelu(model), "bool_expand_via_int32": expand_bool_via_int32(model)}


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    return {v.name: v.type.tensor_type.elem_type
            for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}


def integer_abs_as_max(model: onnx.ModelProto) -> int:
    """Rewrite every ``Abs`` of an integer tensor in place to ``Max(x, Neg(x))``.

    Returns:
        How many Abs nodes were rewritten.
    """
    types = _types(model)
    integers = {onnx.TensorProto.INT32, onnx.TensorProto.INT64}
    rewritten = 0
    for node in [n for n in model.graph.node if n.op_type == "Abs" and types.get(n.input[0]) in integers]:
        negated = f"{node.name or node.output[0]}/negated"
        position = list(model.graph.node).index(node)
        model.graph.node.insert(position, helper.make_node("Neg", [node.input[0]], [negated], name=negated))
        node.op_type = "Max"
        node.input.append(negated)
        rewritten += 1
    return rewritten


def integer_div_in_float32(model: onnx.ModelProto) -> int:
    """Rewrite every ``Div`` of integer tensors in place to Cast(float32) → Div → Cast(back).

    Returns:
        How many Div nodes were rewritten.
    """
    types = _types(model)
    integers = {onnx.TensorProto.INT32, onnx.TensorProto.INT64}
    rewritten = 0
    for div in [n for n in model.graph.node if n.op_type == "Div" and types.get(n.input[0]) in integers]:
        integer_type, result = types[div.input[0]], div.output[0]
        position = list(model.graph.node).index(div)
        for index, name in enumerate(list(div.input)):
            as_float = f"{div.name}/input{index}_float32"
            model.graph.node.insert(position, helper.make_node("Cast", [name], [as_float], to=onnx.TensorProto.FLOAT,
                                                               name=as_float))
            position += 1
            div.input[index] = as_float
        div.output[0] = f"{div.name}/quotient_float32"
        model.graph.node.insert(position + 1, helper.make_node("Cast", [div.output[0]], [result], to=integer_type,
                                                               name=f"{div.name}/truncated"))
        rewritten += 1
    return rewritten


def expand_bool_via_int32(model: onnx.ModelProto) -> int:
    """Rewrite every ``Expand`` of a bool tensor in place to Cast(int32) → Expand → Cast(bool).

    Returns:
        How many Expand nodes were rewritten.
    """
    types = _types(model)
    rewritten = 0
    for expand in [n for n in model.graph.node if n.op_type == "Expand"]:
        if types.get(expand.input[0]) != onnx.TensorProto.BOOL:
            continue
        source, result = expand.input[0], expand.output[0]
        as_int, expanded = f"{expand.name}/as_int32", f"{expand.name}/expanded_int32"
        position = list(model.graph.node).index(expand)
        model.graph.node.insert(position, helper.make_node("Cast", [source], [as_int], to=onnx.TensorProto.INT32,
                                                           name=as_int))
        expand.input[0], expand.output[0] = as_int, expanded
        model.graph.node.insert(position + 2, helper.make_node("Cast", [expanded], [result], to=onnx.TensorProto.BOOL,
                                                               name=f"{expand.name}/as_bool"))
        rewritten += 1
    return rewritten


def reorder_gelu(model: onnx.ModelProto) -> int:
    """Rewrite every ``Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)`` in place to ``Mul(x * 0.5, ...)``.

    Returns:
        How many GELUs were rewritten.
    """
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def only_consumer(name: str, op_type: str) -> onnx.NodeProto | None:
        found = consumers.get(name, [])
        return found[0] if len(found) == 1 and found[0].op_type == op_type else None

    half = "st_exporter_gelu_half"
    rewritten = 0
    for erf in [n for n in graph.node if n.op_type == "Erf"]:
        div = producer.get(erf.input[0])
        add = only_consumer(erf.output[0], "Add")
        inner = add and only_consumer(add.output[0], "Mul")
        outer = inner and only_consumer(inner.output[0], "Mul")
        if not (div is not None and div.op_type == "Div" and outer is not None):
            continue
        x = div.input[0]
        others = {"add": [i for i in add.input if i != erf.output[0]],
                  "inner": [i for i in inner.input if i != add.output[0]],
                  "outer": [i for i in outer.input if i != inner.output[0]]}
        if not (math.isclose(_constant(model, div.input[1]) or 0, math.sqrt(2), rel_tol=1e-6)
                and others["inner"] == [x] and len(others["add"]) == 1 and _constant(model, others["add"][0]) == 1.0
                and len(others["outer"]) == 1 and _constant(model, others["outer"][0]) == 0.5):
            continue
        scaled = f"{inner.output[0]}/x_half"
        position = list(graph.node).index(inner)
        graph.node.insert(position, helper.make_node("Mul", [x, half], [scaled], name=f"{inner.name}/x_half"))
        inner.input[:] = [scaled, add.output[0]]
        outer.op_type = "Identity"
        outer.input[:] = [inner.output[0]]
        rewritten += 1
    if rewritten:
        graph.initializer.append(numpy_helper.from_array(np.array(0.5, np.float32), half))
    return rewritten


def pad_positions_zeroed(model: onnx.ModelProto, *, scope: str) -> int:
    """Rewrite in place: every output leaving the nodes named ``scope…`` is 0 where ``attention_mask`` is 0.

    Returns:
        How many outputs were rewritten.
    """
    graph = model.graph
    inside = [n for n in graph.node if n.name.startswith(scope)]
    outside = [n for n in graph.node if not n.name.startswith(scope)]
    leaving = [(n, out) for n in inside for out in n.output if any(out in u.input for u in outside)]
    opset = next(i.version for i in model.opset_import if i.domain in ("", "ai.onnx"))
    for producer, out in leaving:
        names = {part: f"{out}/pad_zeroed/{part}" for part in ("keep", "keep3", "axes", "zero", "out")}
        graph.initializer.append(numpy_helper.from_array(np.array(0.0, np.float32), names["zero"]))
        unsqueeze = (helper.make_node("Unsqueeze", [names["keep"]], [names["keep3"]], axes=[2]) if opset < 13 else
                     helper.make_node("Unsqueeze", [names["keep"], names["axes"]], [names["keep3"]]))
        if opset >= 13:
            graph.initializer.append(numpy_helper.from_array(np.array([2], np.int64), names["axes"]))
        new_nodes = [helper.make_node("Cast", ["attention_mask"], [names["keep"]], to=onnx.TensorProto.BOOL),
                     unsqueeze, helper.make_node("Where", [names["keep3"], out, names["zero"]], [names["out"]])]
        for consumer in outside:
            consumer.input[:] = [names["out"] if name == out else name for name in consumer.input]
        position = list(graph.node).index(producer) + 1
        for offset, node in enumerate(new_nodes):
            graph.node.insert(position + offset, node)
    return len(leaving)

