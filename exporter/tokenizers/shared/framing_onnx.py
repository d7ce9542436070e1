"""The framing in ONNX, written once for every family: ``prefix $A suffix``, truncation, padding, masks.

A family's ONNX emitter returns every piece's id and the row of the text it came from; this
graph counts each row's pieces, keeps the first ``Framing.body``, puts the prefix and suffix
ids around them and pads every row to the longest with ``pad_id``, as transformers does with
``padding=True, truncation=True, max_length=max_seq_length``. No Loop: one Gather builds the
[N, L] ids. ``token_type_ids`` are all 0 (one text per row).
"""
from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from ...errors import UnsupportedModelError
from ...graphs import TOKEN_NAMES
from ...graphs.onnx_builder import CONTRIB, ML, GraphBuilder, make_model, ones_at
from .family import Framing, TokenizerSpec

#: custom-op domains the tokenizer graphs may use: onnxruntime-extensions' and ONNX-ML (LabelEncoder)
DOMAINS = {CONTRIB: 1, ML: 2}
#: StringSplit / StringConcat (the NUL-safe splitting of the texts) are opset 20
MIN_OPSET = 20


def _column_is(b: GraphBuilder, j: str, offset: str, ids: tuple[int, ...], otherwise: str) -> str:
    """Return ``otherwise`` with ``ids[k]`` where column ``j == offset + k``."""
    for k, token_id in enumerate(ids):
        otherwise = b.op("Where", [b.op("Equal", [j, b.op("Add", [offset, b.const(k)])]), b.const(token_id),
                                   otherwise])
    return otherwise


def frame(b: GraphBuilder, framing: Framing, text: str, ids: str, rows: str) -> dict[str, str]:
    """Return the padded [N, L] outputs of the pieces ``ids`` [P] of the rows ``rows`` [P] of ``text`` [N]."""
    before, after = len(framing.prefix), len(framing.suffix)
    n_rows = b.op("Shape", [text])
    counts = ones_at(b, n_rows, rows, reduction="add")
    first = b.op("CumSum", [counts, b.const(0)], exclusive=1)
    kept = b.op("Min", [counts, b.const(framing.body)])
    longest = b.op("ReduceMax", [b.op("Concat", [kept, b.const([0])], axis=0)], keepdims=0)
    any_row = b.op("Min", [b.op("Squeeze", [n_rows]), b.const(1)])
    length = b.op("Mul", [b.op("Add", [longest, b.const(before + after)]), any_row])  # [0, 0] for no text
    j = b.op("Unsqueeze", [b.op("Range", [b.const(0), length, b.const(1)]), b.const([0])])  # [1, L]
    kept2, first2 = (b.op("Unsqueeze", [x, b.const([1])]) for x in (kept, first))  # [N, 1]
    padded_ids = b.op("Concat", [ids, b.const([framing.pad_id])], axis=0)  # never empty for Gather
    source = b.op("Clip", [b.op("Sub", [b.op("Add", [first2, j]), b.const(before)]), b.const(0),
                           b.op("Shape", [ids])])
    body = b.op("Gather", [padded_ids, source])
    body_end = b.op("Add", [kept2, b.const(before)])  # first column after the text's pieces
    in_body = b.op("And", [b.op("GreaterOrEqual", [j, b.const(before)]), b.op("Less", [j, body_end])])
    tail = _column_is(b, j, body_end, framing.suffix, b.const(framing.pad_id))
    tokens = b.op("Where", [in_body, body, tail])
    input_ids = _column_is(b, j, b.const(0), framing.prefix, tokens)
    mask = b.op("Cast", [b.op("Less", [j, b.op("Add", [body_end, b.const(after)])])], to=TensorProto.INT64)
    return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": b.op("Mul", [mask, b.const(0)])}


def tokenizer_nodes(b: GraphBuilder, spec: TokenizerSpec, text: str) -> dict[str, str]:
    """Add the family's tokenizer and the framing to ``b`` reading the string tensor ``text``; return the outputs."""
    ids, rows = spec.emitter("onnx")(b, spec, text)
    return frame(b, spec.framing, text, ids, rows)


def tokenizer_model(spec: TokenizerSpec, *, opset: int, ir_version: int) -> onnx.ModelProto:
    """Return the standalone tokenizer graph: ``text`` [N] → the three int64 [N, L] outputs."""
    if opset < MIN_OPSET:
        raise UnsupportedModelError([f"opset {opset}: the tokenizer graph needs opset {MIN_OPSET} or newer"])
    b = GraphBuilder("tokenizer")
    outputs = tokenizer_nodes(b, spec, "text")
    for name in TOKEN_NAMES:
        b.rename(outputs[name], name)
    graph = helper.make_graph(
        b.nodes, "tokenizer", [helper.make_tensor_value_info("text", TensorProto.STRING, ["batch"])],
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in TOKEN_NAMES],
        initializer=b.initializers)
    return make_model(graph, opset=opset, ir_version=ir_version, domains=DOMAINS)
