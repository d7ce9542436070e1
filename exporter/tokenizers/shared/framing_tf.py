"""The framing in TensorFlow, written once for every family: ``prefix $A suffix``, truncation, padding, masks.

A family's TF emitter returns each text's piece ids (ragged int32); :class:`TokenizerTF` keeps the
first ``Framing.body`` of each row, puts the prefix and suffix ids around them and pads to the
longest row with gathers and selects only, so that TFLite converts it to builtins.

Pairs (:meth:`TokenizerTF.tokenize_pairs`, rerankers) are framed the same way: the family's tokenizer
runs once over the 2N texts (queries, then documents), each row's two lengths are cut as the reference
cuts pairs (``pair_lengths``) and one gather lays out ``before $A between $B after`` with the template's
type ids.
"""
from __future__ import annotations

import tensorflow as tf

from ...errors import UnsupportedModelError
from .family import Framing, PairTemplate, TokenizerSpec
from .pair_lengths import kept_pair_lengths


def frame(pieces: tf.RaggedTensor, framing: Framing, *, min_rows: int = 0) -> dict[str, tf.Tensor]:
    """Return the int64 [N, L] outputs for the ragged piece ids of N texts.

    Args:
        pieces: int32 [N, None] piece ids of each text.
        framing: the reference's template, truncation and padding.
        min_rows: rows of just the prefix and suffix are added up to this many (an encoder cannot
            take a batch of 0; the caller slices the extra row away).
    """
    before, after = len(framing.prefix), len(framing.suffix)
    flat = tf.concat([pieces.flat_values, [framing.pad_id]], axis=0)  # never empty for the gather
    extra = tf.maximum(min_rows - (tf.shape(pieces.row_splits)[0] - 1), 0)
    first = tf.concat([tf.cast(pieces.row_splits[:-1], tf.int32), tf.zeros([extra], tf.int32)], 0)[:, None]
    lengths = tf.concat([tf.cast(pieces.row_lengths(), tf.int32), tf.zeros([extra], tf.int32)], 0)
    body_end = tf.minimum(lengths, framing.body)[:, None] + before  # first column after the text's pieces
    width = (tf.reduce_max(tf.concat([body_end[:, 0], [before]], 0)) + after) * tf.minimum(tf.shape(first)[0], 1)
    j = tf.range(width)[None, :]
    body = tf.gather(flat, tf.clip_by_value(first + j - before, 0, tf.size(flat) - 1))
    ids = tf.where((j >= before) & (j < body_end), body, framing.pad_id)
    for k, token_id in enumerate(framing.suffix):
        ids = tf.where(j == body_end + k, token_id, ids)
    for k, token_id in enumerate(framing.prefix):
        ids = tf.where(j == k, token_id, ids)
    mask = tf.cast(j < body_end + after, tf.int64)
    return {"input_ids": tf.cast(ids, tf.int64), "attention_mask": mask, "token_type_ids": tf.zeros_like(mask)}


class _TfOps:
    """The elementwise ops ``kept_pair_lengths`` uses, in TensorFlow (all TFLite builtins)."""

    minimum = staticmethod(tf.minimum)
    maximum = staticmethod(tf.maximum)
    add = staticmethod(tf.add)
    sub = staticmethod(tf.subtract)
    less_equal = staticmethod(tf.less_equal)
    where = staticmethod(tf.where)


def _with_empty_rows(x: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
    """Return the int32 vector ``x`` with ``extra`` zeros after it."""
    return tf.concat([tf.cast(x, tf.int32), tf.zeros([extra], tf.int32)], 0)


def _pair_count(query: tf.Tensor, document: tf.Tensor) -> tf.Tensor:
    """Return N from a concat that fails at run time unless query and document are both [N] (no broadcast)."""
    columns = [tf.zeros(tf.stack([tf.shape(side)[0], 1]), tf.int32) for side in (query, document)]
    return tf.shape(tf.concat(columns, axis=1))[0]


def frame_pairs(pieces: tf.RaggedTensor, n_pairs: tf.Tensor, framing: Framing, *,
                min_rows: int = 0) -> dict[str, tf.Tensor]:
    """Return the int64 [N, L] outputs of N pairs from the ragged piece ids of the 2N texts (queries, then documents).

    Args:
        pieces: int32 [2N, None] piece ids of each text.
        n_pairs: N.
        framing: the reference's pair template, pair truncation and padding (``framing.pair``).
        min_rows: rows of an empty pair (just the template's special tokens) are added up to this many.
    """
    pair: PairTemplate = framing.pair
    flat = tf.concat([pieces.flat_values, [framing.pad_id]], axis=0)  # never empty for the gather
    extra = tf.maximum(min_rows - n_pairs, 0)
    lengths, splits = pieces.row_lengths(), pieces.row_splits[:-1]
    first_a, first_b = (_with_empty_rows(x, extra)[:, None] for x in (splits[:n_pairs], splits[n_pairs:]))
    kept_a, kept_b = kept_pair_lengths(_with_empty_rows(lengths[:n_pairs], extra),
                                       _with_empty_rows(lengths[n_pairs:], extra), room=framing.pair_room,
                                       strategy=framing.pair_truncation, ops=_TfOps)
    start_a = len(pair.before)
    end_a = kept_a[:, None] + start_a  # first column after the query's pieces
    start_b = end_a + len(pair.between)
    end_b = start_b + kept_b[:, None]
    end = end_b + len(pair.after)
    j = tf.range(tf.reduce_max(tf.concat([end[:, 0], [0]], 0)))[None, :]
    in_a = (j >= start_a) & (j < end_a)
    in_b = (j >= start_b) & (j < end_b)
    source = tf.where(in_a, first_a + j - start_a, first_b + j - start_b)
    body = tf.gather(flat, tf.clip_by_value(source, 0, tf.size(flat) - 1))
    ids = tf.where(in_a | in_b, body, framing.pad_id)
    types = tf.where(in_a, pair.type_a, tf.where(in_b, pair.type_b, 0))
    for offset, segment, segment_types in ((0, pair.before, pair.before_types), (end_a, pair.between,
                                                                               pair.between_types),
                                           (end_b, pair.after, pair.after_types)):
        for k, (token_id, type_id) in enumerate(zip(segment, segment_types, strict=True)):
            ids = tf.where(j == offset + k, token_id, ids)
            types = tf.where(j == offset + k, type_id, types)
    return {"input_ids": tf.cast(ids, tf.int64), "attention_mask": tf.cast(j < end, tf.int64),
            "token_type_ids": tf.cast(types, tf.int64)}


class TokenizerTF(tf.Module):
    """``tokenize(text: tf.string [N]) -> {input_ids, attention_mask, token_type_ids}: int64 [N, L]``."""

    def __init__(self, spec: TokenizerSpec, name: str = "tokenizer"):
        super().__init__(name=name)
        self.pieces = spec.emitter("tf")(spec)
        self._framing = spec.framing

    def tokenize(self, text: tf.Tensor, *, prompt: str = "", min_rows: int = 0) -> dict[str, tf.Tensor]:
        """Return the framed, padded ids like the reference tokenizer (padding=True, truncation=True).

        Args:
            text: string [N].
            prompt: prepended to every text first (``encode``'s default prompt).
            min_rows: see :func:`frame`.
        """
        return frame(self.pieces.token_ids(text, prompt), self._framing, min_rows=min_rows)

    def tokenize_pairs(self, query: tf.Tensor, document: tf.Tensor, *, min_rows: int = 0) -> dict[str, tf.Tensor]:
        """Return the framed, padded ids of (query, document) pairs like the reference tokenizer
        (``tok(queries, documents, padding=True, truncation=framing.pair_truncation, max_length=max_seq_length)``).

        Args:
            query: string [N].
            document: string [N] (another N fails the call).
            min_rows: see :func:`frame_pairs`.

        Raises:
            UnsupportedModelError: the reference frames no pair this way (``Framing.pair_problem``).
        """
        if not self._framing.pairs:
            raise UnsupportedModelError([self._framing.pair_problem])
        n_pairs = _pair_count(query, document)
        # each side alone: TFLite has no kernel to concatenate strings (ConcatV2 of strings is not a builtin)
        pieces = tf.concat([self.pieces.token_ids(query), self.pieces.token_ids(document)], axis=0)
        return frame_pairs(pieces, n_pairs, self._framing, min_rows=min_rows)
