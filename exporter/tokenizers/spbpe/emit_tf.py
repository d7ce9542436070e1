"""A SentencePiece BPE tokenizer with byte fallback in TensorFlow ops (SavedModel only: TFLite has no BPE kernel).

Each prompt + text is one word, its spaces replaced by "▁"; tensorflow-text's ``SentencepieceTokenizer`` runs BPE
with byte fallback over it with the model of ``SpBpeSpec.model_proto`` (added tokens are its user-defined pieces).
TensorFlow's strings hold NUL, and the kernel makes it ``<0x00>`` by byte fallback, as the reference does.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from .spec import METASPACE, SpBpeSpec


class SpBpeTokenizerTF(tf.Module):
    """``token_ids(text: tf.string [N], prompt) -> ragged int32 [N, None]``: the reference's piece ids, unframed."""

    def __init__(self, spec: SpBpeSpec, name: str = "spbpe_tokenizer"):
        super().__init__(name=name)
        self._bpe = tf_text.SentencepieceTokenizer(model=spec.model_proto())
        self._ids = tf.constant(spec.ids().astype(np.int32))

    def token_ids(self, text: tf.Tensor, prompt: str = "") -> tf.RaggedTensor:
        """Return the reference's piece ids of each ``prompt`` + text, unframed: ragged int32 [N, None]."""
        if prompt:
            text = tf.strings.join([tf.fill(tf.shape(text), prompt), text])
        pieces = self._bpe.tokenize(tf.strings.regex_replace(text, " ", METASPACE))
        return tf.RaggedTensor.from_row_splits(tf.gather(self._ids, tf.cast(pieces.flat_values, tf.int32)),
                                               pieces.row_splits, validate=False)
