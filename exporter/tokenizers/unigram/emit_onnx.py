"""Emit a SentencePiece Unigram tokenizer as ONNX: text [N] → every piece's id and row (framed in ``framing_onnx``).

1. the shared string-op steps (``chars_onnx``): NUL and a text's own marks become ``STAND_IN`` (the
   kernels stop at NUL; the reference makes NUL one <unk>), special tokens become placeholders,
   every row ends with the sentinel;
2. the characters are normalized the way HF applies the character map (``unigram`` module
   docstring): grapheme clusters are found with two LabelEncoder classes and CumSum, a cluster under
   6 bytes whose shortest key prefix is in the map becomes that key's normalization, every other
   character goes through the per-character table (StringMapping);
3. the joined string is split into words on what ``WhitespaceSplit`` splits on; "▁" goes in front
   of each word (``Metaspace``);
4. onnxruntime-extensions' ``SentencepieceTokenizer`` runs Unigram over the words with the model of
   ``UnigramSpec.model_proto`` (no normalizer of its own); a Gather maps the placeholders' ids to
   the special tokens'.
"""
from __future__ import annotations

from onnx import TensorProto, helper

from ...graphs.onnx_builder import ML, GraphBuilder, ones_at
from ..shared.chars_onnx import (OnnxTokenizerRules, long_and_short, normalized_joined, sentencepiece_ids, string_mapping,
                         table, words_and_rows)
from ..shared.codepoints import DELETE_MARK, SENTINEL, regex_class, regex_literal
from .spec import CLUSTER_BYTES, METASPACE, STAND_IN, UnigramSpec
from .ties_onnx import redecided


def onnx_rules(spec: UnigramSpec) -> OnnxTokenizerRules:
    """Return the patterns and per-character table of the ONNX graph."""
    chars = spec.normalization().chars
    long_deleted, short_deleted = long_and_short(chars.deleted)
    mark = regex_literal(DELETE_MARK)
    return OnnxTokenizerRules(
        reserved=regex_class([(c, c) for c in spec.reserved()]), reserved_to=STAND_IN,
        nul_to=spec.nul_replacement(),
        table=table(chars, isolated=set(), deleted=short_deleted),
        deleted=f"{regex_class(long_deleted)}|{mark}" if long_deleted else mark,
        split=f"({regex_class(chars.whitespace)}+|{regex_literal(SENTINEL)})", keep=regex_literal(SENTINEL))


def _encoded(b: GraphBuilder, strings: str, keys: list[str], *, default: int = -1) -> str:
    """Return the index of each string in ``keys`` (``default`` when absent), int64."""
    return b.op("LabelEncoder", [strings], domain=ML, keys_strings=keys, values_int64s=list(range(len(keys))),
                default_int64=default)


def _in(b: GraphBuilder, strings: str, members) -> str:
    """Return 1 where a string is one of ``members`` (not empty), else 0 (int64)."""
    members = sorted(members)
    return b.op("LabelEncoder", [strings], domain=ML, keys_strings=members, values_int64s=[1] * len(members),
                default_int64=0)


def cluster_mapper(spec: UnigramSpec, rules: OnnxTokenizerRules):
    """Return the ``CharMapper`` that applies the character map per grapheme cluster, as HF does."""
    norm = spec.normalization()
    keys = sorted(norm.keys)
    if not norm.joins:  # no key spans characters
        return string_mapping(rules)

    def map_chars(b: GraphBuilder, chars: str, lengths: str) -> str:
        count = b.op("Shape", [chars])
        joins, breaks = _in(b, chars, norm.joins), _in(b, chars, norm.breaks)
        # a character joins the cluster before it unless it starts the text or follows a breaker
        breaks_before = b.op("Concat", [b.const([1]), b.op("Slice", [breaks, b.const([0]), b.const([-1])])], axis=0)
        breaks_before = b.op("Slice", [breaks_before, b.const([0]), count])
        starts = b.op("Sub", [b.const(1), b.op("Mul", [joins, b.op("Sub", [b.const(1), breaks_before])])])
        cluster = b.op("Sub", [b.op("CumSum", [starts, b.const(0)]), b.const(1)])
        n_clusters = b.op("Reshape", [b.op("ReduceSum", [starts], keepdims=0), b.const([1])])
        zeros = b.op("ConstantOfShape", [n_clusters], value=helper.make_tensor("zero", TensorProto.INT64, [1], [0]))
        size = b.op("ScatterElements", [zeros, cluster, lengths], reduction="add")
        members = ones_at(b, n_clusters, cluster, reduction="add")
        eligible = b.op("And", [b.op("GreaterOrEqual", [members, b.const(2)]),
                                b.op("Less", [size, b.const(CLUSTER_BYTES)])])
        padded_chars = b.op("Concat", [chars, b.const(["", ""], "nothing")], axis=0)
        after = [b.op("Slice", [padded_chars, b.const([k]), b.op("Add", [count, b.const([k])])]) for k in (1, 2)]
        two = b.op("StringConcat", [chars, after[0]])
        candidates = [chars, two, b.op("StringConcat", [two, after[1]])]
        in_cluster = b.op("Gather", [members, cluster])
        choice = b.const(-1)
        for width in (3, 2, 1):  # the shortest key wins: it is looked at last
            found = _encoded(b, candidates[width - 1], keys)
            usable = b.op("And", [b.op("GreaterOrEqual", [found, b.const(0)]),
                                  b.op("GreaterOrEqual", [in_cluster, b.const(width)])])
            choice = b.op("Where", [usable, found, choice])
        start_at = b.op("Reshape", [b.op("NonZero", [starts]), b.const([-1])])
        cluster_choice = b.op("Where", [eligible, b.op("Gather", [choice, start_at]), b.const(-1)])
        char_choice = b.op("Gather", [cluster_choice, cluster])
        replacement = b.op("Gather", [b.const([norm.keys[k] for k in keys] + [""], "normalized"),
                                      b.op("Where", [b.op("Less", [char_choice, b.const(0)]), b.const(len(keys)),
                                                     char_choice])])
        is_start = b.op("Cast", [starts], to=TensorProto.BOOL)
        in_key_cluster = b.op("GreaterOrEqual", [char_choice, b.const(0)])
        per_char = b.contrib("StringMapping", [chars], map=rules.table) if rules.table else chars
        return b.op("Where", [in_key_cluster, b.op("Where", [is_start, replacement, b.const("", "dropped")]),
                              per_char])

    return map_chars


def piece_ids(b: GraphBuilder, spec: UnigramSpec, text: str) -> tuple[str, str]:
    """Add the tokenizer to ``b`` reading the string tensor ``text``; return (ids [P], row of each [P])."""
    rules = onnx_rules(spec)
    specials = [(literal, mark) for (literal, _), mark in zip(spec.specials, spec.placeholders(), strict=True)]
    joined = normalized_joined(b, specials, rules, text, map_chars=cluster_mapper(spec, rules))
    words, word_row = words_and_rows(b, rules, joined)
    words = b.op("StringConcat", [b.const(METASPACE, "metaspace"), words])
    tables = spec.tie_tables()
    return sentencepiece_ids(b, spec.model_proto(), spec.ids(), words, word_row,
                             after=lambda b, ids, splits: redecided(b, tables, ids, splits))
