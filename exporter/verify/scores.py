"""Parity of a reranker: its scores and logits against ``CrossEncoder.predict``, and its pair token ids."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .parity import BATCH_SIZES

#: |Δscore| bars, as the embeddings' |Δ| bars (tflite fp32: 1e-4 when a target exports rerankers there)
MAX_SCORE_DIFF = 1e-5


class PairTokenizer:
    """A runner with ``tokenize_pairs`` seen as one with ``tokenize(pairs)``, for :func:`parity.compare_tokens`."""

    def __init__(self, runner: Any):
        self.runner = runner
        self.name = getattr(runner, "name", "candidate")

    def tokenize(self, pairs: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
        return self.runner.tokenize_pairs([q for q, _ in pairs], [d for _, d in pairs])


@dataclass
class ScoreReport:
    """How far a candidate's scores and logits are from the reference's, over every batch size."""

    candidate: str
    texts: int  # pairs
    batch_sizes: list[str]
    max_abs_diff: float  # of the scores (the activation applied)
    max_logit_diff: float
    worst_pair: list[str]
    thresholds: dict[str, Any]
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "texts": self.texts, "batch_sizes": self.batch_sizes,
                "max_abs_diff": self.max_abs_diff, "max_logit_diff": self.max_logit_diff,
                "worst_pair": self.worst_pair, "thresholds": self.thresholds, "failures": self.failures,
                "passed": self.passed}


def compare_scores(expected: tuple[np.ndarray, np.ndarray], candidate: Any, pairs: Sequence[Sequence[str]], *,
                   batch_sizes: Sequence[int | None] = BATCH_SIZES,
                   max_abs_diff: float | None = MAX_SCORE_DIFF, logits_required: bool = True) -> ScoreReport:
    """Return the candidate's distance to the reference's (score, logits) over ``pairs`` at every batch size.

    Args:
        expected: the reference's (score, logits), float32 [N, num_labels] each.
        candidate: a runner with ``score_and_logits(queries, documents, batch_size)``.
        pairs: the (query, document) pairs ``expected`` was computed on.
        batch_sizes: candidate batch sizes; None means all pairs in one batch.
        max_abs_diff: the bar on |Δscore| and |Δlogit| (None: measured, not required).
        logits_required: False: the bar holds for |Δscore| only, |Δlogit| is recorded (an int8 variant).
    """
    pairs = [list(pair) for pair in pairs]
    queries, documents = [q for q, _ in pairs], [d for _, d in pairs]
    worst, max_score, max_logit, failures = [], 0.0, 0.0, []
    for size in batch_sizes:
        label = "all" if size is None else str(size)
        got = candidate.score_and_logits(queries, documents, batch_size=size or max(1, len(pairs)))
        if any(g.shape != e.shape for g, e in zip(got, expected, strict=True)):
            failures.append(f"batch {label}: shapes {[g.shape for g in got]}, expected {[e.shape for e in expected]}")
            continue
        if not all(np.isfinite(g).all() for g in got):
            failures.append(f"batch {label}: non-finite values")
            continue
        diff_score, diff_logit = (np.abs(g.astype(np.float64) - e).max(axis=1) if len(pairs) else np.zeros(0)
                                  for g, e in zip(got, expected, strict=True))
        if len(pairs) and diff_score.max() > max_score:
            max_score, worst = float(diff_score.max()), pairs[int(diff_score.argmax())]
        max_logit = max(max_logit, float(diff_logit.max()) if len(pairs) else 0.0)
    if max_abs_diff is not None and max_score > max_abs_diff:
        failures.append(f"max |Δscore| {max_score:.2e} > {max_abs_diff:.0e} (worst pair: "
                        f"{[side[:40] for side in worst]!r})")
    if logits_required and max_abs_diff is not None and max_logit > max_abs_diff:
        failures.append(f"max |Δlogit| {max_logit:.2e} > {max_abs_diff:.0e}")
    return ScoreReport(candidate=getattr(candidate, "name", "candidate"), texts=len(pairs),
                       batch_sizes=["all" if s is None else str(s) for s in batch_sizes], max_abs_diff=max_score,
                       max_logit_diff=max_logit, worst_pair=worst, thresholds={"max_abs_diff": max_abs_diff,
                                                       "max_logit_diff": max_abs_diff if logits_required else None},
                       failures=failures)
