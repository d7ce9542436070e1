"""Unigram ties: the tables of the step after the kernel that orders runs of commuting pieces as the reference does.

The kernels (onnxruntime-extensions' ``SentencepieceTokenizer``, tensorflow-text's
``FastSentencepieceTokenize``) pick the reference's pieces but sum their scores in float32; the
reference (``tokenizers``' Unigram) sums float64 in path order and, on equal sums, keeps the best start
found first (a later candidate replaces it only when strictly greater). On a run of one repeated
string ("aaaaaaa", "-----", "つつつつつつつ") every order of the same pieces has the same exact sum, so
the rounding decides, and the kernels' float32 decides otherwise than the reference's float64.

The step, in every graph: pieces that are powers of one root string (``-``, ``--``, ``----``: root ``-``)
commute; in each word holding consecutive pieces of one class of two lengths (the only ones another
order exists for), a Viterbi runs over the word's "units" (a piece of a class is its multiplicity's worth of units, any
other piece one unit) with the reference's rule: float64 sums in path order from the word's start, the
smallest magnitude wins (scores are never positive), on equal sums the longest last piece (the earliest
start). Backtracking each stretch gives its pieces in the reference's order.

The sums are carried as the bit patterns (int64) of their magnitudes: for non-negative doubles the
order of the patterns is the order of the values, and :func:`float64_sum` adds two of them exactly as a
float64 addition rounds, with int64 ops and float64 casts only (TFLite has no float64 arithmetic).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ``tokenizers``' Unigram scores an unknown character min(score) - 10 (its ``K_UNK_PENALTY``)
UNK_PENALTY = 10.0


def root(piece: str) -> str:
    """Return the shortest string whose power ``piece`` is (pieces commute exactly when their roots are equal)."""
    return next(piece[:k] for k in range(1, len(piece) + 1) if piece[:k] * (len(piece) // k) == piece)


@dataclass(frozen=True)
class TieTables:
    """What the step reads, per kernel id (the reference's pieces, then the special tokens' placeholders)."""

    #: int32 [kernel ids]: class * width + multiplicity for a piece of a class of two or more pieces, else -1
    code: np.ndarray
    #: int64 [kernel ids]: the float64 bit pattern of -score (the reference's score)
    magnitude: np.ndarray
    #: int32 [classes * width]: the kernel id of root ** multiplicity, -1 where no piece is
    members: np.ndarray
    #: int64 [classes * width]: its -score's bit pattern
    member_magnitude: np.ndarray
    #: the longest power in a class + 1
    width: int


def tie_tables(pieces: tuple[tuple[str, float], ...], unk_id: int, placeholders: int) -> TieTables:
    """Return the step's tables for a vocabulary of (piece, float64 score) with ``placeholders`` ids after it."""
    scores = np.array([score for _, score in pieces] + [0.0] * placeholders, np.float64)
    scores[unk_id] = min(score for _, score in pieces) - UNK_PENALTY
    classes: dict[str, dict[int, int]] = {}
    for index, (piece, _) in enumerate(pieces):
        base = root(piece)
        classes.setdefault(base, {})[len(piece) // len(base)] = index
    kept = [members for members in classes.values() if len(members) >= 2]
    width = max(max(members) for members in kept) + 1 if kept else 2
    code = np.full(len(scores), -1, np.int32)
    members_table = np.full(len(kept) * width, -1, np.int32)
    for number, members in enumerate(kept):
        for multiplicity, index in members.items():
            code[index] = number * width + multiplicity
            members_table[number * width + multiplicity] = index
    magnitude = np.abs(scores).view(np.int64)
    member_magnitude = np.where(members_table >= 0, magnitude[np.maximum(members_table, 0)], 0).astype(np.int64)
    return TieTables(code=code, magnitude=magnitude, members=members_table, member_magnitude=member_magnitude,
                     width=width)
