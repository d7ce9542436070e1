"""Quality of every runner against the reference, through the one parity harness (exporter/verify/parity.py)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from exporter.runtime.runners import DEFAULT_BATCH_SIZE
from exporter.verify.parity import Thresholds, compare_embeddings, retention

from .measure import Worker, WorkerError


class WorkerRunner:
    """A Runner whose ``encode`` runs in a worker process."""

    def __init__(self, worker: Worker):
        self.worker, self.name = worker, worker.spec.label

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        return self.worker.call(cmd="encode", texts=list(texts), batch_size=batch_size)["embeddings"]


def measure_quality(reference: Worker, candidates: list[Worker], *, corpus: list[str], pairs: list[str],
                    batch_sizes: Sequence[int | None]) -> list[dict[str, Any]]:
    """Return each candidate's cosine to the reference on ``corpus`` and its retention on ``pairs``.

    Retention is the Spearman correlation of the similarities of every pair of ``pairs`` (a set
    of real sentences) under the candidate and under the reference.
    """
    truth = WorkerRunner(reference)
    expected, expected_pairs = truth.encode(corpus), truth.encode(pairs)
    rows = []
    for worker in candidates:
        bar = Thresholds(**worker.spec.thresholds) if worker.spec.thresholds else Thresholds()
        try:
            report = compare_embeddings(truth, WorkerRunner(worker), corpus, batch_sizes=batch_sizes, thresholds=bar,
                                        reference_embeddings=expected)
            pair_retention = retention(expected_pairs, WorkerRunner(worker).encode(pairs))
        except WorkerError as exc:
            rows.append({"runner": worker.spec.label, "error": str(exc)})
            continue
        rows.append({"runner": worker.spec.label, "texts": report.texts, "batch_sizes": report.batch_sizes,
                     "min_cosine": report.min_cosine, "mean_cosine": report.mean_cosine,
                     "max_abs_diff": report.max_abs_diff, "retention_corpus": report.retention,
                     "retention_pairs": pair_retention, "pairs": len(pairs) * (len(pairs) - 1) // 2,
                     "bar": worker.spec.thresholds, "passed": report.passed, "failures": report.failures,
                     "worst_text": report.worst_text})
    return rows


class WorkerScorer:
    """A reranker runner whose ``score_and_logits`` runs in a worker process."""

    def __init__(self, worker: Worker):
        self.worker, self.name = worker, worker.spec.label

    def score_and_logits(self, queries: Sequence[str], documents: Sequence[str],
                         batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
        reply = self.worker.call(cmd="score", queries=list(queries), documents=list(documents), batch_size=batch_size)
        return np.asarray(reply["score"], np.float32), np.asarray(reply["logits"], np.float32)


def measure_scores(reference: Worker, candidates: list[Worker], *, pairs: list[list[str]],
                   batch_sizes: Sequence[int | None]) -> list[dict[str, Any]]:
    """Return each reranker candidate's max |Δscore| and |Δlogit| to the reference (CrossEncoder.predict) on ``pairs``,
    through the export's own score parity (exporter/verify/scores.py), held to the candidate's |Δ| bar."""
    from exporter.verify.scores import compare_scores

    queries, documents = [q for q, _ in pairs], [d for _, d in pairs]
    expected = WorkerScorer(reference).score_and_logits(queries, documents, batch_size=max(1, len(pairs)))
    rows = []
    for worker in candidates:
        bar = (worker.spec.thresholds or {}).get("max_abs_diff")
        try:
            report = compare_scores(expected, WorkerScorer(worker), pairs, batch_sizes=batch_sizes, max_abs_diff=bar)
        except WorkerError as exc:
            rows.append({"runner": worker.spec.label, "error": str(exc)})
            continue
        rows.append({"runner": worker.spec.label, "pairs": report.texts, "batch_sizes": report.batch_sizes,
                     "max_abs_diff": report.max_abs_diff, "max_logit_diff": report.max_logit_diff,
                     "worst_pair": report.worst_pair, "bar": {"max_abs_diff": bar}, "passed": report.passed,
                     "failures": report.failures})
    return rows
