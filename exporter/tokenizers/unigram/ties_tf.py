"""The Unigram tie step (``ties`` module docstring) in TensorFlow ops that TFLite runs as builtins.

TFLite has no float64 arithmetic, comparison or bit shift, and no int64 division; it has int64 ADD,
SUB, MUL, FLOOR_MOD, MINIMUM, MAXIMUM, comparisons, SELECT_V2, GATHER, and CAST/BITCAST between int64
and float64. :func:`float64_sum` adds with those alone, bit-exact with float64 addition.
"""
from __future__ import annotations

import tensorflow as tf

from ..shared.chars_tf import counts, row_ids, shifted_right
from .ties import TieTables

M52 = 1 << 52
#: float64 exponent bias + 52 mantissa bits + 3 guard bits
GUARDED = 1078
NONE = (1 << 63) - 1


def float64_sum(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Return a + b rounded as float64 addition rounds (to nearest, ties to even), for non-negative normal doubles
    (or 0) given and returned as their int64 bit patterns.

    The smaller operand's mantissa is scaled to the larger one's ulp / 8 by moving its exponent (a float64
    cast of a 53-bit integer is exact) and truncated by a cast, the bits lost kept as a sticky 1 (round to
    odd, 3 bits below the result's ulp: rounding that once more to 53 bits is exact); the int64 → float64
    cast of the guarded sum then rounds to nearest even, and its exponent is moved back.
    """
    big, small = tf.maximum(a, b), tf.minimum(a, b)
    e_big, e_small = big - tf.math.floormod(big, M52), small - tf.math.floormod(small, M52)
    gap = tf.minimum(e_big - e_small, 60 * M52)  # beyond 56 bits apart the smaller only sets the sticky bit
    scaled = tf.bitcast(tf.cast(tf.math.floormod(small, M52) + M52, tf.float64), tf.int64) + 3 * M52 - gap
    low = tf.cast(tf.bitcast(scaled, tf.float64), tf.int64)
    inexact = (gap >= 3 * M52) & tf.not_equal(tf.bitcast(tf.cast(low, tf.float64), tf.int64), scaled)
    total = (tf.math.floormod(big, M52) + M52) * 8 + low
    total = total + tf.where(inexact, 1 - tf.math.floormod(total, 2), tf.zeros_like(total))
    rounded = tf.bitcast(tf.cast(total, tf.float64), tf.int64) + e_big - GUARDED * M52
    return tf.where(small == 0, big, rounded)


class TiesTF(tf.Module):
    """``redecided(pieces) -> pieces``: each word's runs of commuting pieces in the reference's order."""

    def __init__(self, tables: TieTables, name: str = "unigram_ties"):
        super().__init__(name=name)
        self._code, self._magnitude = tf.constant(tables.code), tf.constant(tables.magnitude)
        self._members, self._member_magnitude = tf.constant(tables.members), tf.constant(tables.member_magnitude)
        self._width = tables.width

    def redecided(self, pieces: tf.RaggedTensor) -> tf.RaggedTensor:
        """Return ``pieces`` (kernel ids, ragged [words, pieces], int32) with their runs re-decided."""
        ids, splits = pieces.flat_values, tf.cast(pieces.row_splits, tf.int32)
        n_pieces, n_words = tf.size(ids), tf.size(splits) - 1
        word = row_ids(splits, n_pieces)
        code = tf.gather(self._code, ids)
        in_class = code >= 0
        cls = tf.where(in_class, code // self._width, -1)
        mult = tf.where(in_class, code % self._width, 1)
        first_in_word = tf.equal(tf.range(n_pieces), tf.gather(splits, word))
        starts = first_in_word | tf.logical_not(in_class) | tf.not_equal(cls, shifted_right(cls, 1, -2))
        group = tf.cumsum(tf.cast(starts, tf.int32)) - 1
        group_first = tf.cast(tf.where(starts)[:, 0], tf.int32)
        group_units = tf.math.unsorted_segment_sum(mult, group, tf.size(group_first))
        # only a group holding pieces of two lengths has another order: its word is re-decided
        turns = tf.logical_not(starts) & tf.not_equal(mult, shifted_right(mult, 1, 0))
        needs = tf.math.unsorted_segment_sum(tf.cast(turns, tf.int32), word, n_words) > 0
        # units: a piece of a class is `mult` of them, any other one; the unit closing a piece stands for it
        unit_splits = tf.concat([[0], tf.cumsum(mult)], 0)
        n_units = unit_splits[-1]
        piece_of = row_ids(unit_splits, n_units)
        word_start = tf.gather(unit_splits, splits)  # [words + 1]
        word_units = word_start[1:] - word_start[:-1]
        group_start = tf.gather(unit_splits, group_first)
        unit_word = tf.gather(word, piece_of)
        need_units = tf.cast(tf.where(tf.gather(needs, unit_word))[:, 0], tf.int32)  # compacted: index c
        piece = tf.gather(piece_of, need_units)
        unit_class = tf.gather(cls, piece)
        position = need_units - tf.gather(group_start, tf.gather(group, piece)) + 1  # 1-based, in its group
        local = need_units - tf.gather(word_start, tf.gather(word, piece))
        score, previous = self._options(unit_class, position, local, tf.gather(self._magnitude, tf.gather(ids, piece)))
        need_len = tf.gather(word_units, tf.cast(tf.where(needs)[:, 0], tf.int32))
        back = self._viterbi(score, previous, need_len, tf.cumsum(need_len, exclusive=True))
        compact = tf.scatter_nd(need_units[:, None], tf.range(tf.size(need_units)), [n_units])
        redo = tf.where(tf.gather(in_class, group_first) & tf.gather(needs, tf.gather(word, group_first)))[:, 0]
        low = tf.gather(compact, tf.gather(group_start, redo))
        chosen = _backtracked(back, low, low + tf.gather(group_units, redo) - 1)
        last = tf.equal(tf.range(1, n_units + 1), tf.gather(unit_splits, piece_of + 1))
        redone = unit_class >= 0
        mine = tf.scatter_nd(need_units[:, None], tf.ones_like(need_units), [n_units]) > 0
        keep = tf.where(mine, tf.scatter_nd(need_units[:, None], tf.cast(tf.where(redone, chosen, tf.gather(
            last, need_units)), tf.int32), [n_units]) > 0, last)
        unit_ids = tf.gather(ids, piece_of)
        better = tf.where(redone, tf.gather(self._members, tf.maximum(unit_class, 0) * self._width + back),
                          tf.gather(unit_ids, need_units))
        new_ids = tf.where(mine, tf.scatter_nd(need_units[:, None], better, [n_units]), unit_ids)
        kept = tf.where(keep)[:, 0]
        new_splits = tf.concat([[0], tf.cumsum(counts(tf.gather(unit_word, kept), n_words))], 0)
        return tf.RaggedTensor.from_row_splits(tf.gather(new_ids, kept), tf.cast(new_splits, tf.int64), validate=False)

    def _options(self, unit_class, position, local, own) -> tuple[tf.Tensor, tf.Tensor]:
        """Return (score magnitude [C, width - 1], the unit before [C, width - 1]) of the piece of each multiplicity
        ending at each unit: ``NONE`` where no such piece fits; the unit before a word's start is C (sum 0)."""
        m = tf.range(1, self._width)[None, :]
        slot = tf.maximum(unit_class, 0)[:, None] * self._width + m
        in_class = (unit_class >= 0)[:, None]
        valid = tf.where(in_class, (m <= position[:, None]) & (tf.gather(self._members, slot) >= 0), m == 1)
        score = tf.where(valid, tf.where(in_class, tf.gather(self._member_magnitude, slot), own[:, None]),
                         tf.constant(NONE, tf.int64))
        n = tf.size(unit_class)
        return score, tf.where(valid & (m <= local[:, None]), tf.range(n)[:, None] - m, n)

    def _viterbi(self, score, previous, need_len, need_start) -> tf.Tensor:
        """Return the multiplicity of the best piece ending at each unit (int32 [C]): one iteration per unit position
        of the longest word that needs it, every such word at once."""
        m = tf.range(1, self._width)[None, :]
        n_units = tf.size(previous) // (self._width - 1)
        steps = tf.reduce_max(tf.concat([[0], need_len], 0))

        def step(n, best, back):
            active = tf.gather(need_start, tf.where(need_len > n)[:, 0]) + n  # [A]
            before = tf.gather(best, tf.gather(previous, active))
            reached = tf.gather(score, active) < NONE
            total = tf.where(reached & (before < NONE), float64_sum(before, tf.gather(score, active)),
                             tf.constant(NONE, tf.int64))
            low = tf.reduce_min(total, 1)
            pick = tf.reduce_max(tf.where(tf.equal(total, low[:, None]), m, 0), 1)  # equal sums: earliest start
            where = tf.scatter_nd(active[:, None], tf.ones_like(active), [n_units + 1]) > 0
            best = tf.where(where, tf.scatter_nd(active[:, None], low, [n_units + 1]), best)
            back = tf.where(where[:-1], tf.scatter_nd(active[:, None], pick, [n_units]), back)
            return n + 1, best, back

        best = tf.concat([tf.fill([n_units], tf.constant(NONE, tf.int64)), tf.zeros([1], tf.int64)], 0)
        _, _, back = tf.while_loop(lambda n, *_: n < steps, step, [tf.constant(0), best, tf.zeros([n_units], tf.int32)])
        return back


def _backtracked(back: tf.Tensor, low: tf.Tensor, cur: tf.Tensor) -> tf.Tensor:
    """Return whether each unit closes a piece of its group's best path, walking every group (first unit ``low``,
    last ``cur``) back at once."""
    n_units = tf.size(back)

    def step(cur, chosen):
        at = tf.gather(cur, tf.where(cur >= low)[:, 0])
        chosen = chosen | (tf.scatter_nd(at[:, None], tf.ones_like(at), [n_units]) > 0)
        return cur - tf.where(cur >= low, tf.maximum(tf.gather(back, tf.maximum(cur, 0)), 1), 0), chosen

    _, chosen = tf.while_loop(lambda cur, _: tf.reduce_any(cur >= low), step, [cur, tf.zeros([n_units], tf.bool)])
    return chosen
