"""A SentencePiece Unigram tokenizer in TensorFlow ops that TFLite runs without Flex; framed in ``framing_tf``.

On code points (``chars_tf``), like the WordPiece emitter:

1. texts → code points; special-token literals → placeholders (matched on the raw text);
2. the character map, HF's way (``unigram`` module docstring): grapheme clusters from the
   join/break classes, a cluster under 6 bytes whose shortest key prefix is in the map becomes
   that key's normalization (keys of two and three characters are found with 2-D tables indexed
   by each character's rank among the keys' characters), every other code point goes through
   the per-character table; NUL and a text's own placeholder characters become ``STAND_IN``;
3. words: split on what ``WhitespaceSplit`` splits on, placeholders alone, "▁" in front of each;
4. ``FastWordpieceDetokenize`` spells each word as a string (one piece per character of the
   pieces' alphabet; a character in no piece is spelled ``STAND_IN``, which no piece holds
   either), and ``FastSentencepieceTokenize`` (tf-text, TFLite kernel) runs Unigram with the
   model of ``UnigramSpec.model_proto``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from ...errors import UnsupportedModelError
from ..shared.chars_tf import code_points, counts, expanded, lookup, prepended, shifted, specials
from ..shared.codepoints import CODE_POINTS, DELETED, TwoStageTable
from .spec import CLUSTER_BYTES, METASPACE, STAND_IN, UnigramSpec
from .ties_tf import TiesTF

#: bits of the class table (raw code points: JOINS, BREAKS; normalized ones: the rest); the letter above them
JOINS, BREAKS, WHITESPACE, ALONE = 1, 2, 4, 8
CLASS_BITS = 16
#: the speller's suffix indicator: a noncharacter, so that no letter's spelling collides with it
SPELL_SUFFIX = "\U0010FFFE"


def _tables(spec: UnigramSpec) -> dict[str, np.ndarray | list]:
    """Return every array the graph holds, from the reference's normalization (numpy)."""
    norm = spec.normalization()
    values = {ch: out for ch, out in norm.chars.mapped.items()}
    values.update({chr(cp): STAND_IN for cp in spec.reserved()}, **{"\x00": spec.nul_replacement()})
    values.update({k: v for k, v in norm.keys.items() if len(k) > 1})
    rows, lengths, row_of = _replacements(values)

    def entry_of(value: str) -> int:
        return row_of[value] if value else DELETED

    normalize = np.zeros(CODE_POINTS, np.int32)
    for first, last in norm.chars.deleted:
        normalize[first:last + 1] = DELETED
    for ch in [*norm.chars.mapped, chr(0), *map(chr, spec.reserved())]:
        normalize[ord(ch)] = entry_of(values[ch])
    alphabet = sorted({c for piece, _ in spec.pieces for c in piece} | {METASPACE, *spec.placeholders()})
    return {"normalize": TwoStageTable.from_dense(normalize), "rows": rows, "lengths": lengths,
            **_cluster_tables(norm.keys, entry_of), "classes": _class_table(spec, alphabet), "alphabet": alphabet}


def _replacements(values: dict[str, str]) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Return (rows of code points, their lengths, value → row) of every distinct non-empty replacement; row 0 unused."""
    distinct = sorted({v for v in values.values() if v})
    row_of = {v: i for i, v in enumerate(distinct, start=1)}
    rows = np.zeros((len(distinct) + 1, max(map(len, distinct))), np.int32)
    lengths = np.zeros(len(distinct) + 1, np.int32)
    for value, i in row_of.items():
        rows[i, :len(value)] = [ord(c) for c in value]
        lengths[i] = len(value)
    return rows, lengths, row_of


def _cluster_tables(keys: dict[str, str], entry_of: Callable[[str], int]) -> dict[str, Any]:
    """Return the two- and three-character keys of the character map as rank, pair, prefix and triple tables.

    Raises:
        UnsupportedModelError: more distinct later characters than the rank's 12 bits hold.
    """
    pairs = sorted(k for k in keys if len(k) == 2)
    triples = sorted(k for k in keys if len(k) == 3)
    firsts = sorted({k[0] for k in pairs + triples})
    seconds = sorted({c for k in pairs + triples for c in k[1:]})
    if len(seconds) >= 1 << 12:
        raise UnsupportedModelError([f"the character map's cluster keys use {len(seconds)} distinct later "
                                     f"characters; the TensorFlow tokenizer's table holds at most {(1 << 12) - 1}"])
    rank = np.zeros(CODE_POINTS, np.int32)  # first-character rank * 2**12 + later-character rank, 0: none
    for i, ch in enumerate(firsts, start=1):
        rank[ord(ch)] += i << 12
    for i, ch in enumerate(seconds, start=1):
        rank[ord(ch)] += i
    pair = np.zeros((len(firsts) + 1, len(seconds) + 1), np.int32)
    prefix = np.zeros_like(pair)  # (first, second) → row of ``triple``
    prefixes = sorted({k[:2] for k in triples})
    triple = np.zeros((len(prefixes) + 1, len(seconds) + 1), np.int32)
    first_of, second_of = {c: i for i, c in enumerate(firsts, 1)}, {c: i for i, c in enumerate(seconds, 1)}
    for key in pairs:
        pair[first_of[key[0]], second_of[key[1]]] = entry_of(keys[key])
    for i, key in enumerate(prefixes, start=1):
        prefix[first_of[key[0]], second_of[key[1]]] = i
    for key in triples:
        triple[prefixes.index(key[:2]) + 1, second_of[key[2]]] = entry_of(keys[key])
    return {"rank": TwoStageTable.from_dense(rank), "pair": pair, "prefix": prefix, "triple": triple}


def _class_table(spec: UnigramSpec, alphabet: list[str]) -> TwoStageTable:
    """Return each code point's class bits, its letter of ``alphabet`` above them."""
    norm = spec.normalization()
    classes = np.zeros(CODE_POINTS, np.int32)
    classes[[ord(c) for c in norm.joins]] |= JOINS
    classes[[ord(c) for c in norm.breaks] + [0, *spec.reserved()]] |= BREAKS  # NUL and the marks: never keys
    for first, last in norm.chars.whitespace:
        classes[first:last + 1] |= WHITESPACE
    classes[[ord(c) for c in spec.placeholders()]] |= ALONE
    classes[[ord(c) for c in alphabet]] += np.arange(1, len(alphabet) + 1, dtype=np.int32) * CLASS_BITS
    return TwoStageTable.from_dense(classes)


def _has(kind: tf.Tensor, bit: int) -> tf.Tensor:
    """Return whether ``bit`` is set in ``kind`` (arithmetic: TFLite has no BitwiseAnd kernel)."""
    return (kind // bit) % 2 > 0


def _utf8_length(cps: tf.Tensor) -> tf.Tensor:
    return 1 + tf.cast(cps >= 0x80, tf.int32) + tf.cast(cps >= 0x800, tf.int32) + tf.cast(cps >= 0x10000, tf.int32)


class UnigramTokenizerTF(tf.Module):
    """``token_ids(text: tf.string [N], prompt) -> ragged int32 [N, None]``: the reference's piece ids, unframed."""

    def __init__(self, spec: UnigramSpec, name: str = "unigram_tokenizer"):
        super().__init__(name=name)
        tables = _tables(spec)
        self._norm = [tf.constant(tables["normalize"].blocks), tf.constant(tables["normalize"].values)]
        self._rank = [tf.constant(tables["rank"].blocks), tf.constant(tables["rank"].values)]
        self._classes = [tf.constant(tables["classes"].blocks), tf.constant(tables["classes"].values)]
        self._rows, self._lengths = tf.constant(tables["rows"]), tf.constant(tables["lengths"])
        self._width = int(tables["rows"].shape[1])
        self._pair, self._prefix, self._triple = (tf.constant(tables[k]) for k in ("pair", "prefix", "triple"))
        self._specials = [(tuple(map(ord, literal)), ord(mark))
                          for (literal, _), mark in zip(spec.specials, spec.placeholders(), strict=True)]
        spelling = [STAND_IN, *tables["alphabet"]]
        self._metaspace = tables["alphabet"].index(METASPACE) + 1
        self._speller = tf_text.FastWordpieceTokenizer(
            vocab=[piece for letter in spelling for piece in (letter, SPELL_SUFFIX + letter)] + ["[UNK]"],
            suffix_indicator=SPELL_SUFFIX, unknown_token="[UNK]", no_pretokenization=True,
            support_detokenization=True)
        self._unigram = tf_text.FastSentencepieceTokenizer(spec.model_proto())
        self._ties = TiesTF(spec.tie_tables())
        self._ids = tf.constant(spec.ids().astype(np.int32))

    def _cluster_entries(self, cps: tf.Tensor, row: tf.Tensor, entry: tf.Tensor, alone: tf.Tensor) -> tf.Tensor:
        """Return ``entry`` with HF's per-cluster rule applied (``alone``: code points no cluster may join)."""
        kind = lookup(*self._classes, cps) % CLASS_BITS
        breaks = _has(kind, BREAKS) | alone
        breaks_before = tf.concat([[True], breaks[:-1]], 0) | tf.not_equal(row, tf.concat([[-1], row[:-1]], 0))
        starts = tf.logical_not(_has(kind, JOINS)) | breaks_before | alone
        cluster = tf.cumsum(tf.cast(starts, tf.int32)) - 1
        n_clusters = tf.reduce_sum(tf.cast(starts, tf.int32))
        size = tf.math.unsorted_segment_sum(_utf8_length(cps), cluster, n_clusters)
        members = counts(cluster, n_clusters)
        rank = lookup(*self._rank, cps)
        first, later = rank // 4096, rank % 4096
        second, third = shifted(later, 1, 0), shifted(later, 2, 0)
        two = tf.gather_nd(self._pair, tf.stack([first, second], 1))
        three = tf.gather_nd(self._triple, tf.stack([tf.gather_nd(self._prefix, tf.stack([first, second], 1)),
                                                     third], 1))
        in_cluster = tf.gather(members, cluster)
        choice = tf.where((three != 0) & (in_cluster >= 3), three, 0)
        choice = tf.where((two != 0) & (in_cluster >= 2), two, choice)
        choice = tf.where(entry != 0, entry, choice)  # the shortest key wins
        eligible = (members >= 2) & (size < CLUSTER_BYTES)
        cluster_choice = tf.where(eligible, tf.gather(choice, tf.where(starts)[:, 0]), 0)
        mine = tf.gather(cluster_choice, cluster)
        return tf.where(mine != 0, tf.where(starts, mine, DELETED), entry)

    def words(self, text: tf.Tensor, prompt: str = "") -> tuple[tf.Tensor, tf.Tensor]:
        """Steps 1-3: return (each word as a string, "▁" first [W], row of each word [W])."""
        cps, row = code_points(text, prompt)
        mark, inside = specials(cps, row, self._specials)
        entry = lookup(*self._norm, cps)
        entry = self._cluster_entries(cps, row, entry, inside | (mark > 0))
        cps, row = expanded(entry, cps, row, mark, inside, self._rows, self._lengths, self._width)
        value = lookup(*self._classes, cps)
        kind, letter = value % CLASS_BITS, value // CLASS_BITS
        space = _has(kind, WHITESPACE)
        alone = _has(kind, ALONE)
        before_space = tf.concat([[True], space[:-1]], 0)
        before_alone = tf.concat([[False], alone[:-1]], 0)
        new_row = tf.not_equal(row, tf.concat([[-1], row[:-1]], 0))
        starts = alone | before_space | before_alone | new_row
        kept = tf.where(tf.logical_not(space))[:, 0]
        letter, starts, row = tf.gather(letter, kept), tf.gather(starts, kept), tf.gather(row, kept)
        word = tf.cumsum(tf.cast(starts, tf.int32)) - 1
        n_words = tf.reduce_sum(tf.cast(starts, tf.int32))
        letter_splits = tf.concat([[0], tf.cumsum(counts(word, n_words))], axis=0)
        letter, letter_splits = prepended(letter, letter_splits, [self._metaspace])
        first_of_word = tf.scatter_nd(letter_splits[:-1, None], tf.ones([n_words], tf.int32), tf.shape(letter))
        spelled = letter * 2 + 1 - tf.minimum(first_of_word, 1)
        words = self._speller.detokenize(
            tf.RaggedTensor.from_row_splits(spelled, tf.cast(letter_splits, tf.int64), validate=False))
        return words, tf.gather(row, tf.where(starts)[:, 0])

    def token_ids(self, text: tf.Tensor, prompt: str = "") -> tf.RaggedTensor:
        """Steps 1-4: return the reference's piece ids of each ``prompt`` + text, unframed: ragged int32 [N, None]."""
        words, word_row = self.words(text, prompt)
        pieces = self._ties.redecided(self._unigram.tokenize(words))  # [words, pieces]
        word_splits = tf.concat([[0], tf.cumsum(counts(word_row, tf.shape(text)[0]))], axis=0)
        return tf.RaggedTensor.from_row_splits(tf.gather(self._ids, pieces.flat_values),
                                               tf.gather(pieces.row_splits, word_splits), validate=False)
