"""A byte-level BPE tokenizer in TensorFlow ops (SavedModel only: TFLite has no BPE kernel); framed in ``framing_tf``.

1. texts → UTF-8 bytes and code points (``chars_tf.utf8_chars``); special-token literals →
   placeholders, matched on the raw text; the whitespace before an lstrip token goes with it;
2. pre-tokens: GPT-2's regex as the local rules of :func:`exporter.tokenizers.bpe.spec.pretoken_starts`
   (with :class:`TfOps`), on the code points' probed classes;
3. each pre-token's bytes are spelled in the byte alphabet (a placeholder stays itself), and
   tensorflow-text's ``SentencepieceTokenizer`` runs BPE with the model of ``BpeSpec.model_proto``.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from ..shared.chars_tf import counts, lookup, shifted, shifted_right, utf8_chars
from .spec import WHITESPACE, BpeSpec, byte_alphabet


class TfOps:
    """``bpe.pretoken_starts``'s, ``bpe.matched_literals``' and ``bpe.kept_chain``'s array operations in TensorFlow."""

    ahead, behind = staticmethod(shifted), staticmethod(shifted_right)
    eq, ne, where = staticmethod(tf.equal), staticmethod(tf.not_equal), staticmethod(tf.where)
    and_, or_, not_ = staticmethod(tf.logical_and), staticmethod(tf.logical_or), staticmethod(tf.logical_not)

    @staticmethod
    def cumsum(x: tf.Tensor) -> tf.Tensor:
        return tf.cumsum(tf.cast(x, tf.int32))

    @staticmethod
    def next_of(mask: tf.Tensor) -> tf.Tensor:
        """Return the index of the first True at or after every i (the length past the last one)."""
        at = tf.concat([tf.cast(tf.where(mask)[:, 0], tf.int32), [tf.size(mask)]], 0)
        return tf.gather(at, tf.cumsum(tf.cast(mask, tf.int32), exclusive=True))

    @staticmethod
    def prev_of(mask: tf.Tensor) -> tf.Tensor:
        """Return the index of the last True at or before every i (-1 before the first one)."""
        return tf.gather(tf.concat([[-1], tf.cast(tf.where(mask)[:, 0], tf.int32)], 0), tf.cumsum(tf.cast(mask, tf.int32)))

    @staticmethod
    def take(x: tf.Tensor, index: tf.Tensor, fill) -> tf.Tensor:
        """Return x[index], ``fill`` for -1 and len(x)."""
        padded = tf.concat([x, tf.constant([fill], x.dtype)], 0)
        return tf.gather(padded, tf.where(index < 0, tf.size(x), index))

    @staticmethod
    def select(condition: tf.Tensor, x, y) -> tf.Tensor:
        """Select between integers (int32)."""
        return tf.where(condition, _int(x), _int(y))

    @staticmethod
    def add(x: tf.Tensor, y) -> tf.Tensor:
        """Add integers (int32)."""
        return tf.add(_int(x), _int(y))

    @staticmethod
    def scatter_max(x: tf.Tensor, index: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        """Return x with x[index[i]] raised to values[i] where that is larger."""
        return tf.tensor_scatter_nd_max(x, index[:, None], values)

    @staticmethod
    def isin(x: tf.Tensor, values: list[int]) -> tf.Tensor:
        return tf.reduce_any(tf.equal(x[:, None], tf.constant(values, x.dtype)[None, :]), 1)

    @staticmethod
    def nonzero(mask: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.where(mask)[:, 0], tf.int32)

    @staticmethod
    def gather(x, index: tf.Tensor) -> tf.Tensor:
        return tf.gather(_int(x), index)

    @staticmethod
    def row_max(x: tf.Tensor) -> tf.Tensor:
        return tf.reduce_max(x, 1)

    @staticmethod
    def window(x: tf.Tensor, row: tf.Tensor, at: tf.Tensor, width: int, fill: int) -> tf.Tensor:
        """Return x[at + k] for every position in ``at`` and k < width ([P, width]), ``fill`` past the end of at's
        row."""
        index = at[:, None] + tf.range(width)[None, :]
        inside = index < tf.size(x)
        index = tf.minimum(index, tf.size(x) - 1)
        same = inside & tf.equal(tf.gather(row, index), tf.gather(row, at)[:, None])
        return tf.where(same, tf.gather(x, index), fill)

    @staticmethod
    def matches(window: tf.Tensor, table: np.ndarray) -> tf.Tensor:
        """Return [P, S]: True where window row p equals table row s at every column where table[s] is not -1."""
        return tf.reduce_all(tf.equal(window[:, None, :], _int(table)) | (table < 0), 2)

    @staticmethod
    def spans(like: tf.Tensor, at: tf.Tensor, length: tf.Tensor, first: int, weight: tf.Tensor) -> tf.Tensor:
        """Return True at every i in at + first .. at + length - 1 of the positions where ``weight`` is True."""
        count = tf.cast(weight, tf.int32)
        marks = tf.math.unsorted_segment_sum(tf.concat([count, -count], 0), tf.concat([at + first, at + length], 0),
                                             tf.size(like) + 1)
        return tf.cumsum(marks)[:tf.size(like)] > 0

    @staticmethod
    def scatter(like: tf.Tensor, at: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
        return tf.scatter_nd(at[:, None], values, tf.shape(like))


def _int(x) -> tf.Tensor:
    """Return a tensor or a constant (number, list, numpy array) as int32."""
    return x if isinstance(x, tf.Tensor) else tf.constant(np.asarray(x), tf.int32)


def lstripped(kinds: tf.Tensor, row: tf.Tensor, takes: tf.Tensor) -> tf.Tensor:
    """Return the whitespace characters a following ``takes`` character (an lstrip token's start) swallows."""
    space = tf.equal(kinds, WHITESPACE)
    solid = tf.cast(tf.where(tf.logical_not(space))[:, 0], tf.int32)
    nxt = tf.cumsum(tf.cast(tf.logical_not(space), tf.int32))  # for whitespace: the index of the next solid one
    at = tf.gather(tf.concat([solid, [0]], 0), tf.minimum(nxt, tf.size(solid)))
    exists = nxt < tf.size(solid)
    return space & exists & tf.gather(takes, at) & tf.equal(tf.gather(row, at), row)


class BpeTokenizerTF(tf.Module):
    """``token_ids(text: tf.string [N], prompt) -> ragged int32 [N, None]``: the reference's piece ids, unframed."""

    def __init__(self, spec: BpeSpec, name: str = "bpe_tokenizer"):
        super().__init__(name=name)
        table = spec.class_table()
        self._classes = [tf.constant(table.blocks), tf.constant(table.values)]
        marks = list(spec.placeholders())
        self._marks = tf.constant([0, *map(ord, marks)], tf.int32)
        self._lstrip = [ord(mark) for (_, _, lstrip), mark in zip(spec.specials, marks, strict=True) if lstrip]
        self._alphabet = tf.constant([ord(c) for c in byte_alphabet()], tf.int32)
        self._bpe = tf_text.SentencepieceTokenizer(model=spec.model_proto())
        self._ids = tf.constant(spec.ids().astype(np.int32))
        self._starts = spec.starts
        self._special_marks = spec.special_marks
        self._nfc = spec.nfc

    def _matched_specials(self, cps: tf.Tensor, row: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Return (placeholder at each kept special-token match's start or 0, inside-a-kept-match mask)."""
        index, inside = self._special_marks(cps, row, TfOps)
        return tf.gather(self._marks, index), inside

    def words(self, text: tf.Tensor, prompt: str = "") -> tuple[tf.Tensor, tf.Tensor]:
        """Steps 1-2: return (each pre-token spelled in the byte alphabet [W], row of each [W])."""
        if self._nfc:  # the prompt and the text together, as the reference normalizes prompt + text
            joined = tf.strings.join([tf.fill(tf.shape(text), prompt), text]) if prompt else text
            text, prompt = tf_text.normalize_utf8(joined, "NFC"), ""
        byte, first_byte, cps, row = utf8_chars(text, prompt)
        last_byte = tf.concat([first_byte[1:], [tf.size(byte)]], 0)
        kinds = lookup(*self._classes, cps)
        mark, inside = self._matched_specials(cps, row)
        special = mark > 0
        takes = tf.reduce_any(tf.equal(mark[:, None], tf.constant(self._lstrip + [-1], tf.int32)[None, :]), 1)
        kept = tf.where((special | tf.logical_not(inside)) & tf.logical_not(lstripped(kinds, row, takes)))[:, 0]
        cps, kinds, row, mark, special, first_byte, last_byte = (
            tf.gather(x, kept) for x in (cps, kinds, row, mark, special, first_byte, last_byte))
        stretch_start = (tf.not_equal(row, shifted_right(row, 1, -1)) | special | shifted_right(special, 1, True))
        starts = self._starts(cps, kinds, stretch_start, TfOps)
        word = tf.cumsum(tf.cast(starts, tf.int32)) - 1
        last_byte = tf.where(special, first_byte + 1, last_byte)  # a placeholder is one letter
        spans = tf.ragged.range(first_byte, last_byte)
        letter_char = spans.value_rowids()
        letters = tf.where(tf.gather(special, letter_char), tf.gather(mark, letter_char),
                           tf.gather(self._alphabet, tf.gather(byte, spans.flat_values)))
        n_words = tf.reduce_sum(tf.cast(starts, tf.int32))
        spelled = tf.RaggedTensor.from_value_rowids(letters, tf.gather(word, letter_char), nrows=n_words)
        return tf.strings.unicode_encode(spelled, "UTF-8"), tf.gather(row, tf.where(starts)[:, 0])

    def token_ids(self, text: tf.Tensor, prompt: str = "") -> tf.RaggedTensor:
        """Steps 1-3: return the reference's piece ids of each ``prompt`` + text, unframed: ragged int32 [N, None]."""
        words, word_row = self.words(text, prompt)
        pieces = self._bpe.tokenize(words)  # [words, pieces]
        word_splits = tf.concat([[0], tf.cumsum(counts(word_row, tf.shape(text)[0]))], axis=0)
        return tf.RaggedTensor.from_row_splits(tf.gather(self._ids, tf.cast(pieces.flat_values, tf.int32)),
                                               tf.gather(pieces.row_splits, word_splits), validate=False)
