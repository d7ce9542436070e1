"""The Unigram tie step (``ties`` module docstring) in ONNX: float64 sums in DOUBLE ops, two Loops.

Step for step the TensorFlow step of ``ties_tf`` (read that one first), with the sums as doubles: one
Loop iteration per unit position of the longest word that needs it, every such word at once; a
second Loop walks every re-decided group back from its last unit.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from onnx import TensorProto, helper

from ...graphs.onnx_builder import GraphBuilder
from .ties import TieTables

INT64, DOUBLE, BOOL = TensorProto.INT64, TensorProto.DOUBLE, TensorProto.BOOL


def _zeros(b: GraphBuilder, size: str, dtype: int = INT64) -> str:
    return b.op("ConstantOfShape", [size], value=helper.make_tensor("zero", dtype, [1], [0]))


def _summed_at(b: GraphBuilder, size: str, indices: str, values: str) -> str:
    """Return a vector of ``size`` holding the sum of ``values`` at each of ``indices`` (int64)."""
    return b.op("ScatterElements", [_zeros(b, size), indices, values], reduction="add")


def _row_of(b: GraphBuilder, splits: str, size: str) -> str:
    """Return the row of each of ``size`` flat values given row splits (rows may be empty)."""
    inner = b.op("Slice", [splits, b.const([1]), b.const([-1])])
    marks = _summed_at(b, b.op("Add", [size, b.const([1])]), inner, b.op("Expand", [b.const([1]), b.op("Shape", [inner])]))
    return b.op("Slice", [b.op("CumSum", [marks, b.const(0)]), b.const([0]), size])


def _column(b: GraphBuilder, x: str) -> str:
    return b.op("Unsqueeze", [x, b.const([1])])


def _flat(b: GraphBuilder, mask: str) -> str:
    """Return the indices where ``mask`` is true, int64 [K]."""
    return b.op("Reshape", [b.op("NonZero", [mask]), b.const([-1])])


def _loop(b: GraphBuilder, trips: str, cond: str, carried: list[tuple[str, int]],
          body: Callable[[GraphBuilder, str, list[str]], tuple[str, list[str]]]) -> list[str]:
    """Add a Loop of ``carried`` (name, element type) values; ``body(builder, iteration, values)`` returns
    (keep going, the values after the iteration)."""
    inner = GraphBuilder(b.name("loop"))
    iteration, going = inner.name("iteration"), inner.name("cond")
    values = [inner.name("value") for _ in carried]
    more, after = body(inner, iteration, values)
    outs = [inner.op("Identity", [name]) for name in [more, *after]]
    graph = helper.make_graph(
        inner.nodes, inner.prefix,
        [helper.make_tensor_value_info(iteration, INT64, []), helper.make_tensor_value_info(going, BOOL, [])]
        + [helper.make_tensor_value_info(v, t, None) for v, (_, t) in zip(values, carried, strict=True)],
        [helper.make_tensor_value_info(outs[0], BOOL, [])]
        + [helper.make_tensor_value_info(o, t, None) for o, (_, t) in zip(outs[1:], carried, strict=True)],
        initializer=inner.initializers)
    return b.op("Loop", [trips, cond, *(name for name, _ in carried)], outputs=len(carried), body=graph)


def _chosen(b: GraphBuilder, condition: str, x: str, y: str) -> str:
    """Return ``x`` where ``condition`` holds, else ``y``, of booleans (ONNX Runtime has no bool Where)."""
    return b.op("Or", [b.op("And", [condition, x]), b.op("And", [b.op("Not", [condition]), y])])


def _any(b: GraphBuilder, mask: str) -> str:
    """Return whether any of ``mask`` is true (a bool scalar; false when empty)."""
    count = b.op("ReduceSum", [b.op("Cast", [mask], to=INT64)], keepdims=0)
    return b.op("Greater", [count, b.const(0)])


def _previous(b: GraphBuilder, x: str, fill: int, size: str) -> str:
    """Return x[i - 1] for every i, ``fill`` first."""
    return b.op("Slice", [b.op("Concat", [b.const([fill]), x], axis=0), b.const([0]), size])


def redecided(b: GraphBuilder, tables: TieTables, ids: str, splits: str) -> tuple[str, str]:
    """Return (kernel ids [P'], row splits of the words [W + 1]) with each word's runs of commuting pieces in the
    reference's order, from the kernel's (int64 ids [P], int64 splits [W + 1])."""
    width = tables.width
    members = b.const(tables.members.astype(np.int64), "tie_members")
    n_pieces, n_words = b.op("Shape", [ids]), b.op("Sub", [b.op("Shape", [splits]), b.const([1])])
    word = _row_of(b, splits, n_pieces)
    code = b.op("Cast", [b.op("Gather", [b.const(tables.code, "tie_code"), ids])], to=INT64)
    in_class = b.op("GreaterOrEqual", [code, b.const(0)])
    cls = b.op("Where", [in_class, b.op("Div", [code, b.const(width)]), b.const(-1)])
    mult = b.op("Where", [in_class, b.op("Mod", [code, b.const(width)]), b.const(1)])
    first_in_word = b.op("Equal", [b.op("Range", [b.const(0), b.op("Squeeze", [n_pieces]), b.const(1)]),
                                   b.op("Gather", [splits, word])])
    starts = b.op("Or", [b.op("Or", [first_in_word, b.op("Not", [in_class])]),
                         b.op("Not", [b.op("Equal", [cls, _previous(b, cls, -2, n_pieces)])])])
    group = b.op("Sub", [b.op("CumSum", [b.op("Cast", [starts], to=INT64), b.const(0)]), b.const(1)])
    group_first = _flat(b, starts)
    group_units = _summed_at(b, b.op("Shape", [group_first]), group, mult)
    # only a group holding pieces of two lengths has another order: its word is re-decided
    turns = b.op("And", [b.op("Not", [starts]), b.op("Not", [b.op("Equal", [mult, _previous(b, mult, 0, n_pieces)])])])
    needs = b.op("Greater", [_summed_at(b, n_words, word, b.op("Cast", [turns], to=INT64)), b.const(0)])
    unit_splits = b.op("Concat", [b.const([0]), b.op("CumSum", [mult, b.const(0)])], axis=0)
    n_units = b.op("Slice", [unit_splits, b.const([-1]), b.const([2 ** 62])])
    piece_of = _row_of(b, unit_splits, n_units)
    word_start = b.op("Gather", [unit_splits, splits])
    word_units = b.op("Sub", [b.op("Slice", [word_start, b.const([1]), b.const([2 ** 62])]),
                              b.op("Slice", [word_start, b.const([0]), b.const([-1])])])
    group_start = b.op("Gather", [unit_splits, group_first])
    unit_word = b.op("Gather", [word, piece_of])
    # the units of the words that need it, compacted: index c
    need_units = _flat(b, b.op("Gather", [needs, unit_word]))
    n_need = b.op("Shape", [need_units])
    piece = b.op("Gather", [piece_of, need_units])
    unit_class = b.op("Gather", [cls, piece])
    position = b.op("Add", [b.op("Sub", [need_units, b.op("Gather", [group_start, b.op("Gather", [group, piece])])]),
                            b.const(1)])
    local = b.op("Sub", [need_units, b.op("Gather", [word_start, b.op("Gather", [word, piece])])])
    own = b.op("Gather", [b.const(tables.magnitude.view(np.float64), "tie_magnitude"), b.op("Gather", [ids, piece])])
    score, previous = _options(b, tables, members, unit_class=unit_class, position=position, local=local, own=own,
                               n_need=n_need)
    need_words = _flat(b, needs)
    need_len = b.op("Gather", [word_units, need_words])
    back = _viterbi(b, width, score, previous, need_len=need_len, n_need=n_need,
                    need_start=b.op("CumSum", [need_len, b.const(0)], exclusive=1))
    compact = b.op("ScatterElements", [_zeros(b, n_units), need_units,
                                       b.op("Range", [b.const(0), b.op("Squeeze", [n_need]), b.const(1)])])
    redo = _flat(b, b.op("And", [b.op("Gather", [in_class, group_first]),
                                 b.op("Gather", [needs, b.op("Gather", [word, group_first])])]))
    low = b.op("Gather", [compact, b.op("Gather", [group_start, redo])])
    cur = b.op("Sub", [b.op("Add", [low, b.op("Gather", [group_units, redo])]), b.const(1)])
    chosen = _backtracked(b, back, low, cur, n_need)
    last = b.op("Equal", [b.op("Range", [b.const(1), b.op("Add", [b.op("Squeeze", [n_units]), b.const(1)]), b.const(1)]),
                          b.op("Gather", [unit_splits, b.op("Add", [piece_of, b.const(1)])])])
    redone = b.op("GreaterOrEqual", [unit_class, b.const(0)])
    keep = b.op("ScatterElements", [last, need_units, _chosen(b, redone, chosen, b.op("Gather", [last, need_units]))])
    slot = b.op("Add", [b.op("Mul", [b.op("Max", [unit_class, b.const(0)]), b.const(width)]), back])
    unit_ids = b.op("Gather", [ids, piece_of])
    new_ids = b.op("ScatterElements", [unit_ids, need_units, b.op("Where", [
        redone, b.op("Gather", [members, slot]), b.op("Gather", [unit_ids, need_units])])])
    kept = _flat(b, keep)
    per_word = _summed_at(b, n_words, b.op("Gather", [unit_word, kept]),
                          b.op("Expand", [b.const([1]), b.op("Shape", [kept])]))
    return (b.op("Gather", [new_ids, kept]),
            b.op("Concat", [b.const([0]), b.op("CumSum", [per_word, b.const(0)])], axis=0))


def _options(b: GraphBuilder, tables: TieTables, members: str, *, unit_class: str, position: str, local: str,
             own: str, n_need: str) -> tuple[str, str]:
    """Return (score magnitude [C, width - 1], the unit before [C, width - 1]) of the piece of each multiplicity
    ending at each unit: +inf where no such piece fits, the unit before the word's start is ``n_need`` (sum 0)."""
    width = tables.width
    m = b.const(np.arange(1, width)[None, :].astype(np.int64), "m")
    slot = b.op("Add", [_column(b, b.op("Mul", [b.op("Max", [unit_class, b.const(0)]), b.const(width)])), m])
    in_class = _column(b, b.op("GreaterOrEqual", [unit_class, b.const(0)]))
    fits = b.op("And", [b.op("LessOrEqual", [m, _column(b, position)]),
                        b.op("GreaterOrEqual", [b.op("Gather", [members, slot]), b.const(0)])])
    valid = _chosen(b, in_class, fits, b.op("Equal", [m, b.const(1)]))
    member_magnitude = b.const(tables.member_magnitude.view(np.float64), "tie_member_magnitude")
    score = b.op("Where", [valid, b.op("Where", [in_class, b.op("Gather", [member_magnitude, slot]), _column(b, own)]),
                           b.const(np.inf)])
    unit = _column(b, b.op("Range", [b.const(0), b.op("Squeeze", [n_need]), b.const(1)]))
    inside = b.op("And", [valid, b.op("LessOrEqual", [m, _column(b, local)])])
    return score, b.op("Where", [inside, b.op("Sub", [unit, m]), n_need])


def _viterbi(b: GraphBuilder, width: int, score: str, previous: str, *, need_len: str, need_start: str,
             n_need: str) -> str:
    """Return the multiplicity of the best piece ending at each unit (int64 [C]): one iteration per unit position
    of the longest word that needs it, every such word at once."""
    steps = b.op("ReduceMax", [b.op("Concat", [b.const([0]), need_len], axis=0)], keepdims=0)

    def body(g: GraphBuilder, n: str, values: list[str]) -> tuple[str, list[str]]:
        best, back = values
        active = g.op("Add", [g.op("Gather", [need_start, _flat(g, g.op("Greater", [need_len, n]))]), n])
        total = g.op("Add", [g.op("Gather", [best, g.op("Gather", [previous, active])]), g.op("Gather", [score, active])])
        low = g.op("ReduceMin", [total, g.const([1])], keepdims=1)
        m = g.const(np.arange(1, width)[None, :].astype(np.int64), "m")
        pick = g.op("ReduceMax", [g.op("Where", [g.op("Equal", [total, low]), m, g.const(0)]), g.const([1])],
                    keepdims=0)  # equal sums: the longest last piece, the earliest start
        best = g.op("ScatterElements", [best, active, g.op("Reshape", [low, g.const([-1])])])
        back = g.op("ScatterElements", [back, active, pick])
        return g.const(True), [best, back]

    unreached = b.op("ConstantOfShape", [n_need], value=helper.make_tensor("inf", DOUBLE, [1], [np.inf]))
    best = b.op("Concat", [unreached, b.const([0.0])], axis=0)  # the last: before a word's start
    _, back = _loop(b, steps, "", [(best, DOUBLE), (_zeros(b, n_need), INT64)], body)
    return back
def _backtracked(b: GraphBuilder, back: str, low: str, cur: str, n_units: str) -> str:
    """Return whether each unit closes a piece of its group's best path, walking every group (first unit ``low``,
    last ``cur``) back at once."""

    def body(g: GraphBuilder, _: str, values: list[str]) -> tuple[str, list[str]]:
        cur, chosen = values
        live = g.op("GreaterOrEqual", [cur, low])
        at = g.op("Compress", [cur, live], axis=0)
        chosen = g.op("ScatterElements", [chosen, at, g.op("Expand", [g.const(True), g.op("Shape", [at])])])
        length = g.op("Max", [g.op("Gather", [back, g.op("Max", [cur, g.const(0)])]), g.const(1)])
        cur = g.op("Sub", [cur, g.op("Where", [live, length, g.const(0)])])
        return _any(g, g.op("GreaterOrEqual", [cur, low])), [cur, chosen]

    nothing = b.op("ConstantOfShape", [n_units], value=helper.make_tensor("no", BOOL, [1], [False]))
    _, chosen = _loop(b, "", _any(b, b.op("GreaterOrEqual", [cur, low])), [(cur, INT64), (nothing, BOOL)], body)
    return chosen
