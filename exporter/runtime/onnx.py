"""The onnx targets' files (``model.onnx``, its variants, ``tokenizer.onnx``) in ONNX Runtime.

Needs numpy, onnxruntime and onnxruntime-extensions' custom-op library only (loaded by path, see
:mod:`exporter.runtime.ortx_runtime`): no ``onnx`` package, no TensorFlow.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ArtifactNotFoundError, InvalidInputError
from .runners import DEFAULT_BATCH_SIZE, TOKEN_NAMES, PairScoring, SparseEncoding, checked_texts, in_batches


def ort_session(path: Path, providers: Sequence[str] | None = None, threads: int | None = None) -> Any:
    """Return an onnxruntime session with the onnxruntime-extensions ops registered (``threads``: intra-op)."""
    import onnxruntime as ort

    from .ortx_runtime import verified_library

    options = ort.SessionOptions()
    options.register_custom_ops_library(verified_library())
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=list(providers or ["CPUExecutionProvider"]))


class OnnxRunner(PairScoring, SparseEncoding):
    """A string-in ONNX graph (``model.onnx``, or ``tokenizer.onnx`` for ``tokenize``) in onnxruntime."""

    def __init__(self, path: str | Path, *, providers: Sequence[str] | None = None, name: str | None = None,
                 threads: int | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise ArtifactNotFoundError(f"{self.path}: artifact not found; re-run st-export")
        self.session = ort_session(self.path, providers, threads)
        self.name = name or f"onnxruntime {self.path.name}"
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _run(self, texts: Sequence[str]) -> list[np.ndarray]:
        batch = np.array(checked_texts(texts), dtype=object).reshape(-1)
        return self.session.run(None, {"text": batch})

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        return in_batches(lambda chunk: self._run(chunk)[self.output_names.index("sentence_embedding")], texts,
                          batch_size)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        outputs = dict(zip(self.output_names, self._run(texts), strict=True))
        return {name: outputs[name] for name in TOKEN_NAMES}

    def _pair_outputs(self, queries: Sequence[str], documents: Sequence[str]) -> dict[str, np.ndarray]:
        """Return every output of a pair graph (inputs ``query`` and ``document``) on one batch of pairs."""
        if "query" not in {i.name for i in self.session.get_inputs()}:
            raise InvalidInputError(f"{self.path.name} takes texts, not (query, document) pairs: this export is "
                                    "not a reranker's; use encode")
        query, document = (np.array(side, dtype=object).reshape(-1) for side in (queries, documents))  # checked_sides'
        return dict(zip(self.output_names, self.session.run(None, {"query": query, "document": document}),
                        strict=True))

    _pair_tokens = _pair_outputs  # the tokenizer graph's outputs are the token arrays

    def _sparse_outputs(self, texts: list[str]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self._run(texts), strict=True))
