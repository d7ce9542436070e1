"""Emit a byte-level BPE tokenizer as ONNX: text [N] → every piece's id and row (framed in ``framing_onnx``).

No regex kernel reads the text (they stop at NUL and split by their own Unicode tables); the graph
works on UTF-8 bytes and code points, as the TensorFlow emitter does:

1. bytes: the texts are split on NUL with the standard StringSplit (the extensions' kernels read a
   string up to its first NUL), each piece into single bytes with RE2's ``\\C`` and a LabelEncoder,
   and the NUL bytes are scattered back between the pieces;
2. code points decoded with arithmetic (ONNX Runtime's strings are valid UTF-8); their classes
   from the probed two-stage table; special-token literals matched on the code points (the
   whitespace before an lstrip token goes with it);
3. pre-tokens: :func:`exporter.tokenizers.bpe.spec.pretoken_starts` with :class:`OnnxOps`;
4. each kept byte becomes its byte-alphabet character (a special token its placeholder), a space
   (in no byte-alphabet word) ends each pre-token, one StringJoin and a StringSplit make the words;
   onnxruntime-extensions' ``SentencepieceTokenizer`` runs BPE with ``BpeSpec.model_proto``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
from onnx import TensorProto, helper

from ...graphs.onnx_builder import ML, GraphBuilder, ones_at
from ..shared.chars_onnx import nul_free_pieces, sentencepiece_ids
from ..shared.codepoints import BLOCK
from .spec import COMPOSE_PASSES, NFC_WIDTH, PAIR_KEY, WHITESPACE, BpeSpec, byte_alphabet

LAST = 2**62  # a Slice end past any tensor
#: weight of a byte's 6-bit payload by its distance from the character's last byte
WEIGHTS = [1, 64, 4096, 262144]


def _shared(method: Callable) -> Callable:
    """Return ``method`` answering a call it has answered before (same tensors, same values) with the same node: the
    rules ask for the same shift or comparison many times."""
    @functools.wraps(method)
    def once(self: "OnnxOps", *args: Any) -> Any:
        key = (method.__name__, *((type(a).__name__, tuple(a) if isinstance(a, list) else a) for a in args))
        if key not in self.made:
            self.made[key] = method(self, *args)
        return self.made[key]

    return once


class OnnxOps:
    """``bpe.pretoken_starts``'s, ``bpe.matched_literals``' and ``bpe.kept_chain``'s array operations as ONNX nodes (values are tensor
    names; bools are BOOL, integers INT64); a call repeated with the same arguments reuses its node."""

    def __init__(self, b: GraphBuilder):
        self.b = b
        self.made: dict[tuple, Any] = {}

    @_shared
    def _const(self, value: Any, dtype: str) -> str:
        return self.b.const(list(value) if isinstance(value, tuple) else value, "value", dtype=dtype)

    def _value(self, y) -> str:
        if isinstance(y, str):
            return y
        if isinstance(y, np.ndarray):
            return self.b.const(y, "table", dtype=bool if y.dtype == bool else "int64")
        return self._const(tuple(y) if isinstance(y, list) else y, "int64")

    @_shared
    def ahead(self, x: str, k: int, fill) -> str:
        filler = self._const((fill,) * k, bool if isinstance(fill, bool) else "int64")
        return self.b.op("Slice", [self.b.op("Concat", [x, filler], axis=0), self._const((k,), "int64"),
                                   self._const((LAST,), "int64")])

    @_shared
    def behind(self, x: str, k: int, fill) -> str:
        if k == 0:
            return x
        filler = self._const((fill,) * k, bool if isinstance(fill, bool) else "int64")
        return self.b.op("Slice", [self.b.op("Concat", [filler, x], axis=0), self._const((0,), "int64"),
                                   self._const((-k,), "int64")])

    @_shared
    def eq(self, x: str, y) -> str:
        return self.b.op("Equal", [x, self._value(y)])

    def ne(self, x: str, y) -> str:
        return self.not_(self.eq(x, y))

    def where(self, condition: str, x: str, y: str) -> str:
        """Select between booleans (ONNX Runtime's Where has no bool kernel)."""
        return self.or_(self.and_(condition, x), self.and_(self.not_(condition), y))

    def select(self, condition: str, x, y) -> str:
        """Select between integers."""
        return self.b.op("Where", [condition, self._value(x), self._value(y)])

    def add(self, x: str, y) -> str:
        """Add integers."""
        return self.b.op("Add", [x, self._value(y)])

    def scatter_max(self, x: str, index: str, values: str) -> str:
        """Return x with x[index[i]] raised to values[i] where that is larger."""
        return self.b.op("ScatterElements", [x, index, values], reduction="max")

    def and_(self, x: str, y: str) -> str:
        return self._logical("And", *sorted((x, y)))

    def or_(self, x: str, y: str) -> str:
        return self._logical("Or", *sorted((x, y)))

    @_shared
    def _logical(self, op: str, x: str, y: str) -> str:
        return self.b.op(op, [x, y])

    @_shared
    def not_(self, x: str) -> str:
        return self.b.op("Not", [x])

    @_shared
    def cumsum(self, x: str) -> str:
        return self.b.op("CumSum", [self.b.op("Cast", [x], to=TensorProto.INT64), self._const(0, "int64")])

    def next_of(self, mask: str) -> str:
        """Return the index of the first True at or after every i (the length past the last one)."""
        at = self.b.op("Concat", [self.nonzero(mask), self.b.op("Shape", [mask])], axis=0)
        before = self.b.op("Sub", [self.cumsum(mask), self.b.op("Cast", [mask], to=TensorProto.INT64)])
        return self.b.op("Gather", [at, before])

    def prev_of(self, mask: str) -> str:
        """Return the index of the last True at or before every i (-1 before the first one)."""
        at = self.b.op("Concat", [self._const((-1,), "int64"), self.nonzero(mask)], axis=0)
        return self.b.op("Gather", [at, self.cumsum(mask)])

    def take(self, x: str, index: str, fill) -> str:
        """Return x[index], ``fill`` for -1 and len(x) (int64 x)."""
        size = self.b.op("Shape", [x])
        padded = self.b.op("Concat", [x, self._value([fill])], axis=0)
        return self.b.op("Gather", [padded, self.b.op("Where", [self.b.op("Less", [index, self._const(0, "int64")]),
                                                                 self.b.op("Squeeze", [size]), index])])

    @_shared
    def isin(self, x: str, values: list[int]) -> str:
        """Return True where x is one of ``values``."""
        equal = self.b.op("Equal", [self.b.op("Unsqueeze", [x, self._const((1,), "int64")]), self._value(values)])
        found = self.b.op("ReduceMax", [self.b.op("Cast", [equal], to=TensorProto.INT32), self._const((1,), "int64")],
                          keepdims=0)
        return self.b.op("Cast", [found], to=TensorProto.BOOL)

    @_shared
    def nonzero(self, mask: str) -> str:
        return _flat(self.b, self.b.op("NonZero", [mask]))

    def gather(self, x, index: str) -> str:
        return self.b.op("Gather", [self._value(x), index])

    def row_max(self, x: str) -> str:
        return self.b.op("ReduceMax", [x, self._const((1,), "int64")], keepdims=0)

    def window(self, x: str, row: str, at: str, width: int, fill: int) -> str:
        """Return x[at + k] for every position in ``at`` and k < width ([P, width]), ``fill`` past the end of at's
        row."""
        index = self.b.op("Min", [self.b.op("Add", [self.b.op("Unsqueeze", [at, self._const((1,), "int64")]),
                                                    self._const((tuple(range(width)),), "int64")]),
                                  self.b.op("Shape", [x])])
        values = self.b.op("Gather", [self.b.op("Concat", [x, self._const((fill,), "int64")], axis=0), index])
        rows = self.b.op("Gather", [self.b.op("Concat", [row, self._const((-1,), "int64")], axis=0), index])
        same = self.b.op("Equal", [rows, self.b.op("Unsqueeze", [self.b.op("Gather", [row, at]),
                                                                self._const((1,), "int64")])])
        return self.b.op("Where", [same, values, self._const(fill, "int64")])

    def matches(self, window: str, table: np.ndarray) -> str:
        """Return [P, S]: True where window row p equals table row s at every column where table[s] is not -1."""
        equal = self.b.op("Equal", [self.b.op("Unsqueeze", [window, self._const((1,), "int64")]), self._value(table)])
        differ = self.b.op("And", [self.b.op("Not", [equal]), self._value(table >= 0)])
        found = self.b.op("ReduceMax", [self.b.op("Cast", [differ], to=TensorProto.INT32),
                                        self._const((2,), "int64")], keepdims=0)
        return self.b.op("Not", [self.b.op("Cast", [found], to=TensorProto.BOOL)])

    def spans(self, like: str, at: str, length: str, first: int, weight: str) -> str:
        """Return True at every i in at + first .. at + length - 1 of the positions where ``weight`` is True."""
        size = self.b.op("Shape", [like])
        zeros = self.b.op("ConstantOfShape", [self.b.op("Add", [size, self._const((1,), "int64")])],
                          value=helper.make_tensor("zero", TensorProto.INT64, [1], [0]))
        count = self.b.op("Cast", [weight], to=TensorProto.INT64)
        begin = self.b.op("Add", [at, self._const(first, "int64")]) if first else at
        marks = self.b.op("ScatterElements", [zeros, self.b.op("Concat", [begin, self.b.op("Add", [at, length])], axis=0),
                                              self.b.op("Concat", [count, self.b.op("Neg", [count])], axis=0)],
                          reduction="add")
        running = self.b.op("Slice", [self.b.op("CumSum", [marks, self._const(0, "int64")]),
                                      self._const((0,), "int64"), size])
        return self.b.op("Greater", [running, self._const(0, "int64")])

    def scatter(self, like: str, at: str, values: str) -> str:
        """Return an int64 vector as long as ``like``: ``values`` at ``at``, 0 elsewhere."""
        zeros = self.b.op("Mul", [like, self._const(0, "int64")])
        return self.b.op("ScatterElements", [zeros, at, self._value(values)])


def _flat(b: GraphBuilder, x: str) -> str:
    return b.op("Reshape", [x, b.const([-1])])


def _range(b: GraphBuilder, size: str) -> str:
    """Return 0..size-1 (``size`` a [1] int64)."""
    return b.op("Range", [b.const(0), b.op("Squeeze", [size]), b.const(1)])


def _segment_of(b: GraphBuilder, starts: str, size: str) -> str:
    """Return, for each of ``size`` positions, the segment it is in, given each segment's sorted start."""
    total = b.op("Add", [size, b.const([1])])
    marks = ones_at(b, total, b.op("Slice", [starts, b.const([1]), b.const([LAST])]), reduction="add")
    return b.op("Slice", [b.op("CumSum", [marks, b.const(0)]), b.const([0]), size])


def _bytes(b: GraphBuilder, text: str) -> tuple[str, str]:
    """Return (UTF-8 bytes of every text [B] int64, row of each [B] int64), NUL bytes included."""
    pieces, last = nul_free_pieces(b, text)
    columns = b.op("Shape", [pieces], start=1, end=2)
    flat = _flat(b, pieces)
    singles, _, _, splits = b.contrib("StringRegexSplitWithOffsets", [flat, b.const(["(\\C)"], "pattern"),
                                                                      b.const(["\\C"], "keep")], outputs=4)
    byte = b.op("LabelEncoder", [singles], domain=ML, keys_strings=[bytes([v]) for v in range(1, 256)],
                values_int64s=list(range(1, 256)), default_int64=0)
    n_pieces = b.op("Shape", [flat])
    count = b.op("Sub", [b.op("Slice", [splits, b.const([1]), b.const([LAST])]),
                         b.op("Slice", [splits, b.const([0]), b.const([-1])])])
    piece = _range(b, n_pieces)
    row_last = b.op("Gather", [_flat(b, last), b.op("Div", [piece, columns])])
    nul_after = b.op("Cast", [b.op("Less", [b.op("Mod", [piece, columns]), row_last])], to=TensorProto.INT64)
    out_length = b.op("Add", [count, nul_after])
    out_start = b.op("CumSum", [out_length, b.const(0)], exclusive=1)
    n_bytes = b.op("Shape", [byte])
    piece_of_byte = _segment_of(b, b.op("Slice", [splits, b.const([0]), b.const([-1])]), n_bytes)
    position = b.op("Add", [b.op("Sub", [_range(b, n_bytes), b.op("Gather", [splits, piece_of_byte])]),
                            b.op("Gather", [out_start, piece_of_byte])])
    total = b.op("Reshape", [b.op("ReduceSum", [out_length], keepdims=0), b.const([1])])
    zeros = b.op("ConstantOfShape", [total], value=helper.make_tensor("zero", TensorProto.INT64, [1], [0]))
    out = b.op("ScatterElements", [zeros, position, byte])
    return out, b.op("Div", [_segment_of(b, out_start, total), columns])


def _code_points(b: GraphBuilder, byte: str) -> tuple[str, str, str]:
    """Return (is the first byte of a character [B] bool, its character [B], code point of each character [C])."""
    is_first = b.op("Or", [b.op("Less", [byte, b.const(0x80)]), b.op("GreaterOrEqual", [byte, b.const(0xC0)])])
    char = b.op("Sub", [b.op("CumSum", [b.op("Cast", [is_first], to=TensorProto.INT64), b.const(0)]), b.const(1)])
    first = _flat(b, b.op("NonZero", [is_first]))
    end = b.op("Concat", [b.op("Slice", [first, b.const([1]), b.const([LAST])]), b.op("Shape", [byte])], axis=0)
    lead = b.const(0)  # what the first byte of a 1-, 2-, 3- or 4-byte character holds beside its payload
    for bound in (0x80, 0xC0, 0xE0, 0xF0):
        lead = b.op("Where", [b.op("GreaterOrEqual", [byte, b.const(bound)]), b.const(bound), lead])
    payload = b.op("Sub", [byte, b.op("Where", [is_first, lead, b.const(0x80)])])
    from_end = b.op("Sub", [b.op("Sub", [b.op("Gather", [end, char]), b.const(1)]), _range(b, b.op("Shape", [byte]))])
    weighted = b.op("Mul", [payload, b.op("Gather", [b.const(WEIGHTS, "weights"), b.op("Min", [from_end, b.const(3)])])])
    zeros = b.op("ConstantOfShape", [b.op("Shape", [first])],
                 value=helper.make_tensor("zero", TensorProto.INT64, [1], [0]))
    return is_first, char, b.op("ScatterElements", [zeros, char, weighted], reduction="add")


def _lookup(b: GraphBuilder, table, cps: str) -> str:

    block = b.op("Gather", [b.const(table.blocks.astype("int64"), "blocks"), b.op("Div", [cps, b.const(BLOCK)])])
    return b.op("Gather", [b.const(table.values.astype("int64"), "values"),
                           b.op("Add", [b.op("Mul", [block, b.const(BLOCK)]), b.op("Mod", [cps, b.const(BLOCK)])])])


def _nfc(b: GraphBuilder, ops: OnnxOps, spec: BpeSpec, byte: str, byte_row: str) -> tuple[str, str]:
    """Return (UTF-8 bytes, row of each) of the texts in the graphs' NFC (``spec.graph_nfc`` in ONNX ops): each code
    point replaced by its canonical decomposition (``BpeSpec.nfc_tables``), one pass of canonical reordering, then
    ``COMPOSE_PASSES`` composition passes (the residual the export's ``nfc composition`` sweep counts)."""
    is_first, _, cps = _code_points(b, byte)
    row = b.op("Gather", [byte_row, _flat(b, b.op("NonZero", [is_first]))])
    table, rows, pairs = spec.nfc_tables()
    classes = spec.combining_classes()
    entry = _lookup(b, table, cps)
    replaced = b.op("Gather", [b.const(rows, "nfc_rows"), entry])  # [C, NFC_WIDTH + 1]
    count = b.op("Slice", [replaced, b.const([NFC_WIDTH]), b.const([NFC_WIDTH + 1]), b.const([1])])
    first = b.op("Where", [b.op("Greater", [entry, b.const(0)]), _flat(b, b.op("Slice", [
        replaced, b.const([0]), b.const([1]), b.const([1])])), cps])
    out = b.op("Concat", [b.op("Unsqueeze", [first, b.const([1])]),
                          b.op("Slice", [replaced, b.const([1]), b.const([NFC_WIDTH]), b.const([1])])], axis=1)
    keep = _flat(b, b.op("Less", [b.const([list(range(NFC_WIDTH))], "nfc_columns"), count]))
    cps = b.op("Compress", [_flat(b, out), keep], axis=0)
    row = b.op("Compress", [_flat(b, b.op("Expand", [b.op("Unsqueeze", [row, b.const([1])]),
                                                     b.const([1, NFC_WIDTH])])), keep], axis=0)
    # canonical reordering, one pass: a mark of a higher class swapped with the mark after it
    ccc = _lookup(b, classes, cps)
    next_ccc = ops.ahead(ccc, 1, 0)
    swap = ops.and_(ops.and_(b.op("Greater", [ccc, next_ccc]), b.op("Greater", [next_ccc, b.const(0)])),
                    ops.eq(ops.ahead(row, 1, -1), row))
    swap = ops.and_(swap, ops.not_(ops.behind(swap, 1, False)))
    cps = b.op("Where", [swap, ops.ahead(cps, 1, 0), b.op("Where", [ops.behind(swap, 1, False),
                                                                   ops.behind(cps, 1, 0), cps])])
    keys = sorted(pairs)
    values = [pairs[k] for k in keys]

    def composite(second: str) -> str:
        key = b.op("Add", [b.op("Mul", [cps, b.const(PAIR_KEY)]), second])
        return b.op("LabelEncoder", [key], domain=ML, keys_int64s=keys, values_int64s=values, default_int64=-1)

    for _ in range(COMPOSE_PASSES):
        made = composite(ops.ahead(cps, 1, 0))
        found = ops.and_(b.op("GreaterOrEqual", [made, b.const(0)]), ops.eq(ops.ahead(row, 1, -1), row))
        found = ops.and_(found, ops.not_(ops.behind(found, 1, False)))
        cps = b.op("Where", [found, made, cps])
        kept = ops.not_(ops.behind(found, 1, False))
        cps, row = (b.op("Compress", [x, kept], axis=0) for x in (cps, row))
        # a starter with the mark after a lower-class mark that does not compose with it
        ccc = _lookup(b, classes, cps)
        after, later = ops.ahead(ccc, 1, 0), ops.ahead(ccc, 2, 0)
        made = composite(ops.ahead(cps, 2, 0))
        skip = ops.and_(ops.and_(ops.eq(ccc, 0), b.op("Greater", [after, b.const(0)])),
                        ops.and_(b.op("Less", [after, later]), ops.eq(ops.ahead(row, 2, -1), row)))
        skip = ops.and_(ops.and_(skip, b.op("GreaterOrEqual", [made, b.const(0)])),
                        b.op("Less", [composite(ops.ahead(cps, 1, 0)), b.const(0)]))
        cps = b.op("Where", [skip, made, cps])
        kept = ops.not_(ops.behind(skip, 2, False))
        cps, row = (b.op("Compress", [x, kept], axis=0) for x in (cps, row))
    return _utf8(b, cps, row)


def _utf8(b: GraphBuilder, cps: str, row: str) -> tuple[str, str]:
    """Return (UTF-8 bytes of the code points, row of each byte)."""
    length = b.const(1)
    for bound in (0x80, 0x800, 0x10000):
        length = b.op("Add", [length, b.op("Cast", [b.op("GreaterOrEqual", [cps, b.const(bound)])],
                                                  to=TensorProto.INT64)])
    lead = b.op("Gather", [b.const([0, 0, 0xC0, 0xE0, 0xF0], "utf8_leads"), length])
    columns = []
    for k in range(4):
        shift = b.op("Max", [b.op("Sub", [b.op("Sub", [length, b.const(1)]), b.const(k)]), b.const(0)])
        part = b.op("Div", [cps, b.op("Gather", [b.const(WEIGHTS, "utf8_weights"), shift])])
        value = b.op("Add", [lead, part]) if k == 0 else b.op("Add", [b.const(0x80), b.op("Mod", [part, b.const(64)])])
        columns.append(b.op("Unsqueeze", [value, b.const([1])]))
    keep = _flat(b, b.op("Less", [b.const([[0, 1, 2, 3]], "utf8_columns"), b.op("Unsqueeze", [length, b.const([1])])]))
    spread = b.op("Expand", [b.op("Unsqueeze", [row, b.const([1])]), b.const([1, 4])])
    return (b.op("Compress", [_flat(b, b.op("Concat", columns, axis=1)), keep], axis=0),
            b.op("Compress", [_flat(b, spread), keep], axis=0))


def _lstripped(b: GraphBuilder, ops: OnnxOps, kinds: str, row: str, takes: str) -> str:
    """Return the whitespace characters a following ``takes`` character (an lstrip token's start) swallows."""
    space = ops.eq(kinds, WHITESPACE)
    solid = ops.not_(space)
    solid_at = _flat(b, b.op("NonZero", [solid]))
    following = b.op("CumSum", [b.op("Cast", [solid], to=TensorProto.INT64), b.const(0)])
    n_solid = b.op("Shape", [solid_at])
    at = b.op("Gather", [b.op("Concat", [solid_at, b.const([0])], axis=0), b.op("Min", [following, n_solid])])
    found = ops.and_(b.op("Less", [following, n_solid]), b.op("Gather", [takes, at]))
    return ops.and_(ops.and_(space, found), ops.eq(b.op("Gather", [row, at]), row))


def piece_ids(b: GraphBuilder, spec: BpeSpec, text: str) -> tuple[str, str]:
    """Add the tokenizer to ``b`` reading the string tensor ``text``; return (ids [P], row of each [P])."""
    ops = OnnxOps(b)
    byte, byte_row = _bytes(b, text)
    if spec.nfc:
        byte, byte_row = _nfc(b, ops, spec, byte, byte_row)
    is_first, char, cps = _code_points(b, byte)
    row = b.op("Gather", [byte_row, _flat(b, b.op("NonZero", [is_first]))])
    kinds = _lookup(b, spec.class_table(), cps)
    mark, inside = spec.special_marks(cps, row, ops)
    special = b.op("Greater", [mark, b.const(0)])
    lstrip = [index for index, (_, _, takes) in enumerate(spec.specials, start=1) if takes]
    takes = b.op("Gather", [b.const([index in lstrip for index in range(len(spec.specials) + 1)], "lstrip"), mark])
    kept = ops.and_(ops.or_(special, ops.not_(inside)), ops.not_(_lstripped(b, ops, kinds, row, takes)))
    kept_at = _flat(b, b.op("NonZero", [kept]))
    cps_k, kinds_k, row_k, special_k = (b.op("Gather", [x, kept_at]) for x in (cps, kinds, row, special))
    stretch_start = ops.or_(ops.or_(ops.ne(row_k, ops.behind(row_k, 1, -1)), special_k),
                            ops.behind(special_k, 1, True))
    starts = spec.starts(cps_k, kinds_k, stretch_start, ops)
    ends = b.op("Cast", [ops.ahead(starts, 1, True), ], to=TensorProto.INT64)
    zeros = b.op("Mul", [cps, b.const(0)])
    ends_at_char = b.op("ScatterElements", [zeros, kept_at, ends])
    # every kept byte as its byte-alphabet character (a special token's first byte: its placeholder)
    byte_special = b.op("Gather", [special, char])
    byte_kept = ops.and_(b.op("Gather", [kept, char]), ops.or_(ops.not_(byte_special), is_first))
    letter = b.op("Where", [byte_special,
                            b.op("Gather", [b.const(["", *spec.placeholders()], "placeholders"),
                                            b.op("Gather", [mark, char])]),
                            b.op("Gather", [b.const(byte_alphabet(), "alphabet"), byte])])
    last_of_char = ops.ahead(is_first, 1, True)
    word_end = ops.and_(last_of_char, ops.eq(b.op("Gather", [ends_at_char, char]), 1))
    letter = b.op("StringConcat", [letter, b.op("Where", [word_end, b.const(" ", "space"), b.const("", "nothing")])])
    joined = b.contrib("StringJoin", [b.op("Compress", [letter, byte_kept], axis=0), b.const("", "sep"),
                                      b.const(0, "axis")])
    n_words = b.op("Reshape", [b.op("ReduceSum", [b.op("Cast", [starts], to=TensorProto.INT64)], keepdims=0),
                               b.const([1])])
    split = b.op("StringSplit", [b.op("Reshape", [joined, b.const([1])])], outputs=2, delimiter=" ")[0]
    words = b.op("Slice", [_flat(b, split), b.const([0]), n_words])
    word_row = b.op("Compress", [row_k, starts], axis=0)
    return sentencepiece_ids(b, spec.model_proto(), spec.ids(), words, word_row)
