"""The tflite targets' files in LiteRT, with tensorflow-text's TFLite kernels registered.

The interpreter is LiteRT's (``ai-edge-litert``) when installed, else TensorFlow's deprecated
``tf.lite`` one; either is imported when a runner is opened, never when this module is.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ArtifactNotFoundError, ExporterError
from .runners import DEFAULT_BATCH_SIZE, TOKEN_NAMES, checked_texts, in_batches


class TFLiteConversionError(ExporterError):
    """A ``.tflite`` file that does not convert, load or run (an op without a kernel, a broken file)."""

    code = "tflite-conversion"


def open_interpreter(path: Path, *, threads: int | None = None) -> tuple[Any, str]:
    """Return (an interpreter with tensorflow-text's kernels registered, which runtime it is).

    LiteRT (``ai_edge_litert``) when installed, else TensorFlow's deprecated ``tf.lite`` interpreter.
    """
    import tensorflow_text  # noqa: F401 - its TFLite kernels are registered below
    from tensorflow_text import tflite_registrar

    options = {"model_path": str(path), "custom_op_registerers": tflite_registrar.SELECT_TFTEXT_OPS,
               "num_threads": threads or os.cpu_count() or 1}
    try:
        from ai_edge_litert.interpreter import InterpreterWithCustomOps

        return InterpreterWithCustomOps(**options), "ai-edge-litert InterpreterWithCustomOps"
    except ImportError:
        from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

        return InterpreterWithCustomOps(**options), "tensorflow.lite InterpreterWithCustomOps"


class TFLiteRunner:
    """A ``.tflite`` file's signatures through the LiteRT interpreter (``encode`` and ``tokenize``)."""

    def __init__(self, path: str | Path, *, threads: int | None = None, name: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ArtifactNotFoundError(f"{self.path}: artifact not found; re-run st-export")
        try:
            self.interpreter, self.runtime = open_interpreter(self.path, threads=threads)
        except (RuntimeError, ValueError) as exc:
            raise TFLiteConversionError(f"{self.path} does not load: {exc}") from None
        self.name = name or f"tflite {self.path.name}"

    def _call(self, signature: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        batch = np.array(checked_texts(texts), dtype=object).reshape(-1)
        return self.interpreter.get_signature_runner(signature)(text=batch)

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        return in_batches(lambda chunk: self._call("serving_default", chunk)["sentence_embedding"], texts,
                          batch_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        outputs = self._call("tokenize", texts)
        return {name: outputs[name] for name in TOKEN_NAMES}
