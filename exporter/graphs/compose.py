"""String-in graphs: a tokenizer graph and an encoder graph merged into one, an empty batch allowed.

The encoder's attention reshapes cannot take a batch of 0 ([0, 0, -1, 32] is ambiguous), so an empty
batch runs one empty row and the outputs are sliced back to N rows.
"""
from __future__ import annotations

import onnx
from onnx import compose

from . import TOKEN_NAMES
from .onnx_builder import GraphBuilder


def _at_least_one_row(b: GraphBuilder, name: str) -> tuple[str, str]:
    """Return (the rows of the string tensor ``name``, ``name`` with one "" appended when it has none)."""
    rows = b.op("Shape", [name])
    missing = b.op("Sub", [b.const([1]), b.op("Min", [rows, b.const([1])])])
    filler = b.op("Slice", [b.const([""], "empty_text"), b.const([0]), missing])
    return rows, b.op("Concat", [name, filler], axis=0)


def _merged(tokenizer: onnx.ModelProto, encoder: onnx.ModelProto, outputs: list[str]) -> onnx.ModelProto:
    encoder = compose.add_prefix(encoder, "encoder/")
    io_map = [(name, f"encoder/{name}") for name in TOKEN_NAMES]
    return compose.merge_models(tokenizer, encoder, io_map=io_map, outputs=[f"encoder/{name}" for name in outputs])


def _wired(merged: onnx.ModelProto, b: GraphBuilder, inputs: dict[str, str], rows: str,
           outputs: list[str]) -> onnx.ModelProto:
    """Return ``merged`` reading ``inputs`` (graph input → its padded tensor) and each output sliced to ``rows``."""
    graph = merged.graph
    for node in graph.node:
        node.input[:] = [inputs.get(name, name) for name in node.input]
    prefix = list(b.nodes)
    for name in outputs:
        b.op("Slice", [f"encoder/{name}", b.const([0]), rows, b.const([0])])
        b.nodes[-1].output[:] = [name]
    nodes = prefix + list(graph.node) + b.nodes[len(prefix):]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(b.initializers)
    for output in graph.output:
        output.name = output.name.removeprefix("encoder/")
    graph.name = "st_exporter_string_model"
    return merged


def compose_string_model(tokenizer: onnx.ModelProto, encoder: onnx.ModelProto, *, prompt: str = "",
                         outputs: tuple[str, ...] = ("sentence_embedding",)) -> onnx.ModelProto:
    """Return tokenizer ∘ encoder: ``text`` [N] → ``outputs`` (``sentence_embedding`` [N, D]) in one graph.

    The model's default prompt is prepended to every text, as ``encode`` does.
    """
    merged = _merged(tokenizer, encoder, list(outputs))
    b = GraphBuilder("batch")
    rows, padded = _at_least_one_row(b, "text")
    if prompt:
        padded = b.op("StringConcat", [b.const([prompt], "prompt"), padded])
    return _wired(merged, b, {"text": padded}, rows, list(outputs))


def compose_pair_model(tokenizer: onnx.ModelProto, encoder: onnx.ModelProto,
                       outputs: tuple[str, ...] = ("score", "logits")) -> onnx.ModelProto:
    """Return pair tokenizer ∘ classifier: ``query`` [N], ``document`` [N] → ``outputs`` [N, labels] in one graph.

    ``query`` and ``document`` must have the same length (the tokenizer graph pairs them row by row).
    """
    merged = _merged(tokenizer, encoder, list(outputs))
    b = GraphBuilder("batch")
    rows, query = _at_least_one_row(b, "query")
    _, document = _at_least_one_row(b, "document")
    return _wired(merged, b, {"query": query, "document": document}, rows, list(outputs))
