"""Emit a WordPiece tokenizer as ONNX: text [N] → every piece's id and row (framed in ``shared.framing_onnx``).

Why not the stock ``BertTokenizer`` op: it reads two texts as a sentence pair and its
normalization is not HF's (with strip_accents=1 it tokenized 10,138 of the 194,528 code points
U+0020..U+2FFFF differently from all-MiniLM-L6-v2's reference, each taken as a text of its own). Here the reference's own per-code-point behaviour
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

Steps 1-3 are the shared string-op pieces of ``chars_onnx``. The graph needs opset 20
(StringSplit, StringConcat): see ``chars_onnx.nul_free_pieces``.
"""
from __future__ import annotations

import json

from ...errors import UnsupportedModelError
from ...graphs.onnx_builder import ML, GraphBuilder, ones_at
from ..shared.chars_onnx import OnnxTokenizerRules, long_and_short, normalized_joined, padded, table, words_and_rows
from ..shared.codepoints import DELETE_MARK, SENTINEL, CharClasses, regex_class, regex_literal, without
from .spec import WordPieceSpec

UNKNOWN_MARK = "\U0010FFFC"  # what the ONNX WordPiece op emits for a failed word; never a vocab entry


def marks_kept(classes: CharClasses, marks: set[int]) -> list[str]:
    """Return the problem of a tokenizer that keeps the private-use marks the graphs use (none when it deletes them).

    The graphs remove their marks from the input first, which is right only if the reference deletes
    them too (BertNormalizer's clean_text).
    """
    kept = [f"U+{cp:04X}" for cp in sorted(marks) if not any(a <= cp <= b for a, b in classes.deleted)]
    return [f"tokenizer keeps private-use characters {kept} (its normalizer has clean_text off); "
            "supported: BertNormalizer with clean_text=True"] if kept else []


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
    long_deleted, short_deleted = long_and_short(without(classes.deleted, marks))
    long_isolated, short_isolated = long_and_short(classes.isolated)
    sentinel, mark = regex_literal(SENTINEL), regex_literal(DELETE_MARK)
    isolated = f"{regex_class(long_isolated)}|" if long_isolated else ""
    return OnnxTokenizerRules(
        reserved=regex_class([(c, c) for c in sorted(marks)]),
        table=table(classes, isolated=set(short_isolated), deleted=short_deleted),
        deleted=f"{regex_class(long_deleted)}|{mark}" if long_deleted else mark,
        split=f"({regex_class(classes.whitespace)}+|{isolated}{sentinel})",
        keep=f"{isolated}{sentinel}",
        normalized_specials=tuple(
            (regex_literal(padded(literal, set(short_isolated))), f" {placeholder} ") for (literal, _), placeholder
            in zip(spec.normalized_specials, list(spec.placeholders())[len(spec.specials):], strict=True)),
    )


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
    # the raw specials' placeholders come first; the normalized specials' follow (onnx_rules matches those)
    specials = [(literal, mark) for (literal, _), mark in zip(spec.specials, spec.placeholders(), strict=False)]
    joined = normalized_joined(b, specials, rules, text)
    words, word_row = words_and_rows(b, rules, joined)
    return _piece_ids(b, spec, words, word_row)
