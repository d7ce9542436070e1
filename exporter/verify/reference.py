"""The ground truth: ``SentenceTransformer.encode`` on the source model, as a Runner.

Not part of :mod:`exporter.runtime`: it needs sentence-transformers (and torch), which a user
running an export does not install. The parity harness, ``st-export check``, the tests and the
benchmarks hold it beside an artifact's Runner.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..runtime.runners import DEFAULT_BATCH_SIZE, TOKEN_NAMES, checked_texts, in_batches


class ReferenceRunner:
    """``SentenceTransformer.encode`` on the source model (the ground truth)."""

    def __init__(self, model_dir: str | Path, *, device: str = "cpu", truncate_dim: int | None = None,
                 trust_remote_code: bool = False):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        self.model = SentenceTransformer(str(model_dir), device=device, trust_remote_code=trust_remote_code,
                                         local_files_only=True, truncate_dim=truncate_dim)
        self.name = f"sentence-transformers ({device})"
        #: the prompt ``encode`` applies (None: the model's default)
        self.prompt_name: str | None = None

    def prompted(self, prompt_name: str) -> "ReferenceRunner":
        """Return this runner encoding with ``encode(prompt_name=...)`` (the same model, not loaded again)."""
        runner = copy.copy(self)
        runner.prompt_name, runner.name = prompt_name, f"{self.name} prompt_name={prompt_name!r}"
        return runner

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        return in_batches(self._encode, texts, batch_size)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), np.float32)
        out = self.model.encode(texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False,
                                prompt_name=self.prompt_name)
        return out.astype(np.float32)

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the ids ``encode`` feeds the model, padded on the right (as every export pads) whatever the
        tokenizer's padding side: a left-padded reference (Qwen3-Embedding) has the same ids in each row."""
        encoded = self.model.tokenizer(checked_texts(texts), padding=True, truncation=True,
                                       max_length=self.model.max_seq_length, return_tensors="np")
        tokens = {name: encoded[name].astype(np.int64) for name in TOKEN_NAMES if name in encoded}
        return right_padded(tokens) if self.model.tokenizer.padding_side == "left" else tokens


def right_padded(tokens: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return left-padded rows moved to the right: each row's attended tokens first, its pads after, in order."""
    mask = tokens["attention_mask"]
    # a stable sort on "is a pad" keeps the tokens' order and the pads' order
    order = np.argsort(mask == 0, axis=1, kind="stable")
    return {name: np.take_along_axis(values, order, axis=1) for name, values in tokens.items()}


class StaticReferenceRunner(ReferenceRunner):
    """``SentenceTransformer.encode`` of a static embedding; ``tokenize`` pads the ids its ``StaticEmbedding`` feeds
    the embedding bag (``preprocess``: no special tokens, the tokenizer.json's truncation) with 0."""

    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        features = self.model[0].preprocess(checked_texts(texts))
        ids, offsets = features["input_ids"].numpy(), features["offsets"].numpy()
        ends = np.append(offsets[1:], len(ids)) if len(offsets) else offsets
        lengths = ends - offsets
        width = int(lengths.max(initial=0))
        input_ids = np.zeros((len(offsets), width), np.int64)
        mask = np.zeros((len(offsets), width), np.int64)
        for row, (start, length) in enumerate(zip(offsets, lengths, strict=True)):
            input_ids[row, :length] = ids[start:start + length]
            mask[row, :length] = 1
        return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}


class CrossEncoderRunner:
    """``CrossEncoder.predict`` on the source model (the reranker's ground truth)."""

    def __init__(self, model_dir: str | Path, *, device: str = "cpu", trust_remote_code: bool = False):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import CrossEncoder
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model = CrossEncoder(str(model_dir), device=device, trust_remote_code=trust_remote_code,
                                  local_files_only=True)
        self.identity = torch.nn.Identity()
        self.name = f"sentence-transformers CrossEncoder ({device})"

    def _predicted(self, pairs: list[list[str]], batch_size: int, activation_fn=None) -> np.ndarray:
        labels = self.model.num_labels
        if not pairs:
            return np.zeros((0, labels), np.float32)
        out = self.model.predict(pairs, batch_size=batch_size, activation_fn=activation_fn, convert_to_numpy=True,
                                 show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(len(pairs), labels)

    def score_and_logits(self, queries: Sequence[str], documents: Sequence[str],
                         batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """Return (CrossEncoder.predict's scores, its logits), float32 [N, num_labels] each."""
        pairs = [[q, d] for q, d in zip(checked_texts(queries), checked_texts(documents), strict=True)]
        return self._predicted(pairs, batch_size), self._predicted(pairs, batch_size, self.identity)

    def tokenize_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the ids CrossEncoder.predict feeds its model for one batch of pairs (its own preprocess)."""
        pairs = [[q, d] for q, d in zip(checked_texts(queries), checked_texts(documents), strict=True)]
        features = self.model.preprocess(pairs)
        return {name: features[name].numpy().astype(np.int64) for name in TOKEN_NAMES if name in features}
