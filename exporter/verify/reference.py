"""The ground truth: ``SentenceTransformer.encode`` on the source model, as a Runner.

Not part of :mod:`exporter.runtime`: it needs sentence-transformers (and torch), which a user
running an export does not install. The parity harness, ``st-export check``, the tests and the
benchmarks hold it beside an artifact's Runner.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..runtime.runners import DEFAULT_BATCH_SIZE, TOKEN_NAMES, checked_texts, in_batches


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
