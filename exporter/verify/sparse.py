"""Parity of a sparse (SPLADE) export: its top-K dimensions and values against ``SparseEncoder.encode``."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..runtime.runners import DEFAULT_BATCH_SIZE, SPARSE_PAD_INDEX, checked_texts
from .parity import BATCH_SIZES
from .reference import ReferenceRunner

#: |Δvalue| bar of the onnx and savedmodel targets (issue 25)
MAX_VALUE_DIFF = 1e-5


class SparseReferenceRunner(ReferenceRunner):
    """``SparseEncoder.encode`` on the source model (the sparse kind's ground truth), every active dimension kept:
    the export's K (``max_active_dims`` or ``--sparse-top-k``) is applied when comparing."""

    def __init__(self, model_dir: str | Path, *, device: str = "cpu", trust_remote_code: bool = False):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SparseEncoder
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model = SparseEncoder(str(model_dir), device=device, trust_remote_code=trust_remote_code,
                                   local_files_only=True)
        self.max_active_dims = self.model.max_active_dims
        self.model.max_active_dims = None
        self.name = f"sentence-transformers SparseEncoder ({device})"

    def dense(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Return SparseEncoder.encode's vectors as float32 [N, vocab] (no max_active_dims applied)."""
        texts = checked_texts(texts)
        if not texts:
            return np.zeros((0, self.model.get_embedding_dimension() or 0), np.float32)
        out = self.model.encode(texts, batch_size=batch_size, convert_to_sparse_tensor=False,
                                show_progress_bar=False)
        return out.cpu().numpy().astype(np.float32)


@dataclass
class SparseReport:
    """How far a candidate's top-K dimensions and values are from the reference's, over every batch size."""

    candidate: str
    texts: int
    batch_sizes: list[str]
    #: active dimensions compared (summed over texts and batch sizes)
    active_dims: int
    #: texts whose set of active dimensions differs from the reference's top-K (ties and near-zero values excepted)
    set_mismatches: int
    #: texts whose sets differ only by dimensions tied at the K-th value (excepted, counted)
    ties: int
    #: texts whose sets differ only by dimensions of value ≤ the |Δ| bar (a logit at 0 rounded to either side)
    at_zero: int
    max_abs_diff: float
    worst_text: str | None
    thresholds: dict[str, Any]
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "texts": self.texts, "batch_sizes": self.batch_sizes,
                "active_dims": self.active_dims, "set_mismatches": self.set_mismatches, "ties": self.ties,
                "at_zero": self.at_zero, "max_abs_diff": self.max_abs_diff, "worst_text": self.worst_text,
                "thresholds": self.thresholds, "failures": self.failures, "passed": self.passed}


def _row_verdict(reference: np.ndarray, dims: np.ndarray, width: int, tolerance: float) -> str:
    """Return "same", "tie", "at_zero" or "mismatch" for a candidate row's active ``dims`` and ``width`` columns."""
    active = np.flatnonzero(reference > 0)
    ranked = active[np.argsort(-reference[active], kind="stable")]
    want = set(ranked[:width].tolist())
    got = set(dims.tolist())
    if got == want:
        return "same"
    differing = np.array(sorted(got ^ want))
    if np.all(reference[differing] <= tolerance):
        return "at_zero"
    if len(ranked) > width:
        boundary = reference[ranked[width - 1]] if width else 0.0
        if np.all(np.abs(reference[differing] - boundary) <= tolerance):
            return "tie"
    return "mismatch"


def compare_sparse(expected: np.ndarray, candidate: Any, texts: Sequence[str], *,
                   batch_sizes: Sequence[int | None] = BATCH_SIZES,
                   max_abs_diff: float | None = MAX_VALUE_DIFF) -> SparseReport:
    """Return the candidate's distance to the reference's vectors over ``texts`` at every batch size.

    Args:
        expected: the reference's vectors, float32 [N, vocab], every active dimension kept.
        candidate: a runner with ``encode_sparse(texts, batch_size) -> (indices, values)``.
        texts: the texts ``expected`` was computed on.
        batch_sizes: candidate batch sizes; None means all texts in one batch.
        max_abs_diff: the bar on |Δvalue| (None: measured, not required); also the tolerance of ties and zeros.
    """
    texts = list(texts)
    tolerance = max_abs_diff if max_abs_diff is not None else 1e-4
    counts = {"same": 0, "tie": 0, "at_zero": 0, "mismatch": 0}
    worst, worst_text, compared, mismatched = 0.0, None, 0, []
    for size in batch_sizes:
        indices, values = candidate.encode_sparse(texts, batch_size=size or max(1, len(texts)))
        for i, text in enumerate(texts):
            kept = indices[i] != SPARSE_PAD_INDEX
            dims, got = indices[i][kept], values[i][kept]
            verdict = _row_verdict(expected[i], dims, indices.shape[1], tolerance)
            counts[verdict] += 1
            if verdict == "mismatch":
                mismatched.append(text)
            compared += len(dims)
            diff = float(np.max(np.abs(got - expected[i][dims]))) if len(dims) else 0.0
            if diff > worst:
                worst, worst_text = diff, text
    failures = []
    if counts["mismatch"]:
        failures.append(f"{counts['mismatch']} text(s) whose active dimensions differ from SparseEncoder.encode's "
                        f"top-K, e.g. {mismatched[0][:60]!r}")
    if max_abs_diff is not None and worst > max_abs_diff:
        failures.append(f"max |Δvalue| {worst:.2e} > {max_abs_diff:.0e} on {str(worst_text)[:60]!r}")
    return SparseReport(candidate=getattr(candidate, "name", "candidate"), texts=len(texts),
                        batch_sizes=[str(b or "all") for b in batch_sizes], active_dims=compared,
                        set_mismatches=counts["mismatch"], ties=counts["tie"], at_zero=counts["at_zero"],
                        max_abs_diff=worst, worst_text=worst_text,
                        thresholds={"max_abs_diff": max_abs_diff, "set_mismatches": 0}, failures=failures)
