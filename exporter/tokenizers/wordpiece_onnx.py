"""Emit a WordPiece tokenizer as ONNX: text [N] → every piece's id and row (framed in ``framing_onnx``).

Why not the stock ``BertTokenizer`` op: it reads two texts as a sentence pair and its
normalization is not HF's (DESIGN.md). Here the reference's own per-code-point behaviour
(``WordPieceSpec.char_classes``) is applied with string ops, and the stock op does only
WordPiece. The graph is batched, with no Loop:

1. special-token literals → one private-use placeholder each (matched on raw text, like HF);
2. every row gets a sentinel at its end; the rows are split into characters, mapped through the
   normalization table (StringMapping) and joined into one string; the table also marks the
   characters the reference deletes and puts spaces around punctuation, which the pre-tokenizer
   isolates; the few long ranges of either (private use, CJK) stay in RE2 classes; special
   tokens marked ``normalized`` are matched now, on the normalized text, as HF matches them;
3. one RE2 split cuts that string into words: whitespace is dropped, CJK and the sentinels are
   kept as tokens; a sentinel's position gives each word its row;
4. ``WordpieceTokenizer`` splits each word into pieces; ``LabelEncoder`` maps pieces to ids.
   The op keeps the pieces before a failed match, HF does not: a failed word becomes one [UNK];
   (``framing_onnx`` truncates, adds the special tokens, pads and masks).

The graph needs opset 20 (StringSplit, StringConcat): see ``_nul_free_pieces``.

Why a table rather than RE2 classes for most characters: the extensions' regex kernels compile
their pattern on every call, in time that grows with the number of ranges in it. The deletion
class (~290 ranges) and the punctuation class (~170) cost about 1 ms per call together, most of
the tokenizer's time on one short text; a StringMapping lookup per character costs nothing
comparable, so only ranges of ``REGEX_MIN_RANGE`` code points or more stay in patterns.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import UnsupportedModelError
from ..graphs.onnx_builder import ML, GraphBuilder, ones_at
from .wordpiece import (SENTINEL, UNKNOWN_MARK, CharClasses, WordPieceSpec, marks_kept, regex_class, regex_literal,
                        without)

#: what the table maps a deleted character to; removed after the join (the reference deletes it from text)
DELETE_MARK = "\U0010FFFB"
#: ranges this long or longer stay in RE2 classes; shorter ones go into the table
REGEX_MIN_RANGE = 256


@dataclass(frozen=True)
class OnnxTokenizerRules:
    """What the ONNX graph applies: RE2 patterns for long ranges, a StringMapping table for the rest."""

    reserved: str  # our marks: removed from the input first
    table: str  # StringMapping's ``map``: 'char<TAB>normalized' lines
    deleted: str  # removed from the joined string: long deleted ranges and DELETE_MARK
    split: str  # whitespace runs, long isolated ranges (CJK), the row sentinel
    keep: str  # the split matches kept as tokens
    #: (pattern, " placeholder ") of the ``normalized`` special tokens, applied to the normalized string
    normalized_specials: tuple[tuple[str, str], ...] = ()


def _long_and_short(ranges) -> tuple[tuple[tuple[int, int], ...], list[int]]:
    """Return (ranges of at least REGEX_MIN_RANGE code points, the code points of the others)."""
    long = tuple((a, b) for a, b in ranges if b - a + 1 >= REGEX_MIN_RANGE)
    short = [cp for a, b in ranges if b - a + 1 < REGEX_MIN_RANGE for cp in range(a, b + 1)]
    return long, short


def _padded(text: str, isolated: set[int]) -> str:
    """Return ``text`` as the table writes it: the characters in ``isolated`` with a space either side."""
    return "".join(f" {c} " if ord(c) in isolated else c for c in text)


def _table(classes: CharClasses, *, isolated: set[int], deleted: list[int]) -> str:
    """Return the StringMapping table: HF's per-character normalization, deletions, isolated characters padded."""
    whitespace = lambda s: all(any(a <= ord(c) <= b for a, b in classes.whitespace) for c in s)  # noqa: E731
    entries = {key: _padded(value, isolated) for key, value in classes.mapped.items()}
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


def onnx_rules(spec: WordPieceSpec, classes: CharClasses) -> OnnxTokenizerRules:
    """Return the patterns and table of the ONNX tokenizer graph.

    Raises:
        UnsupportedModelError: the reference keeps our marks (no clean_text), or maps a
            character to a string with a tab or newline (the table's separators).
    """
    marks = {ord(SENTINEL), ord(UNKNOWN_MARK), ord(DELETE_MARK), *map(ord, spec.placeholders())}
    kept = marks_kept(classes, marks)
    if kept:
        raise UnsupportedModelError(kept)
    long_deleted, short_deleted = _long_and_short(without(classes.deleted, marks))
    long_isolated, short_isolated = _long_and_short(classes.isolated)
    sentinel, mark = regex_literal(SENTINEL), regex_literal(DELETE_MARK)
    isolated = f"{regex_class(long_isolated)}|" if long_isolated else ""
    return OnnxTokenizerRules(
        reserved=regex_class([(c, c) for c in sorted(marks)]),
        table=_table(classes, isolated=set(short_isolated), deleted=short_deleted),
        deleted=f"{regex_class(long_deleted)}|{mark}" if long_deleted else mark,
        split=f"({regex_class(classes.whitespace)}+|{isolated}{sentinel})",
        keep=f"{isolated}{sentinel}",
        normalized_specials=tuple(
            (regex_literal(_padded(literal, set(short_isolated))), f" {placeholder} ") for (literal, _), placeholder
            in zip(spec.normalized_specials, list(spec.placeholders())[len(spec.specials):])),
    )


def _nul_free_pieces(b: GraphBuilder, text: str) -> tuple[str, str]:
    """Return (pieces [N, K+1], index of each row's last piece [N, 1]).

    onnxruntime-extensions' string kernels read a string up to its first NUL, so the texts are
    split on NUL (which the reference deletes) with the standard StringSplit before any of them
    runs; an extra empty column makes sure every row, even an empty one, has a piece.
    """
    pieces, counts = b.op("StringSplit", [text], outputs=2, delimiter="\x00")
    rows = b.op("Shape", [pieces], start=0, end=1)
    empty_column = b.op("Expand", [b.const([[""]], "empty"), b.op("Concat", [rows, b.const([1])], axis=0)])
    pieces = b.op("Concat", [pieces, empty_column], axis=1)
    last = b.op("Sub", [b.op("Max", [counts, b.const(1)]), b.const(1)])
    return pieces, b.op("Unsqueeze", [last, b.const([1])])


def _replaced(b: GraphBuilder, source: str, pattern: str, rewrite: str) -> str:
    return b.contrib("StringRegexReplace", [source, b.const([pattern], "pattern"), b.const([rewrite], "rewrite")],
                     global_replace=1)


def _normalized_joined(b: GraphBuilder, spec: WordPieceSpec, rules: OnnxTokenizerRules, text: str) -> str:
    """Steps 1-2: return one string holding every row, normalized, each ended by the sentinel."""
    pieces, last = _nul_free_pieces(b, text)
    cleaned = _replaced(b, b.op("Reshape", [pieces, b.const([-1])]), rules.reserved, "")
    for (literal, _), mark in zip(spec.specials, spec.placeholders()):
        cleaned = _replaced(b, cleaned, regex_literal(literal), f" {mark} ")
    column = b.op("Unsqueeze", [b.op("Range", [b.const(0), b.op("Squeeze", [
        b.op("Shape", [pieces], start=1, end=2)]), b.const(1)]), b.const([0])])
    suffix = b.op("Where", [b.op("Equal", [column, last]), b.const(SENTINEL, "sentinel"), b.const("", "nothing")])
    ended = b.op("StringConcat", [b.op("Reshape", [cleaned, b.op("Shape", [pieces])]), suffix])
    ended = b.op("Reshape", [ended, b.const([-1])])
    if rules.table:
        chars = b.contrib("StringRegexSplitWithOffsets",
                          [ended, b.const(["((?s).)"], "pattern"), b.const(["(?s)."], "keep")], outputs=4)[0]
        ended = b.contrib("StringMapping", [chars], map=rules.table)
    joined = _replaced(b, b.contrib("StringJoin", [ended, b.const("", "sep"), b.const(0, "axis")]), rules.deleted, "")
    for pattern, rewrite in rules.normalized_specials:
        joined = _replaced(b, joined, pattern, rewrite)
    return joined


def _words_and_rows(b: GraphBuilder, rules: OnnxTokenizerRules, joined: str) -> tuple[str, str]:
    """Step 3: return (words [W] string, row of each word [W] int64)."""
    tokens = b.contrib("StringRegexSplitWithOffsets",
                       [joined, b.const([rules.split], "pattern"), b.const([rules.keep], "keep")], outputs=4)[0]
    is_sentinel = b.op("LabelEncoder", [tokens], domain=ML, keys_strings=[SENTINEL], values_int64s=[1],
                       default_int64=0)
    row = b.op("CumSum", [is_sentinel, b.const(0, "axis")], exclusive=1)
    is_word = b.op("Equal", [is_sentinel, b.const(0, "zero")])
    return b.op("Compress", [tokens, is_word], axis=0), b.op("Compress", [row, is_word], axis=0)


def _piece_ids(b: GraphBuilder, spec: WordPieceSpec, words: str, word_row: str) -> tuple[str, str]:
    """Step 4: return (ids [P] int64, row of each id [P]) with HF's whole-word [UNK]."""
    vocab = {token: i for i, token in enumerate(spec.vocab)}
    vocab.update({mark: token_id for mark, token_id in spec.placeholders().items()})
    pieces, row_begins = b.contrib(
        "WordpieceTokenizer", [words, b.const([], "no_rows", dtype="int64")], outputs=4,
        vocab=json.dumps(vocab, ensure_ascii=False), suffix_indicator=spec.continuing_subword_prefix,
        unknown_token=UNKNOWN_MARK, max_input_chars_per_word=spec.max_input_chars_per_word)[:2]
    keys = list(vocab)
    ids = b.op("LabelEncoder", [pieces], domain=ML, keys_strings=keys, values_int64s=[vocab[k] for k in keys],
               default_int64=-1)
    n_pieces = b.op("Shape", [ids])
    # word index of every piece: 1 at each word's first piece (but the first), then a running sum
    starts = b.op("Slice", [row_begins, b.const([1]), b.const([-1])])
    piece_word = b.op("CumSum", [ones_at(b, n_pieces, starts), b.const(0)])
    word_end = b.op("Slice", [row_begins, b.const([1]), b.const([2 ** 62])])
    last_of_word = b.op("Sub", [b.op("Gather", [word_end, piece_word]), b.const(1)])
    positions = b.op("Range", [b.const(0), b.op("Squeeze", [n_pieces]), b.const(1)])
    is_last = b.op("Equal", [positions, last_of_word])
    word_failed = b.op("Equal", [b.op("Gather", [ids, last_of_word]), b.const(-1)])
    keep = b.op("Or", [is_last, b.op("Not", [word_failed])])
    ids = b.op("Where", [b.op("Equal", [ids, b.const(-1)]), b.const(spec.unk_id), ids])
    rows = b.op("Gather", [word_row, piece_word])
    return b.op("Compress", [ids, keep], axis=0), b.op("Compress", [rows, keep], axis=0)


def piece_ids(b: GraphBuilder, spec: WordPieceSpec, text: str) -> tuple[str, str]:
    """Add the tokenizer to ``b`` reading the string tensor ``text``; return (ids [P], row of each [P])."""
    rules = onnx_rules(spec, spec.char_classes())
    joined = _normalized_joined(b, spec, rules, text)
    words, word_row = _words_and_rows(b, rules, joined)
    return _piece_ids(b, spec, words, word_row)
