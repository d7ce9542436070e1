"""The savedmodel target's folder in TensorFlow: ``serving_default`` (``encode``) and ``tokenize``.

TensorFlow and tensorflow-text are imported when a runner is opened, never when this module is.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .runners import DEFAULT_BATCH_SIZE, checked_texts, in_batches


class SavedModelRunner:
    """The SavedModel's signatures through TensorFlow (``encode`` and ``tokenize``)."""

    def __init__(self, path: str | Path, *, device: str = "cpu"):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401 - registers the tf-text ops the graph uses

        self.path = Path(path)
        self.device = "/GPU:0" if device == "cuda" else "/CPU:0"
        with tf.device(self.device):
            self.model = tf.saved_model.load(str(self.path))
        self.name = f"tensorflow savedmodel ({device})"

    def _call(self, signature: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        batch = tf.constant(checked_texts(texts), dtype=tf.string, shape=[len(texts)])
        with tf.device(self.device):
            outputs = self.model.signatures[signature](text=batch)
        return {name: value.numpy() for name, value in outputs.items()}

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        return in_batches(lambda chunk: self._call("serving_default", chunk)["sentence_embedding"], texts,
                          batch_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self._call("tokenize", texts)
