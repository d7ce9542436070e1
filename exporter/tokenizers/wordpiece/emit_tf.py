"""A WordPiece tokenizer in TensorFlow ops that TFLite runs without Flex (select TF ops); framed in ``framing_tf``.

TFLite has no regex, Unicode or string-join kernels, so the reference's behaviour is applied to
integer code points with the tables of ``wordpiece.codepoints``, and strings appear only where
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

from ..shared.chars_tf import code_points, counts, expanded, lookup, specials
from .codepoints import ISOLATED, SPELLING, WHITESPACE, code_point_tables, private_vocab
from .spec import WordPieceSpec



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

    def normalized(self, cps: tf.Tensor, row: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Steps 2-3: return (normalized code points, their rows), specials as placeholders."""
        mark, inside = specials(cps, row, self._tables.specials)
        entry = lookup(self._norm_blocks, self._norm_values, cps)
        cps, row = expanded(entry, cps, row, mark, inside, self._rows, self._row_lengths, self._tables.width)
        if not self._tables.normalized_specials:
            return cps, row
        mark, inside = specials(cps, row, self._tables.normalized_specials)
        kept = tf.where(tf.logical_not(inside) | (mark > 0))[:, 0]
        return tf.gather(tf.where(mark > 0, mark, cps), kept), tf.gather(row, kept)

    def letters(self, cps: tf.Tensor, row: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Step 4: return (letter, starts-a-word, row) of every character that is part of a word."""
        value = lookup(self._class_blocks, self._class_values, cps)
        kind, letter = value % 4, value // 4
        before = tf.concat([[WHITESPACE], kind[:-1]], 0)  # kind of the previous character
        new_row = tf.not_equal(row, tf.concat([[-1], row[:-1]], 0))
        starts = (kind == ISOLATED) | (before == WHITESPACE) | (before == ISOLATED) | new_row
        kept = tf.where(kind != WHITESPACE)[:, 0]
        letter, starts, row = tf.gather(letter, kept), tf.gather(starts, kept), tf.gather(row, kept)
        word = tf.cumsum(tf.cast(starts, tf.int32)) - 1
        too_long = tf.gather(counts(word, tf.reduce_max(tf.concat([word, [-1]], 0)) + 1), word) > self._max_chars
        keep = tf.where(tf.logical_not(too_long) | starts)[:, 0]
        letter = tf.where(too_long, 0, letter)  # letter 0: no vocabulary entry matches: the word is [UNK]
        return tf.gather(letter, keep), tf.gather(starts, keep), tf.gather(row, keep)

    def token_ids(self, text: tf.Tensor, prompt: str = "") -> tf.RaggedTensor:
        """Steps 1-5: return the word-piece ids of each ``prompt`` + text, unframed: ragged int32 [N, None]."""
        letter, starts, row = self.letters(*self.normalized(*code_points(text, prompt)))
        spelled = letter * 2 + tf.cast(tf.logical_not(starts), tf.int32)
        word = tf.cumsum(tf.cast(starts, tf.int32)) - 1
        n_words = tf.reduce_sum(tf.cast(starts, tf.int32))
        letter_splits = tf.concat([[0], tf.cumsum(counts(word, n_words))], axis=0)
        words = self._speller.detokenize(
            tf.RaggedTensor.from_row_splits(spelled, tf.cast(letter_splits, tf.int64), validate=False))
        pieces = self._wordpiece.tokenize(words)  # [words, pieces]
        word_row = tf.gather(row, tf.where(starts)[:, 0])
        word_splits = tf.concat([[0], tf.cumsum(counts(word_row, tf.shape(text)[0]))], axis=0)
        return tf.RaggedTensor.from_row_splits(tf.gather(self._ids, pieces.flat_values),
                                               tf.gather(pieces.row_splits, word_splits), validate=False)
