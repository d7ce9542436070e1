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
        n_groups = tf.reduce_sum(tf.cast(starts, tf.int32))
        group_units = tf.math.unsorted_segment_sum(mult, group, n_groups)
        long_run = in_class & (tf.gather(group_units, group) >= 2)
        needs = tf.math.unsorted_segment_sum(tf.cast(long_run, tf.int32), word, n_words) > 0
        # units: a piece of a class is `mult` of them, any other one; the unit closing a piece stands for it
        unit_splits = tf.concat([[0], tf.cumsum(mult)], 0)
        n_units = unit_splits[-1]
        piece_of = row_ids(unit_splits, n_units)
        word_start = tf.gather(unit_splits, splits)  # [words + 1]
        word_units = word_start[1:] - word_start[:-1]
        group_start = tf.gather(unit_splits, tf.where(starts)[:, 0])
        unit = tf.range(n_units)
        unit_word, unit_class = tf.gather(word, piece_of), tf.gather(cls, piece_of)
        position = unit - tf.gather(group_start, tf.gather(group, piece_of)) + 1  # 1-based, in its group
        best, back = self._viterbi(needs, word_units, word_start, unit_class, position, tf.gather(ids, piece_of))
        chosen = self._backtracked(needs, starts, in_class, word, group_start, group_units, back, n_units)
        redone = tf.gather(needs, unit_word) & (unit_class >= 0)
        last = tf.equal(unit + 1, tf.gather(unit_splits, piece_of + 1))
        keep = tf.where(redone, chosen, last)
        new_ids = tf.where(redone, tf.gather(self._members, tf.maximum(unit_class, 0) * self._width + back),
                           tf.gather(ids, piece_of))
        kept = tf.where(keep)[:, 0]
        new_splits = tf.concat([[0], tf.cumsum(counts(tf.gather(unit_word, kept), n_words))], 0)
        return tf.RaggedTensor.from_row_splits(tf.gather(new_ids, kept), tf.cast(new_splits, tf.int64), validate=False)

    def _viterbi(self, needs, word_units, word_start, unit_class, position, unit_id):
        """Return (best magnitude at each unit, the multiplicity of the piece ending there) over the words that
        need it: one iteration per unit position of the longest such word, every word at once."""
        width = self._width
        m = tf.range(1, width)[None, :]  # [1, width - 1]
        n_units = tf.size(unit_class)
        steps = tf.reduce_max(tf.concat([[0], tf.where(needs, word_units, 0)], 0))
        own = tf.gather(self._magnitude, unit_id)

        def step(n, best, back):
            active = tf.gather(word_start, tf.where(needs & (word_units > n))[:, 0]) + n  # [A]
            cls, pos = tf.gather(unit_class, active), tf.gather(position, active)
            slot = tf.maximum(cls, 0)[:, None] * width + m
            in_class = (cls >= 0)[:, None]
            valid = tf.where(in_class, (m <= pos[:, None]) & (tf.gather(self._members, slot) >= 0), m == 1)
            score = tf.where(in_class, tf.gather(self._member_magnitude, slot), tf.gather(own, active)[:, None])
            before = tf.where(m <= n, tf.gather(best, tf.maximum(active[:, None] - m, 0)), tf.zeros_like(score))
            valid &= before < NONE  # a start no path reaches
            total = tf.where(valid, float64_sum(before, score), tf.constant(NONE, tf.int64))
            low = tf.reduce_min(total, 1)
            pick = tf.reduce_max(tf.where(tf.equal(total, low[:, None]), m, 0), 1)  # equal sums: earliest start
            where = tf.scatter_nd(active[:, None], tf.ones_like(active), [n_units]) > 0
            best = tf.where(where, tf.scatter_nd(active[:, None], low, [n_units]), best)
            back = tf.where(where, tf.scatter_nd(active[:, None], pick, [n_units]), back)
            return n + 1, best, back

        _, best, back = tf.while_loop(lambda n, *_: n < steps, step,
                                      [tf.constant(0), tf.zeros([n_units], tf.int64), tf.zeros([n_units], tf.int32)])
        return best, back

    @staticmethod
    def _backtracked(needs, starts, in_class, word, group_start, group_units, back, n_units):
        """Return whether each unit closes a piece of its group's best path (groups of a class in words that need
        it), walking every group back from its last unit at once."""
        first = tf.where(starts)[:, 0]
        redo = tf.where(tf.gather(in_class, first) & tf.gather(needs, tf.gather(word, first)))[:, 0]
        low = tf.gather(group_start, redo)
        cur = low + tf.gather(group_units, redo) - 1

        def step(cur, chosen):
            live = tf.where(cur >= low)[:, 0]
            at = tf.gather(cur, live)
            chosen = chosen | (tf.scatter_nd(at[:, None], tf.ones_like(at), [n_units]) > 0)
            return cur - tf.where(cur >= low, tf.maximum(tf.gather(back, tf.maximum(cur, 0)), 1), 0), chosen

        _, chosen = tf.while_loop(lambda cur, _: tf.reduce_any(cur >= low), step,
                                  [cur, tf.zeros([n_units], tf.bool)])
        return chosen
