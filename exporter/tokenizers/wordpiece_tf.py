"""A WordPiece tokenizer in TensorFlow ops that TFLite runs without Flex (select TF ops); framed in ``framing_tf``.

TFLite has no regex, Unicode or string-join kernels, so the reference's behaviour is applied to
integer code points with the tables of ``wordpiece_codepoints``, and strings appear only where
tensorflow-text has a TFLite kernel:

1. ``ByteSplitWithOffsets`` (tf-text): texts → UTF-8 bytes; decoded to code points with
   arithmetic (an invalid sequence becomes U+FFFD, one per byte);
2. special-token literals are matched on the raw code points (as HF does), each match becomes
   one placeholder;
3. the normalization table: every code point is kept, deleted or replaced by up to ``width``
   code points (a [P, width] gather, then a mask); special tokens marked ``normalized`` are
   matched on the result, as HF matches them;
4. the class table: whitespace is dropped, isolated characters (punctuation, CJK, placeholders)
   are words of their own, words longer than ``max_input_chars_per_word`` characters and
   characters no vocabulary entry has become one unknown letter (HF: the whole word is [UNK]);
5. ``FastWordpieceDetokenize`` (tf-text) spells each word as a string in the private alphabet
   and ``FastWordpieceTokenize`` (tf-text, no pre-tokenization: one word per string) runs
   WordPiece over the vocabulary in that alphabet; the pieces are regrouped per text;

Integers are int32 inside (the TFLite kernels' native type).
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from .wordpiece import WordPieceSpec
from .wordpiece_codepoints import BLOCK, DELETED, ISOLATED, SPELLING, WHITESPACE, TwoStageTable, \
    code_point_tables, private_vocab

REPLACEMENT = 0xFFFD


def _shifted(x: tf.Tensor, by: int, fill: int) -> tf.Tensor:
    """Return x[i + by] for every i, ``fill`` past the end."""
    return tf.concat([x[by:], tf.fill([tf.minimum(by, tf.size(x))], tf.constant(fill, x.dtype))], axis=0)


def _shifted_right(x: tf.Tensor, by: int, fill) -> tf.Tensor:
    """Return x[i - by] for every i, ``fill`` before the start."""
    n = tf.size(x)
    return tf.concat([tf.fill([tf.minimum(by, n)], tf.constant(fill, x.dtype)), x[:tf.maximum(n - by, 0)]], axis=0)


def _row_ids(row_splits: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Return the row of each of ``size`` flat values (rows may be empty)."""
    inner = row_splits[1:-1]
    marks = tf.math.unsorted_segment_sum(tf.ones_like(inner), inner, size + 1)
    return tf.cumsum(marks)[:size]


def _prepended(values: tf.Tensor, row_splits: tf.Tensor, prefix: list[int]) -> tuple[tf.Tensor, tf.Tensor]:
    """Return (values, row_splits) with ``prefix`` inserted at the start of every row."""
    if not prefix:
        return values, row_splits
    rows = tf.size(row_splits) - 1
    size = len(prefix)
    new_splits = row_splits + tf.range(rows + 1) * size
    old_row = _row_ids(row_splits, tf.size(values))
    old_to = tf.range(tf.size(values)) + (old_row + 1) * size
    prefix_to = (new_splits[:-1][:, None] + tf.range(size)[None, :])
    positions = tf.concat([old_to, tf.reshape(prefix_to, [-1])], axis=0)
    updates = tf.concat([values, tf.tile(tf.constant(prefix, tf.int32), [rows])], axis=0)
    merged = tf.scatter_nd(positions[:, None], updates, [tf.size(values) + rows * size])
    return merged, new_splits


def _counts(rows: tf.Tensor, n_rows: tf.Tensor) -> tf.Tensor:
    return tf.math.unsorted_segment_sum(tf.ones_like(rows), rows, n_rows)


def _lookup(table: TwoStageTable, blocks: tf.Tensor, values: tf.Tensor, cps: tf.Tensor) -> tf.Tensor:
    return tf.gather(values, tf.gather(blocks, cps // BLOCK) * BLOCK + cps % BLOCK)


class WordPieceTokenizerTF(tf.Module):
    """``tokenize(text: tf.string [N]) -> {input_ids, attention_mask, token_type_ids}: int64 [N, L]``."""

    def __init__(self, spec: WordPieceSpec, name: str = "wordpiece_tokenizer"):
        super().__init__(name=name)
        tables = code_point_tables(spec)
        self._tables = tables
        self._norm_blocks = tf.constant(tables.normalize.blocks)
        self._norm_values = tf.constant(tables.normalize.values)
        self._rows = tf.constant(tables.replacements)
        self._row_lengths = tf.constant(tables.replacement_lengths)
        self._class_blocks = tf.constant(tables.classes.blocks)
        self._class_values = tf.constant(tables.classes.values)
        vocab, unknown = private_vocab(spec, tables)
        spelling = [chr(SPELLING[a]) for a in range(len(tables.letters) + 1)]
        self._speller = tf_text.FastWordpieceTokenizer(  # letter 2a: a word's first letter, 2a + 1: the others
            vocab=[piece for letter in spelling for piece in (letter, "##" + letter)] + ["[UNK]"],
            suffix_indicator="##", unknown_token="[UNK]", no_pretokenization=True, support_detokenization=True)
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocab, suffix_indicator=spec.continuing_subword_prefix, unknown_token=unknown,
            no_pretokenization=True, max_bytes_per_word=4 * spec.max_input_chars_per_word + 4,
            token_out_type=tf.int32)
        placeholder_ids = list(spec.placeholders().values())
        self._ids = tf.constant(list(range(len(spec.vocab))) + placeholder_ids, tf.int32)
        self._max_chars = spec.max_input_chars_per_word

    def code_points(self, text: tf.Tensor, prompt: str = "") -> tuple[tf.Tensor, tf.Tensor]:
        """Step 1: return (code points [C] int32, row of each [C] int32) of ``prompt`` + each text."""
        split = tf_text.ByteSplitter().split(text)
        byte, splits = _prepended(tf.cast(split.flat_values, tf.int32), tf.cast(split.row_splits, tf.int32),
                                  list(prompt.encode("utf-8")))
        row = _row_ids(splits, tf.size(byte))
        is_continuation = lambda b: (b >= 0x80) & (b < 0xC0)  # noqa: E731
        length = tf.where(byte < 0x80, 1, tf.where((byte >= 0xC2) & (byte < 0xE0), 2, tf.where(
            (byte >= 0xE0) & (byte < 0xF0), 3, tf.where((byte >= 0xF0) & (byte < 0xF5), 4, 0))))
        nexts = [_shifted(byte, k, 0) for k in (1, 2, 3)]
        same_row = [tf.equal(_shifted(row, k, -1), row) for k in (1, 2, 3)]
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
            covered |= _shifted_right(reach, k, 0) > k
        starts = tf.where(tf.logical_not(covered))[:, 0]
        cps = tf.where(valid, decoded, REPLACEMENT)
        return tf.gather(cps, starts), tf.gather(row, starts)

    @staticmethod
    def _specials(cps: tf.Tensor, row: tf.Tensor, literals) -> tuple[tf.Tensor, tf.Tensor]:
        """Return (placeholder code point at each match start of ``literals`` or 0, inside-a-match mask)."""
        start = tf.zeros_like(cps)
        inside = tf.zeros_like(cps, tf.bool)
        for literal, mark in literals:
            match = tf.ones_like(cps, tf.bool)
            for k, cp in enumerate(literal):
                match &= tf.equal(_shifted(cps, k, -1), cp) & tf.equal(_shifted(row, k, -1), row)
            start = tf.where(match, mark, start)
            for k in range(len(literal)):
                inside |= _shifted_right(match, k, False)
        return start, inside

    def normalized(self, cps: tf.Tensor, row: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Steps 2-3: return (normalized code points, their rows), specials as placeholders."""
        mark, inside = self._specials(cps, row, self._tables.specials)
        entry = _lookup(self._tables.normalize, self._norm_blocks, self._norm_values, cps)
        replaced = tf.gather(self._rows, tf.maximum(entry, 0))  # [C, width]
        count = tf.where(entry > 0, tf.gather(self._row_lengths, tf.maximum(entry, 0)),
                         tf.where(tf.equal(entry, DELETED), 0, 1))
        first = tf.where(mark > 0, mark, tf.where(entry > 0, replaced[:, 0], cps))
        count = tf.where(mark > 0, 1, tf.where(inside, 0, count))
        out = tf.concat([first[:, None], replaced[:, 1:]], axis=1)
        keep = tf.range(self._tables.width)[None, :] < count[:, None]
        where = tf.where(keep)
        cps, row = tf.gather_nd(out, where), tf.gather(row, where[:, 0])
        if not self._tables.normalized_specials:
            return cps, row
        mark, inside = self._specials(cps, row, self._tables.normalized_specials)
        kept = tf.where(tf.logical_not(inside) | (mark > 0))[:, 0]
        return tf.gather(tf.where(mark > 0, mark, cps), kept), tf.gather(row, kept)

    def letters(self, cps: tf.Tensor, row: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Step 4: return (letter, starts-a-word, row) of every character that is part of a word."""
        value = _lookup(self._tables.classes, self._class_blocks, self._class_values, cps)
        kind, letter = value % 4, value // 4
        before = tf.concat([[WHITESPACE], kind[:-1]], 0)  # kind of the previous character
        new_row = tf.not_equal(row, tf.concat([[-1], row[:-1]], 0))
        starts = (kind == ISOLATED) | (before == WHITESPACE) | (before == ISOLATED) | new_row
        kept = tf.where(kind != WHITESPACE)[:, 0]
        letter, starts, row = tf.gather(letter, kept), tf.gather(starts, kept), tf.gather(row, kept)
        word = tf.cumsum(tf.cast(starts, tf.int32)) - 1
        too_long = tf.gather(_counts(word, tf.reduce_max(tf.concat([word, [-1]], 0)) + 1), word) > self._max_chars
        keep = tf.where(tf.logical_not(too_long) | starts)[:, 0]
        letter = tf.where(too_long, 0, letter)  # letter 0: no vocabulary entry matches: the word is [UNK]
        return tf.gather(letter, keep), tf.gather(starts, keep), tf.gather(row, keep)

    def token_ids(self, text: tf.Tensor, prompt: str = "") -> tf.RaggedTensor:
        """Steps 1-5: return the word-piece ids of each ``prompt`` + text, unframed: ragged int32 [N, None]."""
        letter, starts, row = self.letters(*self.normalized(*self.code_points(text, prompt)))
        spelled = letter * 2 + tf.cast(tf.logical_not(starts), tf.int32)
        word = tf.cumsum(tf.cast(starts, tf.int32)) - 1
        n_words = tf.reduce_sum(tf.cast(starts, tf.int32))
        letter_splits = tf.concat([[0], tf.cumsum(_counts(word, n_words))], axis=0)
        words = self._speller.detokenize(
            tf.RaggedTensor.from_row_splits(spelled, tf.cast(letter_splits, tf.int64), validate=False))
        pieces = self._wordpiece.tokenize(words)  # [words, pieces]
        word_row = tf.gather(row, tf.where(starts)[:, 0])
        word_splits = tf.concat([[0], tf.cumsum(_counts(word_row, tf.shape(text)[0]))], axis=0)
        return tf.RaggedTensor.from_row_splits(tf.gather(self._ids, pieces.flat_values),
                                               tf.gather(pieces.row_splits, word_splits), validate=False)
