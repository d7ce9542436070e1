"""One interface for the reference model and every artifact: ``encode(texts, batch_size) -> [N, D] float32``.

``encode`` runs at most ``batch_size`` texts per call of the model (default
:data:`DEFAULT_BATCH_SIZE`, SentenceTransformer.encode's): memory grows with batch × length²,
and one call of 10,000 texts asks ONNX Runtime for about 31 GB. Runners that hold a tokenizer
also have ``tokenize(texts) -> {input_ids, attention_mask, token_type_ids}`` (int64 [N, L], one
call, padded to the longest). The parity harness, ``st-export check`` and the benchmarks all
take Runners, so adding a target is writing one Runner (a file here, a row in
:mod:`exporter.runtime.artifacts`). The reference model's Runner is
:class:`exporter.verify.reference.ReferenceRunner`: it needs sentence-transformers, so it is no
part of the runtime.
"""
from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import InvalidInputError

#: the tokenizer graphs' outputs and the encoder graphs' inputs, in this order, everywhere (the artifacts'
#: contract: defined here, where the artifacts are read, and used by the graph builders)
TOKEN_NAMES = ("input_ids", "attention_mask", "token_type_ids")

#: the index of a pad in a sparse (SPLADE) export's ``indices`` (its value is 0): never a vocabulary id
SPARSE_PAD_INDEX = -1

#: texts per model call in ``encode`` unless told otherwise (SentenceTransformer.encode's default)
DEFAULT_BATCH_SIZE = 32


@runtime_checkable
class Runner(Protocol):
    name: str

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Return float32 [len(texts), D] sentence embeddings, computed ``batch_size`` texts at a time."""


def in_batches(encode: Callable[[list[str]], np.ndarray], texts: object, batch_size: int) -> np.ndarray:
    """Return ``encode`` of the checked ``texts``, called on at most ``batch_size`` texts at a time, concatenated.

    Raises:
        InvalidInputError: ``texts`` is not a list of str, or ``batch_size`` is not a positive int.
    """
    items = checked_texts(texts)
    batch_size = checked_batch_size(batch_size)
    if len(items) <= batch_size:
        return encode(items)
    return np.concatenate([encode(items[i:i + batch_size]) for i in range(0, len(items), batch_size)], axis=0)


def checked_batch_size(batch_size: object) -> int:
    """Return ``batch_size``, or raise InvalidInputError when it is not a positive int."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive int, got {batch_size!r}")
    return batch_size


def _not_a_sequence(texts: object) -> str | None:
    """Return why ``texts`` cannot stand for an ordered list of strings, or None when it can be iterated as one."""
    name = type(texts).__name__
    if isinstance(texts, str):
        return "got one str: wrap it as [text]"
    if isinstance(texts, (bytes, bytearray, memoryview)):
        return f"got {name}: decode it first, e.g. [data.decode('utf-8')]"
    if isinstance(texts, Mapping):
        return (f"got a {name} (a mapping): iterating it would embed its keys; pass the texts themselves, "
                "e.g. list(d.values())")
    if isinstance(texts, AbstractSet):
        return f"got a {name}, which has no order, so rows would not match inputs: pass sorted(...) or a list"
    return None


def checked_texts(texts: object) -> list[str]:
    """Return ``texts`` as a list of str, or raise InvalidInputError naming what was given and the fix.

    Any ordered iterable of str is taken (list, tuple, generator, numpy array of str). Refused: one str,
    bytes, a mapping (iterating a dict would embed its keys), a set (no order), and any element that is not str.
    """
    problem = _not_a_sequence(texts)
    if problem:
        raise InvalidInputError(f"texts must be a list of strings, {problem}")
    try:
        items = list(texts)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidInputError(f"texts must be a list of strings, got {type(texts).__name__}") from None
    for i, text in enumerate(items):
        if isinstance(text, (bytes, bytearray)):
            raise InvalidInputError(f"texts[{i}] is {type(text).__name__}, expected str: decode it first, "
                                    "e.g. data.decode('utf-8')")
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{i}] is {type(text).__name__}, expected str")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(f"texts[{i}] is not valid Unicode ({exc.reason} at index {exc.start}); "
                                    "decode your input with errors='replace'") from None
    return items


def checked_pairs(pairs: object) -> tuple[list[str], list[str]]:
    """Return (queries, documents) of ``pairs``, an ordered sequence of [query, document] sequences of two str, or
    raise InvalidInputError naming the first pair that is not one and the fix.
    """
    problem = _not_a_sequence(pairs)
    if problem:
        raise InvalidInputError(f"pairs must be a list of [query, document] pairs, {problem}")
    try:
        items = list(pairs)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidInputError(f"pairs must be a list of [query, document] pairs, got {type(pairs).__name__}") from None
    queries, documents = [], []
    for i, pair in enumerate(items):
        if isinstance(pair, (str, bytes, bytearray)) or _not_a_sequence(pair) or not hasattr(pair, "__len__") \
                or len(pair) != 2:
            raise InvalidInputError(f"pairs[{i}] is {type(pair).__name__} {str(pair)[:40]!r}; expected a [query, "
                                    "document] pair of two str")
        for j, side in enumerate(pair):
            if not isinstance(side, str):
                fix = ": decode it first, e.g. data.decode('utf-8')" if isinstance(side, (bytes, bytearray)) else ""
                raise InvalidInputError(f"pairs[{i}][{j}] is {type(side).__name__}, expected str{fix}")
        query, document = checked_texts(list(pair))
        queries.append(query)
        documents.append(document)
    return queries, documents


class SignatureRunner:
    """A Runner's ``encode`` through another signature of its file (a prompt's: exporter/runtime/prompts.py)."""

    def __init__(self, runner: Runner, signature: str):
        self.runner, self.signature = runner, signature
        self.name = f"{runner.name} [{signature}]"

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        return self.runner.encode(texts, batch_size, signature=self.signature)  # type: ignore[call-arg]


class PairScoring:
    """``score_and_logits``, ``score`` and ``tokenize_pairs`` of a reranker's Runner, written once for every runtime.

    A Runner mixes it in and defines ``_pair_outputs(queries, documents) -> {name: array}``: every output of its graph
    (``score`` and ``logits``, float32 [n, num_labels]) on one batch of n pairs, and ``_pair_tokens`` when it holds a
    tokenizer graph.
    """

    def _pair_outputs(self, queries: list[str], documents: list[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _pair_tokens(self, queries: list[str], documents: list[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def score_and_logits(self, queries: Sequence[str], documents: Sequence[str],
                         batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """Return (score, logits), float32 [N, num_labels] each, ``batch_size`` pairs per call of the graph.

        Raises:
            InvalidInputError: a side that is not a list of str, sides of different lengths, or a bad batch_size.
        """
        queries, documents = checked_sides(queries, documents)
        size = checked_batch_size(batch_size)
        # no pair still runs once: the graph gives the [0, num_labels] shapes
        outs = [self._pair_outputs(queries[i:i + size], documents[i:i + size])
                for i in (range(0, len(queries), size) or [0])]
        score, logits = (np.concatenate([out[name] for out in outs], axis=0) for name in ("score", "logits"))
        return score, logits

    def score(self, queries: Sequence[str], documents: Sequence[str],
              batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Return a reranker's scores (its activation applied), float32 [N, num_labels]."""
        return self.score_and_logits(queries, documents, batch_size)[0]

    def tokenize_pairs(self, queries: Sequence[str], documents: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the pair tokenizer's three int64 [N, L] outputs for one batch of pairs."""
        outputs = self._pair_tokens(*checked_sides(queries, documents))
        return {name: outputs[name] for name in TOKEN_NAMES}


def checked_sides(queries: object, documents: object) -> tuple[list[str], list[str]]:
    """Return the queries and documents as lists of str, or raise InvalidInputError (not str, not one per query)."""
    query, document = checked_texts(queries), checked_texts(documents)
    if len(query) != len(document):
        raise InvalidInputError(f"{len(query)} queries and {len(document)} documents; give one document per query")
    return query, document


class SparseEncoding:
    """``encode_sparse`` of a sparse (SPLADE) export's Runner, written once for every runtime.

    A Runner mixes it in and defines ``_sparse_outputs(texts) -> {name: array}``: its graph's ``indices`` (int64) and
    ``values`` (float32) [n, K] (and ``dense`` when exported) on one batch of n texts.
    """

    def _sparse_outputs(self, texts: list[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def encode_sparse(self, texts: Sequence[str],
                      batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices int64, values float32), [N, K] each: each text's top-K dimensions, values descending.

        K is the widest batch's; the other rows are padded with index :data:`SPARSE_PAD_INDEX` and value 0.

        Raises:
            InvalidInputError: texts that are not a list of str, or a bad batch_size.
        """
        items = checked_texts(texts)
        size = checked_batch_size(batch_size)
        outs = [self._sparse_outputs(items[i:i + size]) for i in (range(0, len(items), size) or [0])]
        width = max(out["indices"].shape[1] for out in outs)
        indices = np.concatenate([np.pad(out["indices"], ((0, 0), (0, width - out["indices"].shape[1])),
                                         constant_values=SPARSE_PAD_INDEX) for out in outs], axis=0)
        values = np.concatenate([np.pad(out["values"], ((0, 0), (0, width - out["values"].shape[1])))
                                 for out in outs], axis=0)
        return indices.astype(np.int64), values.astype(np.float32)
