"""Byte-level BPE tokenizers (RoBERTa: all-distilroberta-v1, nli-/stsb-roberta): read from the reference.

The reference is transformers' rebuilt backend: special tokens matched on the raw text (``<mask>``
takes the whitespace before it, lstrip), then ``ByteLevel`` (GPT-2's regex splits each stretch of
text between special tokens into pre-tokens, each pre-token's UTF-8 bytes become the 256
characters of the byte alphabet), then BPE over each pre-token with the merges in rank order.

The graphs reproduce it on UTF-8 bytes and code points, no regex kernel (those stop at NUL):

* **pre-tokens**: every code point's class (letter, number, whitespace, other) is probed from the
  reference's own pre-tokenizer (:func:`_classes`), and GPT-2's regex becomes local rules on
  neighbouring classes (:func:`pretoken_starts`, written once for numpy, TensorFlow and ONNX);
* **BPE** in SentencePiece kernels (onnxruntime-extensions' ``SentencepieceTokenizer``,
  tensorflow-text's ``SentencepieceTokenizer``) over a SentencePiece BPE model built here
  (:meth:`BpeSpec.model_proto`): the reference's pieces in id order, a piece made by merge r
  scored -(r + 1), pieces no merge makes never matched, an identity normalizer; each special token
  as a user-defined placeholder piece.

SentencePiece merges the adjacent pair of best score whose concatenation is a piece; BPE merges the
pair of best rank that is a merge. They agree when every piece is reachable only through its own
merge, as trained merges are; the parity sweeps measure it for every export.

TFLite: tensorflow-text's only TFLite SentencePiece kernel (``FastSentencepieceTokenizer``) runs
Unigram and tokenizes a BPE model wrongly without an error, so ``tflite`` is refused.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...modules.transformer import TransformerConfig
from ...progress import note
from ..shared.codepoints import CODE_POINTS, SURROGATES, TwoStageTable, placeholders
from ..shared.family import Framing, TokenizerSpec, nul_piece_problems, read_framing
from ..shared.sentencepiece import kernel_model

#: pre-token classes of GPT-2's regex: other (``[^\s\p{L}\p{N}]``) first, the default; Qwen2's regex also
#: tells the line breaks (``[\r\n]``) from the other whitespace
OTHER, LETTER, NUMBER, WHITESPACE, NEWLINE = 0, 1, 2, 3, 4
#: the pre-token rules a tokenizer uses: GPT-2's regex inside ByteLevel (RoBERTa, ModernBERT), or Qwen2's regex in a
#: Split before a ByteLevel without regex (Qwen2, Qwen3)
GPT2, QWEN2 = "gpt2", "qwen2"
QWEN2_REGEX = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
               "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
#: GPT-2's contractions, matched after an apostrophe that starts a pre-token (case-sensitive)
CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")
TFLITE_REFUSAL = ("tensorflow-text's only TFLite SentencePiece kernel (FastSentencepieceTokenizer) runs Unigram: "
                  "given this BPE model it returns other pieces without an error (470 of 728 corpus words differed "
                  "on the tests' RoBERTa vocabulary), and TFLite has no BPE kernel; export the other targets "
                  "(--targets onnx,savedmodel,triton,tfserving)")


def byte_alphabet() -> list[str]:
    """Return the character standing for each byte 0-255 (GPT-2's ``bytes_to_unicode``, as HF's ByteLevel maps)."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    extra = iter(range(0x100, 0x200))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def _pre_tokenizer_rules(pre: dict[str, Any] | None) -> str | None:
    """Return the pre-token rules of a backend pre-tokenizer (:data:`GPT2` or :data:`QWEN2`), None for others."""
    if _byte_level(pre):
        return GPT2
    steps = (pre or {}).get("pretokenizers") or []
    if (pre or {}).get("type") != "Sequence" or len(steps) != 2:
        return None
    split, level = steps
    if (split.get("type") == "Split" and split.get("pattern") == {"Regex": QWEN2_REGEX}
            and split.get("behavior") == "Isolated" and not split.get("invert")
            and level.get("type") == "ByteLevel" and not level.get("use_regex", True)
            and not level.get("add_prefix_space", False)):
        return QWEN2
    return None


@functools.lru_cache(maxsize=4)
def _qwen2_classes(backend_json: str) -> np.ndarray:
    """Return the class of every code point under Qwen2's regex (int32 [0x110000]), probed from the reference:
    a letter joins "a"; an other character joins a "!" before it and a letter after it; a line break joins the
    "!" but not the letter; other whitespace the letter only; a number neither."""
    from tokenizers import Tokenizer

    note("probing the reference's pre-tokenizer with every code point (about 15 s)")
    pre = Tokenizer.from_str(backend_json).pre_tokenizer.pre_tokenize_str
    classes = np.full(CODE_POINTS, OTHER, np.int32)
    for cp in range(CODE_POINTS):
        if cp in SURROGATES:
            continue
        ch = chr(cp)
        if len(pre("a" + ch)) == 1:
            classes[cp] = LETTER
            continue
        after_other, before_letter = len(pre("!" + ch)) == 1, len(pre(ch + "a")) == 1
        classes[cp] = ((OTHER if before_letter else NEWLINE) if after_other
                       else WHITESPACE if before_letter else NUMBER)
    return classes


@functools.lru_cache(maxsize=4)
def _contraction_letters(backend_json: str) -> tuple[tuple[frozenset[int], ...], ...]:
    """Return, for each of Qwen2's contractions, the code points each of its letters matches (its regex reads them
    case-insensitively), probed from the reference: the apostrophe and the letters are one pre-token, "a" after them
    another."""
    from tokenizers import Tokenizer

    pre = Tokenizer.from_str(backend_json).pre_tokenizer.pre_tokenize_str
    letters = [c for c in map(chr, range(0x10000)) if c.lower() != c.upper() or c.isalpha()]
    out = []
    for suffix in CONTRACTIONS:
        options = []
        for k, letter in enumerate(suffix):
            rest = suffix[:k], suffix[k + 1:]
            options.append(frozenset(ord(c) for c in letters
                                     if [w for w, _ in pre("'" + rest[0] + c + rest[1] + "a")]
                                     == ["'" + rest[0] + c + rest[1], "a"]))
        out.append(tuple(options))
    return tuple(out)


#: the most code points a code point's canonical decomposition has (U+1F82: alpha and three marks)
NFC_WIDTH = 4
#: the key of a pair of code points in the NFC composition table: first * PAIR_KEY + second
PAIR_KEY = 2**21
#: composition passes: each composes a starter with the next mark, or with the one after a mark of a lower class
COMPOSE_PASSES = 3


def graph_nfc(cps: list[int], pairs: dict[int, int], ccc) -> list[int]:
    """Return the graphs' NFC of canonically decomposed code points (what the ONNX graph does, in Python): one pass
    of canonical reordering (adjacent marks swapped where out of class order), then ``COMPOSE_PASSES`` passes each
    composing a starter with the mark after it, or with the mark after a lower-class mark that does not compose."""
    cc = [ccc(c) for c in cps]
    swap = [i + 1 < len(cps) and cc[i] > cc[i + 1] > 0 for i in range(len(cps))]
    swap = [s and not (i and swap[i - 1]) for i, s in enumerate(swap)]
    cps = [cps[i + 1] if swap[i] else cps[i - 1] if i and swap[i - 1] else c for i, c in enumerate(cps)]
    for _ in range(COMPOSE_PASSES):
        n = len(cps)
        found = [i + 1 < n and cps[i] * PAIR_KEY + cps[i + 1] in pairs for i in range(n)]
        found = [f and not (i and found[i - 1]) for i, f in enumerate(found)]
        cps = [pairs[c * PAIR_KEY + cps[i + 1]] if found[i] else c for i, c in enumerate(cps)
               if not (i and found[i - 1])]
        n, cc = len(cps), [ccc(c) for c in cps]
        skip = [i + 2 < n and cc[i] == 0 and 0 < cc[i + 1] < cc[i + 2] and cps[i] * PAIR_KEY + cps[i + 1] not in pairs
                and cps[i] * PAIR_KEY + cps[i + 2] in pairs for i in range(n)]
        cps = [pairs[c * PAIR_KEY + cps[i + 2]] if skip[i] else c for i, c in enumerate(cps)
               if not (i >= 2 and skip[i - 2])]
    return cps


@functools.lru_cache(maxsize=4)
def _nfc_tables(backend_json: str) -> tuple[np.ndarray, np.ndarray, dict[int, int], np.ndarray]:
    """Return (the entry of every code point: 0 kept, k: row k of the replacements; the replacements int64
    [K + 1, NFC_WIDTH + 1], code points then how many; {first * PAIR_KEY + second: composite}; the canonical
    combining class of every code point), probed from the reference's NFC normalizer: each code point's canonical
    decomposition (its own NFC where :func:`graph_nfc` would not rebuild that), and each canonical pair (Unicode's
    two-code-point decompositions and Hangul's L+V, LV+T) that it composes."""
    import unicodedata

    from tokenizers import Tokenizer

    normalize = Tokenizer.from_str(backend_json).normalizer.normalize_str
    ccc = np.zeros(CODE_POINTS, np.int32)
    pairs: dict[int, int] = {}
    for cp in range(CODE_POINTS):
        if cp in SURROGATES:
            continue
        ch = chr(cp)
        ccc[cp] = unicodedata.combining(ch)
        parts = unicodedata.decomposition(ch).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            first, second = (int(p, 16) for p in parts)
            if normalize(chr(first) + chr(second)) == ch:
                pairs[first * PAIR_KEY + second] = cp
    for syllable in range(0xAC00, 0xD7A4):
        index = syllable - 0xAC00
        lead, vowel, trail = 0x1100 + index // 588, 0x1161 + index % 588 // 28, 0x11A7 + index % 28
        key = (lead * PAIR_KEY + vowel) if trail == 0x11A7 else (syllable - index % 28) * PAIR_KEY + trail
        if normalize(chr(key // PAIR_KEY) + chr(key % PAIR_KEY)) == chr(syllable):
            pairs[key] = syllable
    entry = np.zeros(CODE_POINTS, np.int32)
    rows: list[list[int]] = [[0] * NFC_WIDTH]
    lengths = [1]
    for cp in range(CODE_POINTS):
        if cp in SURROGATES:
            continue
        ch = chr(cp)
        nfc = [ord(c) for c in normalize(ch)]
        out = [ord(c) for c in unicodedata.normalize("NFD", "".join(map(chr, nfc)))]
        if out == [cp]:  # most code points: nothing to replace, and nothing for graph_nfc to rebuild
            continue
        if len(out) > NFC_WIDTH or graph_nfc(out, pairs, ccc.__getitem__) != nfc:
            out = nfc
        if out != [cp]:
            entry[cp] = len(rows)
            rows.append(out + [0] * (NFC_WIDTH - len(out)))
            lengths.append(len(out))
    table = np.array(rows, np.int64)
    return entry, np.concatenate([table, np.array(lengths, np.int64)[:, None]], axis=1), pairs, ccc


@functools.lru_cache(maxsize=2)
def _classes(backend_json: str) -> np.ndarray:
    """Return the pre-token class of every code point (int32 [0x110000]), probed from the reference's pre-tokenizer."""
    from tokenizers import Tokenizer

    note("probing the reference's pre-tokenizer with every code point (about 8 s)")
    pre = Tokenizer.from_str(backend_json).pre_tokenizer.pre_tokenize_str
    classes = np.full(CODE_POINTS, OTHER, np.int32)
    for cp in range(CODE_POINTS):
        if cp in SURROGATES:
            continue
        ch = chr(cp)
        if len(pre("a" + ch)) == 1:
            classes[cp] = LETTER
        elif len(pre("1" + ch)) == 1:
            classes[cp] = NUMBER
        elif len(pre("!" + ch)) > 1:
            classes[cp] = WHITESPACE
    return classes


class NumpyOps:
    """The array operations :func:`pretoken_starts` uses, in numpy; the graph emitters pass their own."""

    @staticmethod
    def ahead(x: np.ndarray, k: int, fill: Any) -> np.ndarray:
        """Return x[i + k] for every i, ``fill`` past the end."""
        return np.concatenate([x[k:], np.full(min(k, len(x)), fill, x.dtype)])

    @staticmethod
    def behind(x: np.ndarray, k: int, fill: Any) -> np.ndarray:
        """Return x[i - k] for every i, ``fill`` before the start."""
        return np.concatenate([np.full(min(k, len(x)), fill, x.dtype), x[:max(len(x) - k, 0)]])

    eq, ne, where = staticmethod(np.equal), staticmethod(np.not_equal), staticmethod(np.where)
    and_, or_, not_ = staticmethod(np.logical_and), staticmethod(np.logical_or), staticmethod(np.logical_not)

    @staticmethod
    def cumsum(x: np.ndarray) -> np.ndarray:
        """Return the inclusive running count of True in ``x`` (int64)."""
        return np.cumsum(x.astype(np.int64))

    @staticmethod
    def next_of(mask: np.ndarray) -> np.ndarray:
        """Return the index of the first True at or after every i (the length past the last one)."""
        return np.concatenate([np.flatnonzero(mask), [len(mask)]])[np.cumsum(mask) - mask]

    @staticmethod
    def prev_of(mask: np.ndarray) -> np.ndarray:
        """Return the index of the last True at or before every i (-1 before the first one)."""
        return np.concatenate([[-1], np.flatnonzero(mask)])[np.cumsum(mask)]

    @staticmethod
    def take(x: np.ndarray, index: np.ndarray, fill: Any) -> np.ndarray:
        """Return x[index] for every index in 0..len(x) - 1, ``fill`` for -1 and len(x)."""
        padded = np.concatenate([x, np.full(1, fill, x.dtype)])
        return padded[np.where(index < 0, len(x), index)]

    select = staticmethod(np.where)  # between integers (``where`` selects between booleans)
    add = staticmethod(np.add)  # between integers

    @staticmethod
    def scatter_max(x: np.ndarray, index: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Return x with x[index[i]] raised to values[i] where that is larger."""
        out = x.copy()
        np.maximum.at(out, index, values)
        return out

    @staticmethod
    def isin(x: np.ndarray, values: list[int]) -> np.ndarray:
        """Return True where x is one of ``values``."""
        return np.isin(x, values)

    nonzero = staticmethod(np.flatnonzero)

    @staticmethod
    def gather(x: Any, index: np.ndarray) -> np.ndarray:
        """Return x[index] (``x`` an array or a constant table)."""
        return np.asarray(x)[index]

    @staticmethod
    def row_max(x: np.ndarray) -> np.ndarray:
        """Return the largest value of every row of a [P, S] array."""
        return x.max(axis=1, initial=0)

    @staticmethod
    def window(x: np.ndarray, row: np.ndarray, at: np.ndarray, width: int, fill: int) -> np.ndarray:
        """Return x[at + k] for every position in ``at`` and k < width ([P, width]), ``fill`` past the end of at's row."""
        index = at[:, None] + np.arange(width)
        inside = index < len(x)
        index = np.minimum(index, len(x) - 1)
        return np.where(inside & (row[index] == row[at][:, None]), x[index], fill)

    @staticmethod
    def matches(window: np.ndarray, table: np.ndarray) -> np.ndarray:
        """Return [P, S]: True where window row p equals table row s at every column where table[s] is not -1."""
        return ((window[:, None, :] == table) | (table < 0)).all(axis=2)

    @staticmethod
    def spans(like: np.ndarray, at: np.ndarray, length: np.ndarray, first: int, weight: np.ndarray) -> np.ndarray:
        """Return True at every i in at + first .. at + length - 1 of the positions where ``weight`` is True
        (a bool vector as long as ``like``)."""
        marks = np.zeros(len(like) + 1, np.int64)
        np.add.at(marks, at + first, weight.astype(np.int64))
        np.add.at(marks, at + length, -weight.astype(np.int64))
        return np.cumsum(marks)[:len(like)] > 0

    @staticmethod
    def scatter(like: np.ndarray, at: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Return an int64 vector as long as ``like``: ``values`` at ``at``, 0 elsewhere."""
        out = np.zeros(len(like), np.int64)
        out[at] = values
        return out


def pretoken_starts(cps, kinds, stretch_start, ops: Any = NumpyOps, rules: str = GPT2,
                    contractions: tuple[tuple[frozenset[int], ...], ...] | None = None):
    """Return where the reference's regex starts a pre-token, as rules on neighbouring characters.

    Args:
        cps, kinds: code points of the texts' stretches (text between special tokens) and their classes.
        stretch_start: True where a stretch starts.
        ops: the array operations (:class:`NumpyOps`; the TF and ONNX emitters pass theirs).
        rules: :data:`GPT2` or :data:`QWEN2` (:func:`_qwen2_starts`).
        contractions: the code points each letter of each of :data:`CONTRACTIONS` matches (None: the letter).

    GPT-2's regex (``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``)
    as rules: a run of one class is one pre-token; a space (U+0020) before a letter, number or other
    character joins it; a whitespace run followed by something else in its stretch leaves its last
    character to the next pre-token; an apostrophe that starts a pre-token takes a contraction after
    it, and the character after the contraction starts the next.
    """
    joined = [ops.not_(ops.and_(stretch_start, ops.not_(stretch_start)))]  # [k]: characters i..i+k in one stretch
    for k in (1, 2, 3):
        joined.append(ops.and_(joined[-1], ops.ahead(ops.not_(stretch_start), k, False)))
    if rules == QWEN2:
        starts = _qwen2_starts(cps, kinds, stretch_start, joined[1], ops)
    else:
        prev_kind, space = ops.behind(kinds, 1, -1), ops.eq(kinds, WHITESPACE)
        run_ends = ops.and_(joined[1], ops.ne(ops.ahead(kinds, 1, WHITESPACE), WHITESPACE))
        inside_run = ops.or_(ops.ne(prev_kind, WHITESPACE), run_ends)
        outside = ops.and_(ops.ne(ops.behind(cps, 1, -1), 0x20), ops.ne(prev_kind, kinds))
        starts = ops.or_(stretch_start, ops.where(space, inside_run, outside))
    apostrophe = ops.and_(ops.eq(cps, ord("'")), starts)
    result = starts
    for index, suffix in enumerate(CONTRACTIONS):
        length = len(suffix) + 1
        found = ops.and_(apostrophe, joined[length - 1])
        for k, c in enumerate(suffix, start=1):
            options = sorted(contractions[index][k - 1]) if contractions else [ord(c)]
            at = ops.ahead(cps, k, 0)
            found = ops.and_(found, ops.eq(at, options[0]) if len(options) == 1 else ops.isin(at, options))
        for k in range(1, length):
            result = ops.and_(result, ops.not_(ops.behind(found, k, False)))
        result = ops.or_(result, ops.behind(ops.and_(found, joined[length]), length, False))
    return result


def _qwen2_starts(cps, kinds, stretch_start, next_joined, ops: Any):
    """Return where Qwen2's regex starts a pre-token, contractions aside (``pretoken_starts`` adds them).

    The regex (:data:`QWEN2_REGEX`) as rules, where GPT-2's differ: a digit is a pre-token alone; a letter run takes
    the one character before it when that is whitespace other than a line break, or an other character starting a
    pre-token; a space (U+0020) joins a run of other characters after it, which takes the line breaks after it; a
    whitespace run holding a line break is cut after its last line break, and what follows in the run is split as
    GPT-2's (its last character left to the next pre-token).
    """
    def kind(k: int, name: int):
        return ops.eq(kinds if k == 0 else ops.behind(kinds, k, -1), name)

    inside = ops.not_(stretch_start)  # i - 1 is in i's stretch
    before = [inside, ops.and_(inside, ops.behind(inside, 1, False))]
    prev = {name: ops.and_(inside, kind(1, name)) for name in (OTHER, LETTER, NUMBER, WHITESPACE, NEWLINE)}
    space_before = [ops.and_(before[k - 1], ops.eq(ops.behind(cps, k, -1), 0x20)) for k in (1, 2)]
    # an other character at i - 1 starts a pre-token unless an other character or a space is before it
    other_run_starts = ops.not_(ops.and_(before[1], ops.or_(kind(2, OTHER), space_before[1])))
    word = ops.or_(prev[NUMBER], prev[NEWLINE])
    letter = ops.and_(kind(0, LETTER), ops.or_(word, ops.and_(prev[OTHER], ops.not_(other_run_starts))))
    solid = ops.or_(prev[LETTER], prev[NUMBER])
    other = ops.and_(kind(0, OTHER), ops.or_(ops.or_(solid, prev[NEWLINE]),
                                            ops.and_(prev[WHITESPACE], ops.not_(space_before[0]))))
    newline = ops.and_(kind(0, NEWLINE), solid)
    # whitespace: the stretch of each character, the next character that is not whitespace (a line break ahead in
    # the run), the last one before i - 1 that is not a line break (the run follows an other character)
    stretch = ops.cumsum(stretch_start)
    ahead_at = ops.next_of(ops.not_(kind(0, WHITESPACE)))
    in_stretch = lambda at: ops.eq(ops.take(stretch, at, -1), stretch)  # noqa: E731
    break_ahead = ops.and_(ops.eq(ops.take(kinds, ahead_at, -1), NEWLINE), in_stretch(ahead_at))
    back_at = ops.behind(ops.prev_of(ops.not_(kind(0, NEWLINE))), 1, -1)
    after_other = ops.and_(ops.and_(prev[NEWLINE], ops.eq(ops.take(kinds, back_at, -1), OTHER)), in_stretch(back_at))
    next_kind = ops.ahead(kinds, 1, WHITESPACE)
    last_of_run = ops.and_(next_joined, ops.and_(ops.ne(next_kind, WHITESPACE), ops.ne(next_kind, NEWLINE)))
    whitespace = ops.and_(kind(0, WHITESPACE), ops.or_(
        ops.or_(ops.or_(solid, prev[OTHER]), ops.and_(prev[NEWLINE], ops.not_(break_ahead))),
        ops.or_(last_of_run, after_other)))
    starts = ops.or_(ops.or_(stretch_start, kind(0, NUMBER)), ops.or_(letter, other))
    return ops.or_(starts, ops.or_(newline, whitespace))


#: doubling levels that follow the kept matches from the first one (:func:`kept_chain`): exact for every batch of
#: fewer than 2**CHAIN_LEVELS characters (TensorFlow's int32 positions hold no more)
CHAIN_LEVELS = 31


def can_overlap(literals: list[str]) -> bool:
    """Return True when two matches of the literals can overlap (a proper suffix of one is a prefix of another, or
    one holds another): then the reference's leftmost-longest matching is not local."""
    for a in literals:
        for other in literals:
            if (other != a and other in a) or any(other.startswith(a[k:]) for k in range(1, len(a))):
                return True
    return False


def matched_literals(cps, row, literals: list[str], stages: list[list[int]], ops: Any = NumpyOps):
    """Return (1 + the index in ``literals`` of the literal the reference matches starting at each character, else 0;
    True at every character a kept match covers), every literal matched at once.

    Args:
        cps, row: the characters' code points and rows.
        literals: longest first, so that at a character the first literal that matches is the longest.
        stages: indices of ``literals``, matched one stage after the other: a later stage's match never reaches a
            character an earlier stage's match covers. Where a stage's matches can overlap (:func:`can_overlap`), it
            keeps them leftmost first, longest, none starting inside a kept one (:func:`kept_chain`).

    Only the characters that start some literal are compared: [P, width] windows of the text against the [S, width]
    literal table, then one candidate per character (its longest match), its length, and the spans kept matches cover
    (a running count of starts and ends), so that the graph's size does not grow with the literals.
    """
    if not literals:
        nothing = ops.ne(cps, cps)
        return ops.select(nothing, 1, 0), nothing
    width = max(map(len, literals))
    table = np.array([[ord(c) for c in literal] + [-1] * (width - len(literal)) for literal in literals], np.int64)
    at = ops.nonzero(ops.isin(cps, sorted({ord(literal[0]) for literal in literals})))
    matched = ops.matches(ops.window(cps, row, at, width, -2), table)  # [P, S]
    free_span = np.where(table >= 0, 0, -1)  # a stage's match: no character an earlier stage covers
    # a candidate is ranked S - s (the first literal: highest), 0 for none; its length and 1 + s by rank
    size = len(literals)
    length_of = np.array([0, *(len(literals[size - rank]) for rank in range(1, size + 1))], np.int64)
    index_of = np.array([0, *(size - rank + 1 for rank in range(1, size + 1))], np.int64)
    chosen, length = 0, 0  # the kept match at each position of ``at`` over the stages so far: 1 + its index, length
    for number, stage in enumerate(stages):
        candidates = matched
        if number:
            blocked = ops.spans(cps, at, length, 0, ops.ne(chosen, 0))
            candidates = ops.and_(matched, ops.matches(ops.window(ops.select(blocked, 1, 0), row, at, width, 0),
                                                       free_span))
        rank = ops.row_max(ops.select(candidates, [size - s if s in stage else 0 for s in range(size)], 0))
        here, kept = ops.gather(length_of, rank), ops.ne(rank, 0)
        if can_overlap([literals[s] for s in stage]):
            kept = kept_chain(cps, at, rank, here, ops)
        chosen = ops.select(kept, ops.gather(index_of, rank), chosen)
        length = ops.select(kept, here, length)
    return ops.scatter(cps, at, chosen), ops.spans(cps, at, length, 0, ops.ne(chosen, 0))


def kept_chain(cps, at, rank, here, ops: Any = NumpyOps):
    """Return True at the positions of ``at`` whose candidate (``rank`` not 0, ``here`` characters long) the reference
    keeps: the first candidate, then the first one at or after the end of each kept one (aho-corasick's leftmost-longest
    matches, which never overlap), across the rows at once (a match ends within its row).

    Each position of ``at`` steps to the candidate the reference would keep after it (the first at or after its end;
    itself where none is left); the candidates reached from the first position are the kept ones, found by doubling:
    ``CHAIN_LEVELS`` levels, each adding the positions reached in as many steps again and composing the step
    with itself (a fixed number of passes dropping the matches inside kept ones is exact only for short chains).
    """
    every = ops.nonzero(ops.eq(at, at))  # 0 .. P - 1
    candidate = ops.ne(rank, 0)
    starts_at = ops.next_of(ops.ne(ops.scatter(cps, at, ops.select(candidate, 1, 0)), 0))  # first candidate from i
    step = ops.take(ops.scatter(cps, at, every), ops.take(starts_at, ops.add(at, here), -1), -1)
    step = ops.select(ops.eq(step, -1), every, step)
    reached = ops.select(ops.eq(every, 0), 1, 0)
    for level in range(CHAIN_LEVELS):
        reached = ops.scatter_max(reached, step, reached)
        if level + 1 < CHAIN_LEVELS:
            step = ops.gather(step, step)
    return ops.and_(candidate, ops.ne(reached, 0))


def _byte_level(pre: dict[str, Any] | None) -> bool:
    """True for ``ByteLevel`` with GPT-2's regex and no prefix space, as transformers builds RoBERTa's."""
    return (bool(pre) and pre.get("type") == "ByteLevel" and pre.get("use_regex", True)
            and not pre.get("add_prefix_space", False))


@dataclass(frozen=True)
class BpeSpec(TokenizerSpec):
    """A byte-level BPE tokenizer (RoBERTa), as the reference runs it."""

    vocab: tuple[str, ...]  # the pieces in id order ("" where an id has none)
    merges: tuple[tuple[str, str], ...]
    framing: Framing
    #: special-token literal → (id, takes the whitespace before it), matched on the raw text, longest first
    specials: tuple[tuple[str, int, bool], ...]
    backend_json: str = field(default="", repr=False)
    rules: str = GPT2  # the pre-token rules (:data:`GPT2`, :data:`QWEN2`)
    #: the special-token literals the reference matches after normalizing (``normalized``), in a second stage
    normalized_specials: tuple[str, ...] = ()
    nfc: bool = False  # the reference normalizes to NFC first

    family = "bpe"

    @classmethod
    def read(cls, data: dict[str, Any], tokenizer: Any, transformer: TransformerConfig,
             problems: list[str]) -> "BpeSpec | None":
        where = f"tokenizer in {transformer.folder}"
        if data.get("normalizer") not in (None, {"type": "NFC"}):
            problems.append(f"{where}: normalizer {json.dumps(data['normalizer'])}; supported: none (RoBERTa's) or "
                            "NFC (ModernBERT's, Qwen2's)")
        rules = _pre_tokenizer_rules(data.get("pre_tokenizer"))
        if rules is None:
            problems.append(f"{where}: pre-tokenizer {json.dumps(data.get('pre_tokenizer'))}; supported: ByteLevel "
                            "with GPT-2's regex and add_prefix_space false (RoBERTa's, ModernBERT's), or Split with "
                            "Qwen2's regex (Isolated) then ByteLevel without regex (Qwen2's, Qwen3's)")
        model = data["model"]
        options = {"dropout": None, "continuing_subword_prefix": "", "end_of_word_suffix": "", "byte_fallback": False,
                   "ignore_merges": False}
        for key, expected in options.items():
            if (model.get(key) or expected) != expected:
                problems.append(f"{where}: BPE {key} {model.get(key)!r}; supported: {expected!r}")
        vocab: dict[str, int] = model["vocab"]
        problems.extend(nul_piece_problems(sorted(vocab, key=vocab.__getitem__), where))
        missing = [c for c in byte_alphabet() if c not in vocab]
        if missing:
            problems.append(f"{where}: the vocabulary lacks {len(missing)} of the 256 byte characters "
                            f"({''.join(missing[:8])}...): the reference drops those bytes; supported: byte-level "
                            "vocabularies with every byte")
        framing = read_framing(data.get("post_processor"), tokenizer, max_seq_length=transformer.max_seq_length,
                               where=where, problems=problems,
                               pair_truncation=transformer.pair_truncation,
                               specials=transformer.specials)
        specials, normalized = [], []
        for added in data.get("added_tokens", []):
            if added.get("single_word") or added.get("rstrip"):
                problems.append(f"{where}: added token {added['content']!r} with single_word or rstrip; supported: "
                                "tokens matched on the raw text, taking the whitespace before them or not (lstrip)")
            else:
                specials.append((added["content"], int(added["id"]), bool(added.get("lstrip"))))
                if added.get("normalized") and not added.get("special"):
                    normalized.append(added["content"])
        if problems:
            return None
        pieces = [""] * (max(vocab.values()) + 1)
        for piece, index in vocab.items():
            pieces[index] = piece
        merges = tuple(tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"])
        return cls(vocab=tuple(pieces), merges=merges, framing=framing,
                   specials=tuple(sorted(specials, key=lambda s: -len(s[0]))),
                   backend_json=tokenizer.backend_tokenizer.to_str(), rules=rules, normalized_specials=tuple(normalized),
                   nfc=data.get("normalizer") is not None)

    def describe(self) -> dict[str, Any]:
        """Return the settings recorded in the manifest."""
        return {**super().describe(), "model": "byte-level BPE", "vocab_size": len(self.vocab),
                "merges": len(self.merges), "normalizer": "NFC" if self.nfc else "none",
                "pre_tokenizer": ("ByteLevel (GPT-2's regex, no prefix space)" if self.rules == GPT2 else
                                  "Split (Qwen2's regex, isolated), ByteLevel (no regex, no prefix space)"),
                "special_tokens": [s for s, _, _ in self.specials],
                "lstrip": [s for s, _, lstrip in self.specials if lstrip]}

    sweep_why = ("SentencePiece's BPE (the kernels') merges the adjacent pair of best score whose concatenation is "
                 "a piece, HF's BPE the pair of best rank that is a merge: they part where a piece is reached two ways "
                 "(merges 'b c', 'a b', 'ab c': 'abc' is [a, bc] for HF, [abc] for SentencePiece), as in hand-edited "
                 "merges; trained merges reach each piece one way. Supported: merge lists where every piece's "
                 "text tokenizes the same in both")

    def kernel_decided(self) -> dict[str, tuple[str, list[str]]]:
        """NFC composition, swept on every target where the reference normalizes to NFC: the ONNX graph's NFC
        (:func:`graph_nfc`: each code point exact, sequences within a bounded reach; 8 of 38,244 texts differ on the
        tests' ModernBERT tokenizer); the SavedModel runs ICU's NFC (tensorflow-text's ``normalize_utf8``: 0)."""
        if not self.nfc:
            return {}
        from ...verify.sweeps import sequence_sweep

        why = ("NFC's canonical reordering and composition, which are not local: the ONNX graph decomposes each "
               "code point, reorders adjacent marks once and composes a starter with the next mark or the mark after "
               "a lower-class one, three passes (graph_nfc), so longer runs of marks out of order, or a mark "
               "composing past two others, are left otherwise than NFC leaves them (u with diaeresis and macron + "
               "U+031B: NFC gives U+01B0 U+0308 U+0304); the SavedModel runs ICU's NFC")
        sweep = sequence_sweep()
        texts = [text for name in ("base + combining mark", "base + two marks, both orders",
                                   next(name for name in sweep if name.startswith("pseudo-words")),
                                   "parity corpus in NFD") for text in sweep[name]]
        return {"nfc composition": (why, texts)}

    def piece_texts(self) -> list[str]:
        """Return the text of every piece and of every merge's concatenation, decoded from the byte alphabet (those
        that are not whole UTF-8 characters are left out: they are only ever inside a longer text)."""
        byte_of = {c: b for b, c in enumerate(byte_alphabet())}
        texts = []
        for piece in (*self.vocab, *(a + b for a, b in self.merges)):
            try:
                texts.append(bytes(byte_of[c] for c in piece).decode("utf-8"))
            except (KeyError, UnicodeDecodeError):
                continue
        return texts

    def piece(self, token_id: int) -> str:
        return self.vocab[token_id]

    def classes(self) -> np.ndarray:
        """Return every code point's pre-token class (probed from the reference: 8-15 s, cached)."""
        return _qwen2_classes(self.backend_json) if self.rules == QWEN2 else _classes(self.backend_json)

    def contractions(self) -> tuple[tuple[frozenset[int], ...], ...] | None:
        """Return the code points each contraction letter matches (Qwen2's, case-insensitive), None: the letter."""
        return _contraction_letters(self.backend_json) if self.rules == QWEN2 else None

    def special_marks(self, cps, row, ops: Any = NumpyOps):
        """Return (1 + the index in ``specials`` of the special token the reference matches starting at each
        character, else 0; True inside every match): the literals not ``normalized`` first (leftmost, longest),
        then the others where none of those is, as transformers splits the raw text then the normalized rest
        (:func:`matched_literals`)."""
        literals = [literal for literal, _, _ in self.specials]
        stages = [list(range(len(literals)))]
        if can_overlap(literals):
            stages = [[i for i, literal in enumerate(literals) if (literal in self.normalized_specials) == normalized]
                      for normalized in (False, True)]
        return matched_literals(cps, row, literals, [stage for stage in stages if stage], ops)

    def nfc_tables(self) -> tuple[TwoStageTable, np.ndarray, dict[int, int]]:
        """Return the graphs' NFC: (code point → row of the replacements, 0: kept), the replacements int64
        [K + 1, NFC_WIDTH + 1] (code points, then how many), {first * PAIR_KEY + second: composite}."""
        entry, rows, pairs, _ = _nfc_tables(self.backend_json)
        return TwoStageTable.from_dense(entry), rows, pairs

    def combining_classes(self) -> TwoStageTable:
        """Return every code point's canonical combining class (what the ONNX graph's NFC reorders by)."""
        return TwoStageTable.from_dense(_nfc_tables(self.backend_json)[3])

    def starts(self, cps, kinds, stretch_start, ops: Any = NumpyOps):
        """Return where the reference starts a pre-token (:func:`pretoken_starts` with this tokenizer's rules)."""
        return pretoken_starts(cps, kinds, stretch_start, ops, self.rules, self.contractions())

    def class_table(self) -> TwoStageTable:
        return TwoStageTable.from_dense(self.classes())

    def placeholders(self) -> dict[str, int]:
        """Return the private-use character standing for each special token → its id."""
        return placeholders(token_id for _, token_id, _ in self.specials)

    def ids(self) -> np.ndarray:
        """Return the reference id of each kernel id: the pieces', the kernel's unknown piece (no byte-alphabet
        word reaches it), then each placeholder's special token."""
        return np.array([*range(len(self.vocab)), 0, *self.placeholders().values()], np.int64)

    def model_proto(self) -> bytes:
        """Return the SentencePiece BPE model the kernels run over byte-alphabet words, no normalizer."""
        from sentencepiece import sentencepiece_model_pb2 as sp

        Piece = sp.ModelProto.SentencePiece
        model = sp.ModelProto()
        rank = {a + b: r for r, (a, b) in reversed(list(enumerate(self.merges)))}
        special_ids = {token_id for _, token_id, _ in self.specials}
        alphabet = set(byte_alphabet())
        for index, piece in enumerate(self.vocab):
            if index in special_ids or not piece or (piece not in rank and piece not in alphabet):
                # never made by a merge: the reference cannot produce it, the kernel must not
                model.pieces.add(piece=piece or f"<unused {index}>", score=0.0, type=Piece.CONTROL)
            else:
                model.pieces.add(piece=piece, score=-float(rank.get(piece, -1) + 1), type=Piece.NORMAL)
        unk = len(model.pieces)  # SentencePiece needs one
        model.pieces.add(piece="<kernel unk>", score=0.0, type=Piece.UNKNOWN)
        for placeholder in self.placeholders():
            model.pieces.add(piece=placeholder, score=0.0, type=Piece.USER_DEFINED)
        return kernel_model(model, sp.TrainerSpec.BPE, unk)
