"""One interface for the reference model and every artifact: ``encode(texts, batch_size) -> [N, D] float32``.

``encode`` runs at most ``batch_size`` texts per call of the model (default
:data:`DEFAULT_BATCH_SIZE`, SentenceTransformer.encode's): memory grows with batch × length²,
and one call of 10,000 texts asks ONNX Runtime for about 31 GB. Runners that hold a tokenizer
also have ``tokenize(texts) -> {input_ids, attention_mask, token_type_ids}`` (int64 [N, L], one
call, padded to the longest). The parity harness, ``st-export check`` and the benchmarks all
take Runners, so adding a target is writing one Runner.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import ArtifactNotFoundError, InvalidInputError

from ..graphs import TOKEN_NAMES


#: texts per model call in ``encode`` unless told otherwise (SentenceTransformer.encode's default)
DEFAULT_BATCH_SIZE = 32


@runtime_checkable
class Runner(Protocol):
    name: str

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Return float32 [len(texts), D] sentence embeddings, computed ``batch_size`` texts at a time."""


def in_batches(encode: Callable[[list[str]], np.ndarray], texts: object, batch_size: int) -> np.ndarray:
    """Return ``encode`` of the checked ``texts``, called on at most ``batch_size`` texts at a time, concatenated.

    Raises:
        InvalidInputError: ``texts`` is not a list of str, or ``batch_size`` is not a positive int.
    """
    items = checked_texts(texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive int, got {batch_size!r}")
    if len(items) <= batch_size:
        return encode(items)
    return np.concatenate([encode(items[i:i + batch_size]) for i in range(0, len(items), batch_size)], axis=0)


def checked_texts(texts: object) -> list[str]:
    """Return ``texts`` as a list of str, or raise InvalidInputError naming the bad element."""
    if isinstance(texts, str):
        raise InvalidInputError("texts must be a list of strings, got one str: wrap it as [text]")
    try:
        items = list(texts)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidInputError(f"texts must be a list of strings, got {type(texts).__name__}") from None
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{i}] is {type(text).__name__}, expected str")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(f"texts[{i}] is not valid Unicode ({exc.reason} at index {exc.start}); "
                                    "decode your input with errors='replace'") from None
    return items


class ReferenceRunner:
    """``SentenceTransformer.encode`` on the source model (the ground truth)."""

    def __init__(self, model_dir: str | Path, *, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.model = SentenceTransformer(str(model_dir), device=device, trust_remote_code=False,
                                         local_files_only=True)
        self.name = f"sentence-transformers ({device})"

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        return in_batches(self._encode, texts, batch_size)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), np.float32)
        out = self.model.encode(texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False)
        return out.astype(np.float32)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        encoded = self.model.tokenizer(checked_texts(texts), padding=True, truncation=True,
                                       max_length=self.model.max_seq_length, return_tensors="np")
        return {name: encoded[name].astype(np.int64) for name in TOKEN_NAMES if name in encoded}


def ort_session(path: Path, providers: Sequence[str] | None = None, threads: int | None = None):
    """Return an onnxruntime session with the onnxruntime-extensions ops registered (``threads``: intra-op)."""
    import onnxruntime as ort

    from .ortx_runtime import verified_library

    options = ort.SessionOptions()
    options.register_custom_ops_library(verified_library())
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=list(providers or ["CPUExecutionProvider"]))


class OnnxRunner:
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
        outputs = dict(zip(self.output_names, self._run(texts)))
        return {name: outputs[name] for name in TOKEN_NAMES}
