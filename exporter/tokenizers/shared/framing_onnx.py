"""The framing in ONNX, written once for every family: ``prefix $A suffix``, truncation, padding, masks.

A family's ONNX emitter returns every piece's id and the row of the text it came from; this
graph counts each row's pieces, keeps the first ``Framing.body``, puts the prefix and suffix
ids around them and pads every row to the longest with ``pad_id``, as transformers does with
``padding=True, truncation=True, max_length=max_seq_length``. No Loop: one Gather builds the
[N, L] ids. ``token_type_ids`` are all 0 (one text per row).

Pairs (:func:`pair_tokenizer_nodes`, rerankers): the family's tokenizer runs once over the 2N texts
(queries, then documents), so the graph holds its tables once; each row's two lengths are cut as
the reference cuts pairs (``pair_lengths``) and one Gather lays out ``before $A between $B after``
with the template's type ids.
"""
from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from ...errors import UnsupportedModelError
from ...graphs import TOKEN_NAMES
from ...graphs.onnx_builder import CONTRIB, ML, GraphBuilder, make_model, ones_at
from .family import Framing, PairTemplate, TokenizerSpec
from .pair_lengths import kept_pair_lengths

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


class _OnnxOps:
    """The elementwise ops ``kept_pair_lengths`` uses, as nodes of ``b`` (Python ints become constants)."""

    def __init__(self, b: GraphBuilder):
        self._b = b

    def _node(self, op_type: str, *inputs: str | int) -> str:
        return self._b.op(op_type, [self._b.const(x) if isinstance(x, int) else x for x in inputs])

    def minimum(self, x: str | int, y: str | int) -> str:
        return self._node("Min", x, y)

    def maximum(self, x: str | int, y: str | int) -> str:
        return self._node("Max", x, y)

    def add(self, x: str | int, y: str | int) -> str:
        return self._node("Add", x, y)

    def sub(self, x: str | int, y: str | int) -> str:
        return self._node("Sub", x, y)

    def less_equal(self, x: str | int, y: str | int) -> str:
        return self._node("LessOrEqual", x, y)

    def where(self, condition: str, x: str | int, y: str | int) -> str:
        return self._node("Where", condition, x, y)


def _pair_rows(b: GraphBuilder, query: str, document: str) -> str:
    """Return N, the pairs' count [1], from a node that fails at run time unless query and document are both [N]
    (a Concat of [N, 1] and [M, 1] along axis 1 takes no broadcast: a mismatch is an error, not misread rows)."""
    columns = [b.op("Unsqueeze", [b.op("ConstantOfShape", [b.op("Shape", [side])]), b.const([1])])
               for side in (query, document)]
    return b.op("Shape", [b.op("Concat", columns, axis=1)], end=1)


def frame_pairs(b: GraphBuilder, framing: Framing, n_pairs: str, ids: str, rows: str) -> dict[str, str]:
    """Return the padded [N, L] outputs of N pairs from the pieces ``ids`` [P] of the rows ``rows`` [P] of the 2N
    texts (the N queries, then the N documents), framed by ``framing.pair``."""
    pair: PairTemplate = framing.pair
    counts = ones_at(b, b.op("Mul", [n_pairs, b.const([2])]), rows, reduction="add")  # [2N]
    first = b.op("CumSum", [counts, b.const(0)], exclusive=1)
    halves = {name: [b.op("Slice", [x, start, end]) for start, end in ((b.const([0]), n_pairs),
                                                                     (n_pairs, b.const([2 ** 62])))]
              for name, x in (("counts", counts), ("first", first))}
    kept_a, kept_b = kept_pair_lengths(*halves["counts"], room=framing.pair_room, strategy=framing.pair_truncation,
                                       ops=_OnnxOps(b))
    column = lambda x: b.op("Unsqueeze", [x, b.const([1])])  # noqa: E731  [N] -> [N, 1]
    first_a, first_b = map(column, halves["first"])
    start_a = b.const(len(pair.before))
    end_a = column(b.op("Add", [kept_a, start_a]))  # first column after the query's pieces
    start_b = b.op("Add", [end_a, b.const(len(pair.between))])
    end_b = b.op("Add", [start_b, column(kept_b)])
    end = b.op("Add", [end_b, b.const(len(pair.after))])  # [N, 1]: the row's length
    length = b.op("ReduceMax", [b.op("Concat", [b.op("Squeeze", [end, b.const([1])]), b.const([0])], axis=0)],
                  keepdims=0)
    j = b.op("Unsqueeze", [b.op("Range", [b.const(0), length, b.const(1)]), b.const([0])])  # [1, L]
    in_a = b.op("And", [b.op("GreaterOrEqual", [j, start_a]), b.op("Less", [j, end_a])])
    in_b = b.op("And", [b.op("GreaterOrEqual", [j, start_b]), b.op("Less", [j, end_b])])
    source = b.op("Where", [in_a, b.op("Sub", [b.op("Add", [first_a, j]), start_a]),
                            b.op("Sub", [b.op("Add", [first_b, j]), start_b])])
    padded_ids = b.op("Concat", [ids, b.const([framing.pad_id])], axis=0)  # never empty for Gather
    body = b.op("Gather", [padded_ids, b.op("Clip", [source, b.const(0), b.op("Shape", [ids])])])
    in_text = b.op("Or", [in_a, in_b])
    tokens = b.op("Where", [in_text, body, b.const(framing.pad_id)])
    types = b.op("Where", [in_a, b.const(pair.type_a), b.op("Where", [in_b, b.const(pair.type_b), b.const(0)])])
    for offset, segment, segment_types in ((b.const(0), pair.before, pair.before_types),
                                           (end_a, pair.between, pair.between_types),
                                           (end_b, pair.after, pair.after_types)):
        tokens = _column_is(b, j, offset, segment, tokens)
        types = _column_is(b, j, offset, segment_types, types)
    mask = b.op("Cast", [b.op("Less", [j, end])], to=TensorProto.INT64)
    return {"input_ids": tokens, "attention_mask": mask, "token_type_ids": types}


def pair_tokenizer_nodes(b: GraphBuilder, spec: TokenizerSpec, query: str, document: str) -> dict[str, str]:
    """Add the family's tokenizer and the pair framing to ``b`` reading the string tensors ``query`` [N] and
    ``document`` [N]; return the outputs (int64 [N, L] each), as the reference's
    ``tok(queries, documents, padding=True, truncation=framing.pair_truncation, max_length=max_seq_length)``.

    Raises:
        UnsupportedModelError: the reference frames no pair this way (``Framing.pair_problem``).
    """
    if not spec.framing.pairs:
        raise UnsupportedModelError([spec.framing.pair_problem])
    n_pairs = _pair_rows(b, query, document)
    ids, rows = spec.emitter("onnx")(b, spec, b.op("Concat", [query, document], axis=0))
    return frame_pairs(b, spec.framing, n_pairs, ids, rows)


def tokenizer_nodes(b: GraphBuilder, spec: TokenizerSpec, text: str) -> dict[str, str]:
    """Add the family's tokenizer and the framing to ``b`` reading the string tensor ``text``; return the outputs."""
    ids, rows = spec.emitter("onnx")(b, spec, text)
    return frame(b, spec.framing, text, ids, rows)


def _standalone(b: GraphBuilder, outputs: dict[str, str], inputs: tuple[str, ...], *, opset: int,
                ir_version: int) -> onnx.ModelProto:
    """Return the model of ``b``'s nodes: string inputs [batch] → the three int64 [batch, sequence] outputs."""
    for name in TOKEN_NAMES:
        b.rename(outputs[name], name)
    graph = helper.make_graph(
        b.nodes, "tokenizer", [helper.make_tensor_value_info(name, TensorProto.STRING, ["batch"]) for name in inputs],
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in TOKEN_NAMES],
        initializer=b.initializers)
    return make_model(graph, opset=opset, ir_version=ir_version, domains=DOMAINS)


def _check_opset(opset: int) -> None:
    if opset < MIN_OPSET:
        raise UnsupportedModelError([f"opset {opset}: the tokenizer graph needs opset {MIN_OPSET} or newer"])


def tokenizer_model(spec: TokenizerSpec, *, opset: int, ir_version: int) -> onnx.ModelProto:
    """Return the standalone tokenizer graph: ``text`` [N] → the three int64 [N, L] outputs."""
    _check_opset(opset)
    b = GraphBuilder("tokenizer")
    return _standalone(b, tokenizer_nodes(b, spec, "text"), ("text",), opset=opset, ir_version=ir_version)


def pair_tokenizer_model(spec: TokenizerSpec, *, opset: int, ir_version: int) -> onnx.ModelProto:
    """Return the standalone pair tokenizer graph: ``query`` [N], ``document`` [N] → the three int64 [N, L] outputs.

    Raises:
        UnsupportedModelError: an opset before :data:`MIN_OPSET`, or a tokenizer without pairs
            (``Framing.pair_problem``).
    """
    _check_opset(opset)
    b = GraphBuilder("tokenizer")
    outputs = pair_tokenizer_nodes(b, spec, "query", "document")
    return _standalone(b, outputs, ("query", "document"), opset=opset, ir_version=ir_version)
