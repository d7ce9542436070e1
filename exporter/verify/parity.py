"""The one parity harness: compare any Runner to the reference on real text.

Used by the tests, ``st-export`` / ``st-export check`` and the benchmarks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from ..runtime.runners import Runner

#: batch sizes every embedding comparison runs at; None = all texts as one batch
BATCH_SIZES: tuple[int | None, ...] = (None, 1, 7)


@dataclass(frozen=True)
class Thresholds:
    """The bar an artifact must meet; ``None`` means the figure is measured and recorded, not required."""

    min_cosine: float = 0.99999
    max_abs_diff: float | None = 1e-5
    #: Spearman correlation of all pairwise similarities with the reference's (see :func:`retention`)
    min_retention: float | None = None


@dataclass
class EmbeddingReport:
    """How far a candidate's embeddings are from the reference's, over every batch size."""

    candidate: str
    texts: int
    batch_sizes: list[str]
    min_cosine: float
    mean_cosine: float
    max_abs_diff: float
    worst_text: str
    thresholds: Thresholds
    #: lowest retention over the batch sizes (None with fewer than 3 texts)
    retention: float | None = None
    #: texts the reference embeds as the zero vector: the candidate's cosine there is 1 if it returns zero too,
    #: else 0 (see :func:`_cosines`)
    zero_vectors: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data


@dataclass
class TokenReport:
    """Texts whose token ids differ from the reference's, alone and in one padded batch."""

    candidate: str
    texts: int
    mismatches: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return not self.mismatches

    @property
    def count(self) -> int:
        """Return how many texts differ (a text counts once, batch or alone)."""
        return len({m["text"] for m in self.mismatches})

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "texts": self.texts, "mismatches": len(self.mismatches),
                "first_mismatches": self.mismatches[:5], "passed": self.passed}


def _batched(runner: Runner, texts: Sequence[str], size: int | None) -> np.ndarray:
    """Return the runner's embeddings computed ``size`` texts per model call (None: all in one call)."""
    return runner.encode(list(texts), batch_size=size or max(1, len(texts)))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return each row's cosine; two zero vectors agree (1), a zero against a non-zero vector does not (0).

    A model may embed a text as the zero vector (an all-zero embedding table, a Normalize of nothing): the
    artifact that returns the same zero vector matches it, and cosine's 0/0 would call that a failure.
    """
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    norm_a, norm_b = np.linalg.norm(a64, axis=1), np.linalg.norm(b64, axis=1)
    cos = (a64 * b64).sum(axis=1) / np.maximum(norm_a * norm_b, 1e-30)
    return np.where((norm_a == 0) & (norm_b == 0), 1.0, cos)


def retention(expected: np.ndarray, got: np.ndarray) -> float | None:
    """Return how well ``got`` keeps the reference's similarity ranking (1.0: identical ranking).

    The Spearman correlation between the cosine similarities of every pair of texts under the
    reference and under the candidate: what a search or clustering application sees of a
    quantized model. Returns None when there are fewer than 3 texts (fewer than 3 pairs).
    """
    from scipy.stats import spearmanr

    if len(expected) < 3:
        return None
    upper = np.triu_indices(len(expected), k=1)

    def similarities(embeddings: np.ndarray) -> np.ndarray:
        unit = embeddings.astype(np.float64)
        unit /= np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-30)
        return (unit @ unit.T)[upper]

    want, have = similarities(expected), similarities(got)
    if np.ptp(want) == 0 or np.ptp(have) == 0:  # a rank correlation of constants is NaN: equal or not instead
        return 1.0 if np.array_equal(want, have) else 0.0
    return float(spearmanr(want, have).statistic)


def compare_embeddings(reference: Runner, candidate: Runner, texts: Sequence[str], *,
                       batch_sizes: Sequence[int | None] = BATCH_SIZES,
                       thresholds: Thresholds = Thresholds(),
                       reference_embeddings: np.ndarray | None = None) -> EmbeddingReport:
    """Return the candidate's distance to the reference over ``texts`` at every batch size.

    Args:
        reference: the ground truth (usually a ReferenceRunner).
        candidate: the artifact under test.
        texts: the parity corpus.
        batch_sizes: candidate batch sizes; None means all texts in one batch.
        thresholds: the bar; ``failures`` lists every way the candidate misses it.
        reference_embeddings: reuse embeddings already computed for ``texts``.
    """
    texts = list(texts)
    expected = reference.encode(texts) if reference_embeddings is None else reference_embeddings
    min_cos, max_diff, cos_sum, worst, failures = 1.0, 0.0, 0.0, "", []
    kept: float | None = None
    for size in batch_sizes:
        got = _batched(candidate, texts, size)
        label = "all" if size is None else str(size)
        if got.shape != expected.shape:
            failures.append(f"batch {label}: shape {got.shape}, expected {expected.shape}")
            continue
        cos = _cosines(got, expected)
        diff = np.abs(got.astype(np.float64) - expected).max(axis=1) if len(texts) else np.zeros(0)
        cos_sum += float(cos.sum())
        if len(texts) and cos.min() < min_cos:
            min_cos, worst = float(cos.min()), texts[int(cos.argmin())]
        max_diff = max(max_diff, float(diff.max()) if len(texts) else 0.0)
        if not np.isfinite(got).all():
            failures.append(f"batch {label}: non-finite values")
            continue
        batch_retention = retention(expected, got)
        if batch_retention is not None:
            kept = batch_retention if kept is None else min(kept, batch_retention)
    if min_cos < thresholds.min_cosine:
        failures.append(f"min cosine {min_cos:.7f} < {thresholds.min_cosine} (worst text: {worst[:60]!r})")
    if thresholds.max_abs_diff is not None and max_diff > thresholds.max_abs_diff:
        failures.append(f"max abs diff {max_diff:.2e} > {thresholds.max_abs_diff:.0e}")
    if thresholds.min_retention is not None and (kept is None or kept < thresholds.min_retention):
        failures.append(f"retention {kept} < {thresholds.min_retention}")
    runs = max(1, len(texts) * len(batch_sizes))
    return EmbeddingReport(candidate=candidate.name, texts=len(texts),
                           batch_sizes=["all" if s is None else str(s) for s in batch_sizes],
                           min_cosine=min_cos, mean_cosine=cos_sum / runs, max_abs_diff=max_diff,
                           worst_text=worst, thresholds=thresholds, retention=kept,
                           zero_vectors=int((~np.any(expected, axis=1)).sum()) if len(texts) else 0,
                           failures=failures)


def _rows(tokens: dict[str, np.ndarray], names) -> list[dict[str, list[int]]]:
    """Return each text's unpadded outputs among ``names`` (ids, mask, the reference's type ids if it has them)."""
    lengths = tokens["attention_mask"].sum(axis=1)
    return [{name: tokens[name][i, :n].tolist() for name in names} for i, n in enumerate(lengths)]


def compare_tokens(reference: Any, candidate: Any, texts: Sequence[str], *, alone: bool = True) -> TokenReport:
    """Return the texts whose ids differ, comparing one padded batch and (``alone``) each text alone.

    ``reference`` and ``candidate`` have ``tokenize(texts) -> {input_ids, attention_mask, token_type_ids}``.
    """
    texts = list(texts)
    mismatches: list[dict[str, Any]] = []
    expected, got = reference.tokenize(texts), candidate.tokenize(texts)
    if any(expected[k].shape != got[k].shape or not np.array_equal(expected[k], got[k]) for k in expected):
        exp_rows = _rows(expected, expected)
        got_rows = _rows(got, expected) if got["attention_mask"].shape[0] == len(texts) else [{}] * len(texts)
        shape = {k: (got[k].shape, expected[k].shape) for k in expected}
        for text, e, g in zip(texts, exp_rows, got_rows, strict=True):
            if e != g:
                mismatches.append({"text": text, "mode": "batch", "expected": e.get("input_ids"),
                                   "got": g.get("input_ids")})
        if not mismatches:
            mismatches.append({"text": None, "mode": "batch", "shapes": str(shape)})
    if alone:
        for text in texts:
            e, g = reference.tokenize([text]), candidate.tokenize([text])
            if any(e[k].shape != g[k].shape or not np.array_equal(e[k], g[k]) for k in e):
                mismatches.append({"text": text, "mode": "alone", "expected": e["input_ids"][0].tolist(),
                                   "got": g["input_ids"][0].tolist() if len(g["input_ids"]) else None})
    return TokenReport(candidate=getattr(candidate, "name", "candidate"), texts=len(texts), mismatches=mismatches)
