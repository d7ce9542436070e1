"""Code points: the marks the graphs reserve, character classes as ranges, and two-stage tables.

Every family's graphs work on code points probed from the reference tokenizer (what it deletes,
maps, splits on, isolates); this module holds the vocabulary they share. It imports no family.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

SURROGATES = range(0xD800, 0xE000)
BLOCK = 256
CODE_POINTS = 0x110000
#: a normalization table's values: kept as is, deleted (k > 0: replaced by row k of a replacement table)
KEPT, DELETED = 0, -1
#: private-use code points that stand for special tokens inside the graphs (the references delete or never
#: match them in text)
PLACEHOLDER_BASE = 0xF0000
SENTINEL = "\U0010FFFD"  # ends every row inside the ONNX graphs; the reference deletes it from text
#: what the ONNX graphs' normalization table maps a deleted character to; removed after the join
DELETE_MARK = "\U0010FFFB"

Ranges = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class CharClasses:
    """How the reference treats every code point; ranges are inclusive (first, last) pairs."""

    deleted: Ranges
    mapped: dict[str, str]
    isolated: Ranges  # punctuation and CJK: a word of their own
    whitespace: Ranges  # split on, dropped


def all_code_points() -> list[int]:
    """Return every code point a Python string can hold alone (surrogates left out)."""
    return [cp for cp in range(CODE_POINTS) if cp not in SURROGATES]


def code_point_ranges(code_points: Iterable[int]) -> Ranges:
    """Return sorted ``code_points`` as inclusive (first, last) ranges."""
    out: list[list[int]] = []
    for cp in code_points:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return tuple((a, b) for a, b in out)


def without(ranges: Ranges, removed: set[int]) -> Ranges:
    """Return ``ranges`` less the code points in ``removed``."""
    out = []
    for a, b in ranges:
        start = a
        for cp in sorted(c for c in removed if a <= c <= b):
            if start <= cp - 1:
                out.append((start, cp - 1))
            start = cp + 1
        if start <= b:
            out.append((start, b))
    return tuple(out)


def regex_class(ranges: Ranges) -> str:
    """Return an RE2 character class matching the inclusive (first, last) code-point ranges."""
    parts = [f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges]
    return "[" + "".join(parts) + "]"


def regex_literal(text: str) -> str:
    """Return an RE2 pattern matching ``text`` exactly (every character escaped as \\x{...})."""
    return "".join(f"\\x{{{ord(c):X}}}" for c in text)


def placeholders(ids: Iterable[int]) -> dict[str, int]:
    """Return the private-use character standing for each special token id, in order → the id."""
    return {chr(PLACEHOLDER_BASE + i): token_id for i, token_id in enumerate(ids)}


@dataclass(frozen=True)
class TwoStageTable:
    """A code point → int32 map stored as ``values[blocks[cp // 256] * 256 + cp % 256]``."""

    blocks: np.ndarray  # int32 [0x1100]
    values: np.ndarray  # int32 [distinct blocks * 256]

    @classmethod
    def from_dense(cls, dense: np.ndarray) -> "TwoStageTable":
        """Return the two-stage form of a dense int32 [0x110000] table."""
        distinct, blocks = np.unique(dense.reshape(-1, BLOCK), axis=0, return_inverse=True)
        return cls(blocks=blocks.reshape(-1).astype(np.int32), values=distinct.reshape(-1).astype(np.int32))

    def lookup(self, cps: np.ndarray) -> np.ndarray:
        """Return the values of ``cps`` (numpy; the graphs do the same with Gather)."""
        return self.values[self.blocks[cps // BLOCK] * BLOCK + cps % BLOCK]
