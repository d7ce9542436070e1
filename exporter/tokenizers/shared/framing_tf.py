"""The framing in TensorFlow, written once for every family: ``prefix $A suffix``, truncation, padding, masks.

A family's TF emitter returns each text's piece ids (ragged int32); :class:`TokenizerTF` keeps the
first ``Framing.body`` of each row, puts the prefix and suffix ids around them and pads to the
longest row with gathers and selects only, so that TFLite converts it to builtins.
"""
from __future__ import annotations

import tensorflow as tf

from .family import Framing, TokenizerSpec


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
