"""String-op pieces every ONNX tokenizer emitter shares: NUL-safe rows, special-token placeholders,
a per-character normalization table, words with the row each came from.

The emitters (``wordpiece.emit_onnx``, ``unigram.emit_onnx``) build an :class:`OnnxTokenizerRules` from the
reference's per-character behaviour and call :func:`normalized_joined` then :func:`words_and_rows`.

Why a table rather than RE2 classes for most characters: the extensions' regex kernels compile
their pattern on every call, in time that grows with the number of ranges in it. The deletion
class (~290 ranges) and the punctuation class (~170) cost about 1 ms per call together, most of
the tokenizer's time on one short text; a StringMapping lookup per character costs nothing
comparable, so only ranges of ``REGEX_MIN_RANGE`` code points or more stay in patterns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from onnx import TensorProto

from ...errors import UnsupportedModelError
from ...graphs.onnx_builder import ML, GraphBuilder, ones_at
from .codepoints import DELETE_MARK, SENTINEL, CharClasses, regex_literal

#: ranges this long or longer stay in RE2 classes; shorter ones go into the table
REGEX_MIN_RANGE = 256


@dataclass(frozen=True)
class OnnxTokenizerRules:
    """What the ONNX graph applies: RE2 patterns for long ranges, a StringMapping table for the rest."""

    reserved: str  # our marks: replaced in the input first, by ``reserved_to``
    table: str  # StringMapping's ``map``: 'char<TAB>normalized' lines
    deleted: str  # removed from the joined string: long deleted ranges and DELETE_MARK
    split: str  # whitespace runs, long isolated ranges (CJK), the row sentinel
    keep: str  # the split matches kept as tokens
    #: (pattern, " placeholder ") of the ``normalized`` special tokens, applied to the normalized string
    normalized_specials: tuple[tuple[str, str], ...] = ()
    #: what a text's own marks become ("": the reference deletes them) and what NUL becomes
    reserved_to: str = ""
    nul_to: str = ""


def long_and_short(ranges) -> tuple[tuple[tuple[int, int], ...], list[int]]:
    """Return (ranges of at least REGEX_MIN_RANGE code points, the code points of the others)."""
    long = tuple((a, b) for a, b in ranges if b - a + 1 >= REGEX_MIN_RANGE)
    short = [cp for a, b in ranges if b - a + 1 < REGEX_MIN_RANGE for cp in range(a, b + 1)]
    return long, short


def padded(text: str, isolated: set[int]) -> str:
    """Return ``text`` as the table writes it: the characters in ``isolated`` with a space either side."""
    return "".join(f" {c} " if ord(c) in isolated else c for c in text)


def table(classes: CharClasses, *, isolated: set[int], deleted: list[int]) -> str:
    """Return the StringMapping table: HF's per-character normalization, deletions, isolated characters padded."""
    whitespace = lambda s: all(any(a <= ord(c) <= b for a, b in classes.whitespace) for c in s)  # noqa: E731
    entries = {key: padded(value, isolated) for key, value in classes.mapped.items()}
    entries.update({chr(cp): f" {chr(cp)} " for cp in isolated if chr(cp) not in entries})
    entries.update({chr(cp): DELETE_MARK for cp in deleted})
    lines = []
    for key, value in sorted(entries.items()):
        if whitespace(key) and whitespace(value):
            continue  # both split words the same way
        if any(c in key + value for c in "\t\n"):
            raise UnsupportedModelError([f"tokenizer maps {key!r} to {value!r}, which the graph's table cannot hold"])
        lines.append(f"{key}\t{value}")
    return "\n".join(lines)


def nul_free_pieces(b: GraphBuilder, text: str) -> tuple[str, str]:
    """Return (pieces [N, K+1], index of each row's last piece [N, 1]).

    onnxruntime-extensions' string kernels read a string up to its first NUL, so the texts are
    split on NUL with the standard StringSplit before any of them runs (the caller puts back what
    the reference makes of NUL); an extra empty column makes sure every row, even an empty one, has a piece.
    """
    pieces, counts = b.op("StringSplit", [text], outputs=2, delimiter="\x00")
    rows = b.op("Shape", [pieces], start=0, end=1)
    empty_column = b.op("Expand", [b.const([[""]], "empty"), b.op("Concat", [rows, b.const([1])], axis=0)])
    pieces = b.op("Concat", [pieces, empty_column], axis=1)
    last = b.op("Sub", [b.op("Max", [counts, b.const(1)]), b.const(1)])
    return pieces, b.op("Unsqueeze", [last, b.const([1])])


def replaced(b: GraphBuilder, source: str, pattern: str, rewrite: str) -> str:
    return b.contrib("StringRegexReplace", [source, b.const([pattern], "pattern"), b.const([rewrite], "rewrite")],
                     global_replace=1)


#: ``(graph, chars [C], UTF-8 length of each [C]) -> normalized chars [C]``
CharMapper = Callable[[GraphBuilder, str, str], str]


def string_mapping(rules: OnnxTokenizerRules) -> CharMapper:
    """Return the per-character normalization: the table, one character at a time."""
    return lambda b, chars, lengths: b.contrib("StringMapping", [chars], map=rules.table)


def normalized_joined(b: GraphBuilder, specials: list[tuple[str, str]], rules: OnnxTokenizerRules, text: str,
                      map_chars: CharMapper | None = None) -> str:
    """Return one string holding every row, normalized, each ended by the sentinel.

    Args:
        specials: (literal, placeholder) of the special tokens matched on the raw text, longest first.
        map_chars: normalizes the characters (default: :func:`string_mapping`).
    """
    pieces, last = nul_free_pieces(b, text)
    cleaned = replaced(b, b.op("Reshape", [pieces, b.const([-1])]), rules.reserved, rules.reserved_to)
    for literal, mark in specials:
        cleaned = replaced(b, cleaned, regex_literal(literal), f" {mark} ")
    column = b.op("Unsqueeze", [b.op("Range", [b.const(0), b.op("Squeeze", [
        b.op("Shape", [pieces], start=1, end=2)]), b.const(1)]), b.const([0])])
    after_nul = b.op("Where", [b.op("Less", [column, last]), b.const(rules.nul_to, "nul"), b.const("", "nothing")])
    suffix = b.op("Where", [b.op("Equal", [column, last]), b.const(SENTINEL, "sentinel"), after_nul])
    ended = b.op("StringConcat", [b.op("Reshape", [cleaned, b.op("Shape", [pieces])]), suffix])
    ended = b.op("Reshape", [ended, b.const([-1])])
    if rules.table:
        chars, begins, ends = b.contrib("StringRegexSplitWithOffsets",
                                        [ended, b.const(["((?s).)"], "pattern"), b.const(["(?s)."], "keep")],
                                        outputs=4)[:3]
        ended = (map_chars or string_mapping(rules))(b, chars, b.op("Sub", [ends, begins]))
    joined = replaced(b, b.contrib("StringJoin", [ended, b.const("", "sep"), b.const(0, "axis")]), rules.deleted, "")
    for pattern, rewrite in rules.normalized_specials:
        joined = replaced(b, joined, pattern, rewrite)
    return joined


def words_and_rows(b: GraphBuilder, rules: OnnxTokenizerRules, joined: str) -> tuple[str, str]:
    """Return (words [W] string, row of each word [W] int64): the joined string split by ``rules.split``."""
    tokens = b.contrib("StringRegexSplitWithOffsets",
                       [joined, b.const([rules.split], "pattern"), b.const([rules.keep], "keep")], outputs=4)[0]
    is_sentinel = b.op("LabelEncoder", [tokens], domain=ML, keys_strings=[SENTINEL], values_int64s=[1],
                       default_int64=0)
    row = b.op("CumSum", [is_sentinel, b.const(0, "axis")], exclusive=1)
    is_word = b.op("Equal", [is_sentinel, b.const(0, "zero")])
    return b.op("Compress", [tokens, is_word], axis=0), b.op("Compress", [row, is_word], axis=0)




def sentencepiece_ids(b: GraphBuilder, model: bytes, reference_ids, words: str, word_row: str,
                      after: Callable[[GraphBuilder, str, str], tuple[str, str]] | None = None) -> tuple[str, str]:
    """Return (ids [P], row of each [P]) of the words run through onnxruntime-extensions' ``SentencepieceTokenizer``.

    Args:
        model: the SentencePiece model (no normalizer of its own: the words are ready).
        reference_ids: int64 [kernel ids]: the reference id of each of the kernel's.
        words, word_row: the words [W] and the row of the text each came from [W].
        after: a step on the kernel's output: (builder, kernel ids [P], word splits [W + 1]) → the same, changed.
    """
    pieces, splits = b.contrib(
        "SentencepieceTokenizer",
        [words, b.const([0], "nbest_size", dtype="int64"), b.const([0.0], "alpha", dtype="float32"),
         b.const([False], "add_bos"), b.const([False], "add_eos"), b.const([False], "reverse")],
        outputs=2, model=model)
    pieces = b.op("Cast", [pieces], to=TensorProto.INT64)
    if after is not None:
        pieces, splits = after(b, pieces, b.op("Cast", [splits], to=TensorProto.INT64))
    ids = b.op("Gather", [b.const(reference_ids, "reference_ids"), pieces])
    starts = b.op("Slice", [splits, b.const([1]), b.const([-1])])
    count = b.op("Shape", [ids])  # one slot more: words without pieces may end the batch (start = count)
    marks = ones_at(b, b.op("Add", [count, b.const([1])]), starts, reduction="add")
    piece_word = b.op("Slice", [b.op("CumSum", [marks, b.const(0)]), b.const([0]), count])
    return ids, b.op("Gather", [word_row, piece_word])
