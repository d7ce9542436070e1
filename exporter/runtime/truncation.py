"""``truncate_dim`` (Matryoshka), as sentence-transformers 6.2 applies it.

``SentenceTransformer._inference`` slices ``sentence_embedding[..., :truncate_dim]`` after the model's last module
(a Normalize module included, so the slice of a unit vector is no longer unit-norm), then, only when
``encode(normalize_embeddings=True)``, L2-normalizes the slice. An export holds the slice at the end of its graph
(``st-export --truncate-dim N``); ``exporter.load(OUT).encode(truncate_dim=M)`` slices further with
:func:`truncated`. The CLI, ``export(truncate_dim=)`` and ``encode(truncate_dim=)`` refuse a value with
:func:`truncate_dim_problem`.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def truncate_dim_problem(value: Any, dimension: int | None = None) -> str | None:
    """Return why ``value`` cannot be a truncate_dim of embeddings of ``dimension`` (None: not known yet), or None.

    sentence-transformers takes any slice bound (0 gives empty vectors, -1 drops the last dimension, a bound over
    the dimension changes nothing); an export refuses all of those instead.
    """
    most = f" to {dimension}" if dimension is not None else ""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        return f"{value!r}: give a whole number of dimensions from 1{most}"
    if dimension is not None and value > dimension:
        return f"{value} is more than the {dimension} dimensions of the embeddings: give 1{most}"
    return None


def normalized(embeddings: np.ndarray) -> np.ndarray:
    """Return each row L2-normalized, as ``torch.nn.functional.normalize(p=2, eps=1e-12)``."""
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)


def truncated(embeddings: np.ndarray, truncate_dim: int | None, *, normalize: bool) -> np.ndarray:
    """Return ``embeddings`` [N, D] sliced to ``truncate_dim`` (None: all D), then normalized when ``normalize``,
    in sentence-transformers' order."""
    if truncate_dim is not None:
        embeddings = embeddings[:, :truncate_dim]
    return normalized(embeddings) if normalize else embeddings
