"""Emit a WordPiece tokenizer with TensorFlow and tensorflow-text ops (for SavedModel and TFLite).

tf-text's BertTokenizer/FastBertTokenizer normalize with NFKC case folding and limit words by
bytes, not HF's rules (DESIGN.md). As in the ONNX graph, the reference's per-code-point
behaviour (``WordPieceSpec.char_classes``) is applied with plain ops, and tf-text does only
the splitting and the WordPiece:

1. special-token literals → private-use placeholders; characters the reference deletes → removed
   (``tf.strings.regex_replace``, RE2);
2. ``unicode_split`` + a ``StaticHashTable`` of the normalization table + ``reduce_join``;
3. ``tf_text.regex_split`` into words (whitespace dropped, punctuation/CJK kept alone);
4. words longer than ``max_input_chars_per_word`` *characters* → the unknown token, then
   ``FastWordpieceTokenizer`` (a failed word is one [UNK], as in HF); placeholder ids → special ids;
5. truncate to max_seq_length - 2, add [CLS]/[SEP], pad to the longest row.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_text as tf_text

from .wordpiece import SENTINEL, CharClasses, WordPieceSpec

OUTPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
MISSING = SENTINEL  # the table's default: "this character maps to itself"


class WordPieceTokenizerTF(tf.Module):
    """``tokenize(text: tf.string [N]) -> {input_ids, attention_mask, token_type_ids}: int64 [N, L]``."""

    def __init__(self, spec: WordPieceSpec, name: str = "wordpiece_tokenizer"):
        super().__init__(name=name)
        classes: CharClasses = spec.char_classes()
        placeholders = spec.placeholders()
        rules = spec.regex_rules()
        self._reserved, self._specials, self._deleted = rules.reserved, rules.specials, rules.deleted
        self._split = f"{rules.whitespace}+|{rules.isolated}"
        self._keep = rules.isolated
        keys = [k for k, v in classes.mapped.items()]
        self._table = None
        if keys:
            self._table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(keys, [classes.mapped[k] for k in keys]), default_value=MISSING)
        vocab = list(spec.vocab)
        self._special_ids = tf.constant(list(range(len(vocab))) + list(placeholders.values()), tf.int64)
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocab + list(placeholders), suffix_indicator=spec.continuing_subword_prefix,
            max_bytes_per_word=4 * spec.max_input_chars_per_word + 4, token_out_type=tf.int64,
            unknown_token=spec.unk_token, no_pretokenization=True)
        self._unk_token = spec.unk_token
        self._max_chars = spec.max_input_chars_per_word
        self._body = spec.max_seq_length - 2
        self._cls, self._sep, self._pad = spec.cls_id, spec.sep_id, spec.pad_id

    def normalize(self, text: tf.Tensor) -> tf.Tensor:
        """Return the texts as the reference's normalizer leaves them (specials as placeholders)."""
        text = tf.strings.regex_replace(text, self._reserved, "")
        for pattern, mark in self._specials:
            text = tf.strings.regex_replace(text, pattern, mark)
        text = tf.strings.regex_replace(text, self._deleted, "")
        if self._table is None:
            return text
        chars = tf.strings.unicode_split(text, "UTF-8")
        looked_up = self._table.lookup(chars.flat_values)
        mapped = tf.where(tf.equal(looked_up, MISSING), chars.flat_values, looked_up)
        return tf.strings.reduce_join(chars.with_flat_values(mapped), axis=1)

    def token_ids(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Return the word-piece ids of each text, unframed: ragged int64 [N, None]."""
        words = tf_text.regex_split(self.normalize(text), self._split, self._keep)
        flat = words.flat_values
        too_long = tf.strings.length(flat, unit="UTF8_CHAR") > self._max_chars
        flat = tf.where(too_long, tf.constant(self._unk_token), flat)
        pieces = self._wordpiece.tokenize(flat)
        ids = words.with_flat_values(pieces).merge_dims(1, 2)
        return ids.with_flat_values(tf.gather(self._special_ids, ids.flat_values))

    def tokenize(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        """Return the framed, padded ids like the reference tokenizer (padding=True, truncation=True)."""
        ids = self.token_ids(text)[:, : self._body]
        rows = ids.nrows()
        cls = tf.fill([rows, 1], tf.constant(self._cls, tf.int64))
        sep = tf.fill([rows, 1], tf.constant(self._sep, tf.int64))
        framed = tf.concat([cls, ids, sep], axis=1)
        input_ids = framed.to_tensor(default_value=self._pad)
        mask = tf.ones_like(framed).to_tensor(default_value=0)
        return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": tf.zeros_like(mask)}
