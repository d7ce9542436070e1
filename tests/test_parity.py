"""The parity harness itself: retention (Spearman of pair similarities) and variant bars."""
from __future__ import annotations

import numpy as np

from exporter.verify.parity import Thresholds, compare_embeddings, retention


class ArrayRunner:
    """A runner returning fixed embeddings for known texts (the harness's behaviour, not a model's)."""

    def __init__(self, name: str, table: dict[str, np.ndarray]):
        self.name, self.table = name, table

    def encode(self, texts, batch_size=32):
        return np.stack([self.table[t] for t in texts]).astype(np.float32) if texts else np.zeros((0, 8), np.float32)


def _runners(seed: int = 0):
    rng = np.random.default_rng(seed)
    texts = [f"text {i}" for i in range(40)]
    base = rng.normal(size=(40, 8))
    reference = ArrayRunner("reference", dict(zip(texts, base, strict=True)))
    return texts, base, reference, rng


def test_retention_is_one_for_the_same_ranking_and_falls_when_it_is_scrambled():
    texts, base, reference, rng = _runners()
    assert retention(base, base * 3.0) == 1.0  # cosine ignores scale
    noisy = retention(base, base + rng.normal(scale=0.3, size=base.shape))
    shuffled = retention(base, base[rng.permutation(len(base))])
    assert 0.5 < noisy < 0.999 and abs(shuffled) < 0.2
    assert retention(base[:2], base[:2]) is None  # one pair: no ranking


def test_min_retention_is_a_bar_like_min_cosine():
    texts, base, reference, rng = _runners()
    noisy = ArrayRunner("noisy", dict(zip(texts, base + rng.normal(scale=0.3, size=base.shape), strict=True)))
    loose = compare_embeddings(reference, noisy, texts, thresholds=Thresholds(min_cosine=0.0, max_abs_diff=None))
    assert loose.passed and loose.retention is not None and loose.retention < 0.999
    strict = compare_embeddings(reference, noisy, texts,
                                thresholds=Thresholds(min_cosine=0.0, max_abs_diff=None, min_retention=0.999))
    assert not strict.passed and any("retention" in f for f in strict.failures)
    exact = compare_embeddings(reference, reference, texts)
    assert exact.passed and exact.retention == 1.0 and exact.min_cosine > 0.9999999
