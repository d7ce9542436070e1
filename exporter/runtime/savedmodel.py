"""The savedmodel target's folder in TensorFlow: ``serving_default`` (``encode``, or a reranker's ``score``) and
``tokenize``.

TensorFlow and tensorflow-text are imported when a runner is opened, never when this module is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .runners import DEFAULT_BATCH_SIZE, PairScoring, SparseEncoding, checked_texts, in_batches


class SavedModelRunner(PairScoring, SparseEncoding):
    """The SavedModel's signatures through TensorFlow: ``encode`` and ``tokenize`` (``text``), or a reranker's
    ``score_and_logits`` and ``tokenize_pairs`` (``query``, ``document``)."""

    def __init__(self, path: str | Path, *, device: str = "cpu"):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401 - registers the tf-text ops the graph uses

        self.path = Path(path)
        self.device = "/GPU:0" if device == "cuda" else "/CPU:0"
        with tf.device(self.device):
            self.model = tf.saved_model.load(str(self.path))
        self.name = f"tensorflow savedmodel ({device})"

    def _called(self, signature: str, **columns: list[str]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        tensors = {name: tf.constant(values, dtype=tf.string, shape=[len(values)]) for name, values in columns.items()}
        with tf.device(self.device):
            outputs = self.model.signatures[signature](**tensors)
        return {name: value.numpy() for name, value in outputs.items()}

    def _call(self, signature: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self._called(signature, text=checked_texts(texts))

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE,
               signature: str = "serving_default") -> np.ndarray:
        """Return the embeddings of ``texts`` through ``signature`` (a prompt's: exporter/runtime/prompts.py)."""
        return in_batches(lambda chunk: self._call(signature, chunk)["sentence_embedding"], texts, batch_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self._call("tokenize", texts)

    def _pair_outputs(self, queries: list[str], documents: list[str]) -> dict[str, np.ndarray]:
        return self._called("serving_default", query=queries, document=documents)

    def _pair_tokens(self, queries: list[str], documents: list[str]) -> dict[str, np.ndarray]:
        return self._called("tokenize", query=queries, document=documents)

    def _sparse_outputs(self, texts: list[str]) -> dict[str, np.ndarray]:
        return self._call("serving_default", texts)
