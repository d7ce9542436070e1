"""The tflite targets' files in LiteRT, with tensorflow-text's TFLite kernels registered.

The interpreter is LiteRT's (``ai-edge-litert``), imported when a runner is opened, never when this
module is; TensorFlow's own ``tf.lite`` interpreter is refused (see :func:`open_interpreter`).
"""
from __future__ import annotations

import os
import threading
from importlib.metadata import version
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ArtifactNotFoundError, ExporterError, MissingPackageError
from .runners import DEFAULT_BATCH_SIZE, TOKEN_NAMES, PairScoring, SparseEncoding, checked_texts, in_batches


class LiteRTMissingError(MissingPackageError):
    """The tflite targets' interpreter, LiteRT (``ai-edge-litert``), is not installed."""

    code = "litert-missing"


class TFLiteConversionError(ExporterError):
    """A ``.tflite`` file that does not convert, load or run (an op without a kernel, a broken file)."""

    code = "tflite-conversion"


def open_interpreter(path: Path, *, threads: int | None = None) -> tuple[Any, str]:
    """Return (LiteRT's interpreter of ``path`` with tensorflow-text's kernels registered, its name and version).

    TensorFlow's own ``tf.lite`` interpreter is not a fallback: it dies with SIGFPE (the whole process,
    no exception) running an XLM-R ``model.tflite`` on ``[""]``, where LiteRT returns the reference vector.

    Raises:
        LiteRTMissingError: ``ai-edge-litert`` is not installed.
    """
    try:
        from ai_edge_litert.interpreter import InterpreterWithCustomOps
    except ImportError:
        raise LiteRTMissingError(
            "the tflite targets run in LiteRT, which is not installed: pip install ai-edge-litert "
            "(or pip install 'st-exporter[export]'); TensorFlow's tf.lite InterpreterWithCustomOps is not used "
            "in its place: it crashes the process (SIGFPE) on an XLM-R model.tflite given an empty text") from None
    import tensorflow_text  # noqa: F401 - its TFLite kernels are registered below
    from tensorflow_text import tflite_registrar

    interpreter = InterpreterWithCustomOps(model_path=str(path), num_threads=threads or os.cpu_count() or 1,
                                           custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS)
    return interpreter, f"ai-edge-litert {version('ai-edge-litert')} InterpreterWithCustomOps"


class TFLiteRunner(PairScoring, SparseEncoding):
    """A ``.tflite`` file's signatures through the LiteRT interpreter (``encode`` and ``tokenize``; a reranker's
    ``score_and_logits`` and ``tokenize_pairs``).

    Safe to share between threads: a TFLite interpreter is not (two threads in one gave "RESHAPE
    failed", "GATHER index out of bounds", each other's vectors, and segfaults), so each call holds a
    lock. An interpreter per thread was measured as well (docs/serving.md): no faster, since one
    interpreter already runs ``threads`` (default: every core) threads, and 58 MiB more memory per
    thread for the bundled model.
    """

    def __init__(self, path: str | Path, *, threads: int | None = None, name: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ArtifactNotFoundError(f"{self.path}: artifact not found; re-run st-export")
        try:
            self.interpreter, self.runtime = open_interpreter(self.path, threads=threads)
        except (RuntimeError, ValueError) as exc:
            raise TFLiteConversionError(f"{self.path} does not load: {exc}") from None
        self.name = name or f"tflite {self.path.name}"
        self._lock = threading.Lock()

    def _called(self, signature: str, **columns: list[str]) -> dict[str, np.ndarray]:
        batches = {name: np.array(values, dtype=object).reshape(-1) for name, values in columns.items()}
        with self._lock:  # resize, allocate, set, invoke and read back as one step (outputs are copies)
            return self.interpreter.get_signature_runner(signature)(**batches)

    def _call(self, signature: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self._called(signature, text=checked_texts(texts))

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE,
               signature: str = "serving_default") -> np.ndarray:
        """Return the embeddings of ``texts`` through ``signature`` (a prompt's: exporter/runtime/prompts.py)."""
        return in_batches(lambda chunk: self._call(signature, chunk)["sentence_embedding"], texts, batch_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        outputs = self._call("tokenize", texts)
        return {name: outputs[name] for name in TOKEN_NAMES}

    def _pair_outputs(self, queries: list[str], documents: list[str]) -> dict[str, np.ndarray]:
        return self._called("serving_default", query=queries, document=documents)

    def _pair_tokens(self, queries: list[str], documents: list[str]) -> dict[str, np.ndarray]:
        return self._called("tokenize", query=queries, document=documents)

    def _sparse_outputs(self, texts: list[str]) -> dict[str, np.ndarray]:
        return self._call("serving_default", texts)
