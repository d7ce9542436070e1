"""Workloads: batches of real sentences at three lengths, the same texts for every runner.

Texts are built from ``sentences.txt`` (64 plain English sentences) in a seeded order: a short
text is the start of one sentence, a medium or long one joins whole sentences until the
reference tokenizer counts the target number of tokens (``[CLS]`` and ``[SEP]`` included).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

SENTENCES_FILE = Path(__file__).with_name("sentences.txt")
#: target tokens per text ([CLS] and [SEP] included); None: the model's max_seq_length
LENGTHS: dict[str, int | None] = {"short": 10, "medium": 60, "long": None}
BATCH_SIZES = (1, 8, 32, 128)
QUICK_BATCH_SIZES = (1, 32)
QUICK_LENGTHS = ("short", "medium")
SEED = 0


@dataclass(frozen=True)
class Cell:
    """One workload: ``batch`` texts of one length class."""

    length: str
    batch: int

    @property
    def key(self) -> str:
        return f"{self.length}/{self.batch}"


def sentences() -> list[str]:
    """Return the benchmark's sentence corpus."""
    return [line.strip() for line in SENTENCES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def grid(batches: list[int], lengths: list[str]) -> list[Cell]:
    """Return the cells, longest texts last (the slowest cells run after the quick ones)."""
    unknown = [length for length in lengths if length not in LENGTHS]
    if unknown:
        raise ValueError(f"unknown text length(s) {unknown}; choose from {', '.join(LENGTHS)}")
    return [Cell(length, batch) for length in lengths for batch in batches]


class WorkloadBuilder:
    """Builds the texts of a cell with a token counter (usually the reference's tokenizer)."""

    def __init__(self, count_tokens: Callable[[list[str]], list[int]], max_seq_length: int):
        self.count_tokens = count_tokens
        self.max_seq_length = max_seq_length
        self.corpus = sentences()
        self._words = [s.split() for s in self.corpus]
        # WordPiece counts are additive over whitespace-separated words: count each word once
        vocab = sorted({w for words in self._words for w in words})
        self._cost = dict(zip(vocab, (n - 2 for n in count_tokens(vocab)), strict=True))

    def _tokens(self, words: list[str]) -> int:
        return 2 + sum(self._cost[w] for w in words)

    def text(self, rng: np.random.Generator, budget: int) -> str:
        """Return one text of about ``budget`` tokens from sentences in a random order."""
        order = rng.permutation(len(self.corpus))
        words: list[str] = []
        for index in order.tolist() * (1 + budget // 8):
            words += self._words[index]
            if self._tokens(words) >= budget:
                break
        while len(words) > 1 and self._tokens(words[:-1]) >= budget:
            words.pop()
        return " ".join(words)

    def texts(self, cell: Cell) -> list[str]:
        """Return the cell's texts; the same cell always gives the same texts."""
        rng = np.random.default_rng([SEED, cell.batch, list(LENGTHS).index(cell.length)])
        budget = LENGTHS[cell.length] or self.max_seq_length
        return [self.text(rng, budget) for _ in range(cell.batch)]

    def describe(self, texts: list[str]) -> dict[str, Any]:
        """Return the token counts of a batch as the runners see it (truncated, padded to the longest)."""
        counts = [min(n, self.max_seq_length) for n in self.count_tokens(texts)]
        return {"mean_tokens": round(float(np.mean(counts)), 1), "padded_length": max(counts)}



#: the reranker workload's one cell class: a short query against a passage
PASSAGE = "passage"
QUERY_WORDS = 8
PASSAGE_WORDS = 200


class PairWorkloadBuilder:
    """Builds a reranker cell's pairs: (the first ``QUERY_WORDS`` words of a sentence, ``PASSAGE_WORDS`` words of
    sentences in a seeded order), the same pairs for every runner.

    Args:
        count_tokens: pairs → the token count of each as the reference frames it (``[CLS] q [SEP] d [SEP]``).
        max_length: the reference's max_length (the runners truncate there).
    """

    def __init__(self, count_tokens: Callable[[list[list[str]]], list[int]], max_length: int):
        self.count_tokens, self.max_length = count_tokens, max_length
        self._words = [s.split() for s in sentences()]

    def pair(self, rng: np.random.Generator) -> list[str]:
        order = rng.permutation(len(self._words)).tolist()
        query = " ".join(self._words[order[0]][:QUERY_WORDS])
        passage: list[str] = []
        for index in order[1:] * (1 + PASSAGE_WORDS // 8):
            passage += self._words[index]
            if len(passage) >= PASSAGE_WORDS:
                break
        return [query, " ".join(passage[:PASSAGE_WORDS])]

    def texts(self, cell: Cell) -> list[list[str]]:
        """Return the cell's [query, passage] pairs; the same cell always gives the same pairs."""
        rng = np.random.default_rng([SEED, cell.batch, len(LENGTHS)])
        return [self.pair(rng) for _ in range(cell.batch)]

    def describe(self, pairs: list[list[str]]) -> dict[str, Any]:
        """Return the pairs' token counts as the runners see them (truncated, padded to the longest)."""
        counts = [min(n, self.max_length) for n in self.count_tokens(pairs)]
        return {"mean_tokens": round(float(np.mean(counts)), 1), "padded_length": max(counts)}
