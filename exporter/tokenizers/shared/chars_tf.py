"""TensorFlow pieces every code-point tokenizer emitter shares (TFLite converts them to builtins).

TFLite has no regex, Unicode or string-join kernels, so the emitters (``wordpiece.emit_tf``,
``unigram.emit_tf``) work on integer code points: ``ByteSplitWithOffsets`` (tf-text) turns the texts
into UTF-8 bytes, :func:`code_points` decodes them with arithmetic (an invalid sequence becomes
U+FFFD, one per byte), :func:`specials` finds the special-token literals and :func:`expanded`
applies a normalization table (each code point kept, deleted or replaced by up to ``width`` code
points). Integers are int32 inside (the TFLite kernels' native type).
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from .codepoints import BLOCK, DELETED

REPLACEMENT = 0xFFFD


def shifted(x: tf.Tensor, by: int, fill: int) -> tf.Tensor:
    """Return x[i + by] for every i, ``fill`` past the end."""
    return tf.concat([x[by:], tf.fill([tf.minimum(by, tf.size(x))], tf.constant(fill, x.dtype))], axis=0)


def shifted_right(x: tf.Tensor, by: int, fill) -> tf.Tensor:
    """Return x[i - by] for every i, ``fill`` before the start."""
    n = tf.size(x)
    return tf.concat([tf.fill([tf.minimum(by, n)], tf.constant(fill, x.dtype)), x[:tf.maximum(n - by, 0)]], axis=0)


def row_ids(row_splits: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Return the row of each of ``size`` flat values (rows may be empty)."""
    inner = row_splits[1:-1]
    marks = tf.math.unsorted_segment_sum(tf.ones_like(inner), inner, size + 1)
    return tf.cumsum(marks)[:size]


def prepended(values: tf.Tensor, row_splits: tf.Tensor, prefix: list[int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Return (values, row_splits) with ``prefix`` inserted at the start of every row."""
    if not prefix:
        return values, row_splits
    rows = tf.size(row_splits) - 1
    size = len(prefix)
    new_splits = row_splits + tf.range(rows + 1) * size
    old_row = row_ids(row_splits, tf.size(values))
    old_to = tf.range(tf.size(values)) + (old_row + 1) * size
    prefix_to = (new_splits[:-1][:, None] + tf.range(size)[None, :])
    positions = tf.concat([old_to, tf.reshape(prefix_to, [-1])], axis=0)
    updates = tf.concat([values, tf.tile(tf.constant(prefix, tf.int32), [rows])], axis=0)
    merged = tf.scatter_nd(positions[:, None], updates, [tf.size(values) + rows * size])
    return merged, new_splits


def counts(rows: tf.Tensor, n_rows: tf.Tensor) -> tf.Tensor:
    return tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, n_rows)


def lookup(blocks: tf.Tensor, values: tf.Tensor, cps: tf.Tensor) -> tf.Tensor:
    """Return the values of a two-stage table (``TwoStageTable``: blocks, values) at ``cps``."""
    return tf.gather(values, tf.gather(blocks, cps // BLOCK) * BLOCK + cps % BLOCK)


def code_points(text: tf.Tensor, prompt: str = "") -> tuple[tf.Tensor, tf.Tensor]:
    """Return (code points [C] int32, row of each [C] int32) of ``prompt`` + each text."""
    _, _, cps, row = utf8_chars(text, prompt)
    return cps, row


def utf8_chars(text: tf.Tensor, prompt: str = "") -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Return (UTF-8 bytes [B], index of each character's first byte [C], code points [C], row of each [C]) of
    ``prompt`` + each text, int32."""
    split = tf_text.ByteSplitter().split(text)
    byte, splits = prepended(tf.cast(split.flat_values, tf.int32), tf.cast(split.row_splits, tf.int32),
                              list(prompt.encode("utf-8")))
    row = row_ids(splits, tf.size(byte))
    is_continuation = lambda b: (b >= 0x80) & (b < 0xC0)  # noqa: E731
    length = tf.where(byte < 0x80, 1, tf.where((byte >= 0xC2) & (byte < 0xE0), 2, tf.where(
        (byte >= 0xE0) & (byte < 0xF0), 3, tf.where((byte >= 0xF0) & (byte < 0xF5), 4, 0))))
    nexts = [shifted(byte, k, 0) for k in (1, 2, 3)]
    same_row = [tf.equal(shifted(row, k, -1), row) for k in (1, 2, 3)]
    valid = length > 0
    for k in (1, 2, 3):
        valid &= (length <= k) | (is_continuation(nexts[k - 1]) & same_row[k - 1])
    payload = [n - 0x80 for n in nexts]
    decoded = tf.where(length == 1, byte, tf.where(
        length == 2, (byte - 0xC0) * 64 + payload[0], tf.where(
            length == 3, (byte - 0xE0) * 4096 + payload[0] * 64 + payload[1],
            (byte - 0xF0) * 262144 + payload[0] * 4096 + payload[1] * 64 + payload[2])))
    reach = tf.where(valid, length, 1)
    covered = tf.zeros_like(byte, tf.bool)
    for k in (1, 2, 3):  # a continuation byte of a valid sequence starting k bytes before
        covered |= shifted_right(reach, k, 0) > k
    starts = tf.where(tf.logical_not(covered))[:, 0]
    cps = tf.where(valid, decoded, REPLACEMENT)
    return byte, tf.cast(starts, tf.int32), tf.gather(cps, starts), tf.gather(row, starts)


def specials(cps: tf.Tensor, row: tf.Tensor, literals) -> tuple[tf.Tensor, tf.Tensor]:
    """Return (placeholder code point at each match start of ``literals`` or 0, inside-a-match mask)."""
    start = tf.zeros_like(cps)
    inside = tf.zeros_like(cps, tf.bool)
    for literal, mark in literals:
        match = tf.ones_like(cps, tf.bool)
        for k, cp in enumerate(literal):
            match &= tf.equal(shifted(cps, k, -1), cp) & tf.equal(shifted(row, k, -1), row)
        start = tf.where(match, mark, start)
        for k in range(len(literal)):
            inside |= shifted_right(match, k, False)
    return start, inside


def expanded(entry: tf.Tensor, cps: tf.Tensor, row: tf.Tensor, mark: tf.Tensor, inside: tf.Tensor,
             rows: tf.Tensor, row_lengths: tf.Tensor, width: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Return (code points, rows) after the table: ``entry`` 0 keeps a code point, DELETED drops it, k > 0
    writes ``rows[k][:row_lengths[k]]``; a special token's placeholder (``mark``) replaces its literal."""
    replaced = tf.gather(rows, tf.maximum(entry, 0))  # [C, width]
    count = tf.where(entry > 0, tf.gather(row_lengths, tf.maximum(entry, 0)), tf.where(tf.equal(entry, DELETED), 0, 1))
    first = tf.where(mark > 0, mark, tf.where(entry > 0, replaced[:, 0], cps))
    count = tf.where(mark > 0, 1, tf.where(inside, 0, count))
    out = tf.concat([first[:, None], replaced[:, 1:]], axis=1)
    keep = tf.range(width)[None, :] < count[:, None]
    where = tf.where(keep)
    return tf.gather_nd(out, where), tf.gather(row, where[:, 0])
