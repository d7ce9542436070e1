"""The reference's WordPiece normalization as integer code-point tables (for string-op-free graphs).

TFLite has no string kernels beyond a few in tensorflow-text, so its tokenizer works on code
points: bytes → code points → these tables → back to strings only for tensorflow-text's
WordPiece. Everything here comes from ``WordPieceSpec.char_classes()`` (what the reference
tokenizer itself does with every code point); nothing is re-derived from Unicode rules.

* ``normalize``: raw code point → 0 (kept as is), -1 (deleted) or k > 0 (replaced by row k of
  ``replacements``, ``replacement_lengths[k]`` code points long);
* ``classes``: normalized code point → ``letter * 4 + kind``, kind 0 word / 1 whitespace /
  2 isolated (punctuation, CJK: a word of its own), ``letter`` its index in the vocabulary's
  alphabet (0: a character no vocabulary entry contains).

Both are two-stage tables (a block index per 256 code points, then the distinct blocks): about
200 KB instead of 4.4 MB each. Words reach tensorflow-text's WordPiece one per string
(``no_pretokenization``), spelled in a private alphabet: letter ``a`` is written as
``chr(SPELLING[a])``, the most frequent letters with the fewest UTF-8 bytes, because tf-text
refuses vocabulary entries over 256 bytes and HF allows 100 characters of any width.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from ...errors import UnsupportedModelError
from ..shared.codepoints import CODE_POINTS, DELETED, KEPT, TwoStageTable
from .spec import WordPieceSpec

WORD, WHITESPACE, ISOLATED = 0, 1, 2
#: code points that spell letters 0, 1, 2...: 1-byte ASCII (not "#": it starts suffix pieces), then
#: 2-byte letters, then private use; letter 0 stands for any character no vocabulary entry has
SPELLING = (*[c for c in range(0x21, 0x7F) if c != ord("#")], *range(0xC0, 0x800), *range(0xE000, 0xF900),
            *range(0xF0000, 0xFFFFE))
MAX_LETTERS = len(SPELLING) - 1
#: tensorflow-text's limit on a vocabulary entry (bytes, without the suffix indicator)
MAX_TOKEN_BYTES = 256
#: starts the stand-in of an entry longer than HF can ever match; never spelled from a text
UNREACHABLE = "\U0010FFFF"


@dataclass(frozen=True)
class CodePointTables:
    """Everything the code-point tokenizer needs, as arrays and strings."""

    normalize: TwoStageTable
    replacements: np.ndarray  # int32 [rows, width], row 0 unused
    replacement_lengths: np.ndarray  # int32 [rows]
    classes: TwoStageTable
    letters: tuple[str, ...]  # letter a (a ≥ 1) is letters[a - 1], most frequent first; 0: "not in the vocabulary"
    specials: tuple[tuple[tuple[int, ...], int], ...]  # (code points of the literal, placeholder code point)
    #: the same for the ``normalized`` special tokens, matched on the normalized code points
    normalized_specials: tuple[tuple[tuple[int, ...], int], ...] = ()

    @property
    def width(self) -> int:
        return int(self.replacements.shape[1])


def spelled(text: str, letters: dict[str, int]) -> str:
    """Return ``text`` in the private alphabet (each character → its letter's spelling)."""
    return "".join(chr(SPELLING[letters[c]]) for c in text)


def private_vocab(spec: WordPieceSpec, tables: CodePointTables) -> tuple[list[str], str]:
    """Return (the vocabulary + placeholders in the private alphabet, the unknown token in it).

    Raises:
        UnsupportedModelError: an entry the reference can match is over tf-text's 256 bytes.
    """
    letters = {c: i + 1 for i, c in enumerate(tables.letters)}
    prefix = spec.continuing_subword_prefix
    too_long = []

    def rewrite(index: int, token: str) -> str:
        suffix = token.startswith(prefix) and len(token) > len(prefix)
        body = token[len(prefix):] if suffix else token
        if len(body) > spec.max_input_chars_per_word:
            return f"{UNREACHABLE}{index}"  # a longer word is [UNK] before WordPiece: never matched
        text = spelled(body, letters)
        if len(text.encode("utf-8")) > MAX_TOKEN_BYTES:
            too_long.append(token)
        return prefix + text if suffix else text

    vocab = [rewrite(i, t) for i, t in enumerate((*spec.vocab, *spec.placeholders()))]
    if too_long:
        raise UnsupportedModelError([f"vocabulary entries {too_long[:3]} are over {MAX_TOKEN_BYTES} UTF-8 bytes in "
                                     "the code-point tokenizer's alphabet (tensorflow-text's limit)"])
    return vocab, spelled(spec.unk_token, letters)


def _alphabet(spec: WordPieceSpec) -> tuple[str, ...]:
    """Return the vocabulary's characters, most frequent first (they get the shortest spellings)."""
    prefix = spec.continuing_subword_prefix
    counts = Counter(spec.placeholders())
    for token in spec.vocab:
        counts.update(token[len(prefix):] if token.startswith(prefix) and len(token) > len(prefix) else token)
    if len(counts) > MAX_LETTERS:
        raise UnsupportedModelError([f"the vocabulary uses {len(counts)} distinct characters; the code-point "
                                     f"tokenizer holds at most {MAX_LETTERS}"])
    return tuple(sorted(counts, key=lambda c: (-counts[c], c)))


def _dense_ranges(ranges, value: int, into: np.ndarray) -> None:
    for first, last in ranges:
        into[first:last + 1] = value


def _normalize_table(spec: WordPieceSpec) -> tuple[TwoStageTable, np.ndarray, np.ndarray]:
    classes = spec.char_classes()
    dense = np.full(CODE_POINTS, KEPT, np.int32)
    _dense_ranges(classes.deleted, DELETED, dense)
    mapped = sorted(classes.mapped.items())
    width = max([len(v) for _, v in mapped] + [1])
    rows = np.zeros((len(mapped) + 1, width), np.int32)
    lengths = np.zeros(len(mapped) + 1, np.int32)
    for row, (key, value) in enumerate(mapped, start=1):
        dense[ord(key)] = row
        rows[row, :len(value)] = [ord(c) for c in value]
        lengths[row] = len(value)
    return TwoStageTable.from_dense(dense), rows, lengths


def _class_table(spec: WordPieceSpec, letters: tuple[str, ...]) -> TwoStageTable:
    classes = spec.char_classes()
    kinds = np.full(CODE_POINTS, WORD, np.int32)
    _dense_ranges(classes.whitespace, WHITESPACE, kinds)
    _dense_ranges(classes.isolated, ISOLATED, kinds)
    placeholders = [ord(c) for c in spec.placeholders()]
    kinds[placeholders] = ISOLATED  # a special token is a word of its own
    letter = np.zeros(CODE_POINTS, np.int32)
    letter[[ord(c) for c in letters]] = np.arange(1, len(letters) + 1, dtype=np.int32)
    return TwoStageTable.from_dense(letter * 4 + kinds)


def _check_specials_cannot_overlap(literals: list[str]) -> None:
    """The graph matches every special literal independently; that equals HF's leftmost-longest
    scan only if no two matches can overlap (true of [CLS]-style tokens). Refuse anything else."""
    problems = []
    for a in literals:
        for b in literals:
            if a != b and a in b:
                problems.append(f"special token {a!r} occurs inside {b!r}")
            shortest = min(len(a), len(b))
            if any(a[-k:] == b[:k] for k in range(1, shortest) if not (a == b and k == len(a))):
                problems.append(f"special tokens {a!r} and {b!r} can overlap in a text")
    if problems:
        raise UnsupportedModelError(sorted(set(problems)) + [
            "supported by the code-point tokenizer (TFLite): special tokens whose matches cannot overlap"])


_CACHE: dict[tuple, CodePointTables] = {}


def code_point_tables(spec: WordPieceSpec) -> CodePointTables:
    """Return the reference's normalization and pre-tokenization as code-point tables (about 5 s).

    Raises:
        UnsupportedModelError: special tokens that can overlap, or a vocabulary too large for
            the private alphabet.
    """
    key = (spec.backend_json, spec.continuing_subword_prefix, spec.specials, spec.normalized_specials, spec.vocab)
    if key not in _CACHE:
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _tables(spec)
    return _CACHE[key]


def _tables(spec: WordPieceSpec) -> CodePointTables:
    _check_specials_cannot_overlap([literal for literal, _ in spec.specials])
    _check_specials_cannot_overlap([literal for literal, _ in spec.normalized_specials])
    letters = _alphabet(spec)
    normalize, rows, lengths = _normalize_table(spec)
    marks = [ord(mark) for mark in spec.placeholders()]
    literals = [tuple(ord(c) for c in literal) for literal, _ in (*spec.specials, *spec.normalized_specials)]
    pairs = tuple(zip(literals, marks, strict=True))
    return CodePointTables(normalize=normalize, replacements=rows, replacement_lengths=lengths,
                           classes=_class_table(spec, letters), letters=letters, specials=pairs[:len(spec.specials)],
                           normalized_specials=pairs[len(spec.specials):])
