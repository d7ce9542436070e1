"""SentencePiece Unigram tokenizers (XLM-RoBERTa: paraphrase-multilingual-*, multilingual-e5): read from the reference.

The reference is transformers' rebuilt backend (not the folder's tokenizer.json): special tokens
matched on the raw text, the ``Precompiled`` normalizer (SentencePiece's character map), then
``WhitespaceSplit`` and ``Metaspace`` (every word gets "▁" in front), then Unigram over the pieces.

The graphs reproduce it in three parts:

* **normalization** in graph ops, from :class:`Normalization` (the character map applied HF's
  way: per grapheme cluster, see below), so that the kernel normalizes nothing;
* **words**: split on what ``WhitespaceSplit`` splits on after normalizing, "▁" put in front;
* **Unigram** in the kernels (onnxruntime-extensions' ``SentencepieceTokenizer``, tensorflow-text's
  ``FastSentencepieceTokenizer``) over a SentencePiece model built here from the reference's
  pieces and scores (:meth:`UnigramSpec.model_proto`): pieces in the reference's order, so the ids
  are the reference's; an identity normalizer; each special token as a user-defined piece "▁" +
  its placeholder.

How HF applies the character map (``tokenizers``' ``Precompiled``): for each extended grapheme
cluster shorter than 6 UTF-8 bytes, the **shortest** map key that is a prefix of the cluster
replaces the whole cluster (what follows the key is dropped: NFD "ế" becomes "ê"); any other
cluster is mapped character by character. SentencePiece itself takes the longest key at each
position, so the kernels' own normalization differs on combining marks. The graphs find the
clusters with two classes probed from the reference (characters that join the cluster before
them, characters after which nothing joins), then look up one-, two- and three-character keys.
"""
from __future__ import annotations

import base64
import functools
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import UnsupportedModelError
from ...modules.transformer import TransformerConfig
from ...progress import note
from ..shared.codepoints import DELETE_MARK, SENTINEL, SURROGATES, CharClasses, code_point_ranges, placeholders
from ..shared.family import Framing, TokenizerSpec, normalizer_steps, nul_piece_problems, read_framing
from ..shared.sentencepiece import kernel_model
from .ties import TieTables, tie_tables

#: the cluster length (UTF-8 bytes) from which HF maps character by character
CLUSTER_BYTES = 6
METASPACE = "\u2581"
#: stands for NUL and for the graphs' own marks found in a text: the reference keeps NUL, which no
#: piece contains (one <unk>, fused with its neighbours); this character is in no piece either
STAND_IN = "\U000F0FFF"
SUPPORTED_NORMALIZERS = "Precompiled, alone or followed by Replace(' {2,}', ' ')"


@dataclass(frozen=True)
class Normalization:
    """The reference's normalization, as the graphs apply it."""

    chars: CharClasses  # every code point alone: deleted / mapped; ``whitespace``: what WhitespaceSplit splits on
    keys: dict[str, str]  # character-map keys of 1-3 characters under CLUSTER_BYTES bytes → their normalization
    joins: frozenset[str]  # characters that join the grapheme cluster before them
    breaks: frozenset[str]  # characters after which no character joins (controls)


def utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def charsmap_keys(charsmap: bytes, max_bytes: int = CLUSTER_BYTES - 1) -> dict[str, str]:
    """Return every key of a SentencePiece precompiled character map up to ``max_bytes`` → its normalization.

    The map is a darts-clone double-array trie (a uint32 size, the units, then the NUL-ended
    normalized strings); walked breadth-first, all 255 labels of a level at once.
    """
    size = struct.unpack("<I", charsmap[:4])[0]
    units = np.frombuffer(charsmap[4:4 + size], dtype="<u4").astype(np.int64)
    strings = charsmap[4 + size:]
    offset = lambda unit: (unit >> 10) << ((unit & (1 << 9)) >> 6)  # noqa: E731
    labels = np.arange(1, 256)
    positions, prefixes = np.array([offset(units[0])]), [b""]
    found: dict[bytes, bytes] = {}
    for _ in range(max_bytes):
        child = positions[:, None] ^ labels[None, :]
        inside = child < len(units)
        label = np.where(inside, units[np.minimum(child, len(units) - 1)] & (0x80000000 | 0xFF), -1)
        node, column = np.nonzero(label == labels[None, :])
        unit = units[child[node, column]]
        positions = child[node, column] ^ offset(unit)
        prefixes = [prefixes[n] + bytes([labels[c]]) for n, c in zip(node, column, strict=True)]
        for key, position, leaf in zip(prefixes, positions, (unit >> 8) & 1, strict=True):
            if leaf:
                start = int(units[position] & 0x7FFFFFFF)
                found[key] = strings[start:strings.index(b"\0", start)]
    return {k.decode("utf-8"): v.decode("utf-8") for k, v in found.items()}


@functools.lru_cache(maxsize=2)
def _normalization(backend_json: str, charsmap: bytes) -> Normalization:
    from tokenizers import Tokenizer

    note("probing the reference's normalizer with every code point (about 8 s)")
    backend = Tokenizer.from_str(backend_json)
    normalize, pre_tokenize = backend.normalizer.normalize_str, backend.pre_tokenizer.pre_tokenize_str
    deleted, mapped, whitespace = [], {}, []
    for cp in range(0x110000):
        if cp in SURROGATES:
            continue
        ch = chr(cp)
        out = normalize(ch)
        if out == "":
            deleted.append(cp)
        elif out != ch:
            mapped[ch] = out
        if len(pre_tokenize(f"a{ch}a")) == 2:  # a normalized character WhitespaceSplit (or Metaspace) splits on
            whitespace.append(cp)
    keys = {k: v for k, v in charsmap_keys(charsmap).items() if len(k) <= 3} if charsmap else {}
    joins, breaks = _cluster_classes(normalize, keys)
    return Normalization(chars=CharClasses(deleted=code_point_ranges(deleted), mapped=mapped, isolated=(),
                                           whitespace=code_point_ranges(whitespace)),
                         keys=keys, joins=frozenset(joins), breaks=frozenset(breaks))


def _cluster_classes(normalize, keys: dict[str, str]) -> tuple[set[str], set[str]]:
    """Return (characters that join the cluster before them, characters after which none joins), probed.

    The oracle: after a 3-byte two-character key (else the 2-byte key below), a 2-byte character is
    dropped exactly when it joins the cluster (under 6 bytes: the whole cluster is mapped by its
    shortest key); after a 2-byte one-character key the same for 3-byte characters. Longer ones never
    make a cluster under 6 bytes.

    Raises:
        UnsupportedModelError: the map has multi-character keys but none the probes need.
    """
    if not keys:
        return set(), set()  # an empty map: nothing to apply per cluster
    single = next((k for k, v in keys.items() if len(k) == 1 and utf8_length(k) == 2 and normalize(k + "\u0301") == v),
                  None)
    if single is None:
        raise UnsupportedModelError(["the tokenizer's precompiled character map has no key the exporter can probe "
                                     "grapheme clusters with (a 2-byte character mapped as one cluster with a "
                                     "combining mark); supported: SentencePiece's nmt_nfkc-style maps"])
    pair = next((k for k, v in keys.items() if len(k) == 2 and utf8_length(k) == 3 and normalize(k) == v), single)
    joins = {chr(cp) for cp in range(0x80, 0x800) if normalize(pair + chr(cp)) == keys[pair]}
    joins |= {chr(cp) for cp in range(0x800, 0x10000) if cp not in SURROGATES
              and normalize(single + chr(cp)) == keys[single]}
    breaks = {k for k, v in keys.items() if len(k) == 1 and utf8_length(k) <= 3 and normalize(k + "\u0301") != v}
    return joins, breaks


def _collapses_spaces(step: dict[str, Any]) -> bool:
    """True for Replace(' {2,}', ' '), which changes nothing once WhitespaceSplit has run."""
    return (step.get("type") == "Replace" and step.get("pattern") in ({"Regex": " {2,}"}, {"String": "  "})
            and step.get("content") == " ")


def _is_metaspace_words(pre: dict[str, Any] | None) -> bool:
    """True for WhitespaceSplit then Metaspace("▁", prepended always), as transformers builds XLM-R's."""
    if not pre or pre.get("type") != "Sequence":
        return False
    steps = pre.get("pretokenizers", [])
    return (len(steps) == 2 and steps[0].get("type") == "WhitespaceSplit" and steps[1].get("type") == "Metaspace"
            and steps[1].get("replacement") == METASPACE and steps[1].get("prepend_scheme", "always") == "always")


@dataclass(frozen=True)
class UnigramSpec(TokenizerSpec):
    """A SentencePiece Unigram tokenizer (XLM-RoBERTa), as the reference runs it."""

    pieces: tuple[tuple[str, float], ...]
    unk_id: int
    framing: Framing
    #: special-token literal → id, matched on the raw text, longest first
    specials: tuple[tuple[str, int], ...]
    charsmap: bytes = field(repr=False, default=b"")
    backend_json: str = field(default="", repr=False)

    family = "unigram"

    @classmethod
    def read(cls, data: dict[str, Any], tokenizer: Any, transformer: TransformerConfig,
             problems: list[str]) -> "UnigramSpec | None":
        where = f"tokenizer in {transformer.folder}"
        steps = normalizer_steps(data.get("normalizer"))
        if not steps or steps[0].get("type") != "Precompiled" or not all(map(_collapses_spaces, steps[1:])):
            problems.append(f"{where}: normalizer {[s.get('type') for s in steps]}; supported: {SUPPORTED_NORMALIZERS}")
        if not _is_metaspace_words(data.get("pre_tokenizer")):
            problems.append(f"{where}: pre-tokenizer {json.dumps(data.get('pre_tokenizer'))}; supported: "
                            "WhitespaceSplit then Metaspace('▁', prepend_scheme 'always'), as transformers builds "
                            "XLM-RoBERTa's")
        model = data["model"]
        problems.extend(nul_piece_problems([piece for piece, _ in model["vocab"]], where))
        if model.get("byte_fallback"):
            problems.append(f"{where}: Unigram with byte_fallback; supported: without (XLM-RoBERTa's)")
        framing = read_framing(data.get("post_processor"), tokenizer, max_seq_length=transformer.max_seq_length,
                               where=where, problems=problems,
                               pair_truncation=transformer.pair_truncation,
                               specials=transformer.specials)
        specials = []
        for added in data.get("added_tokens", []):
            if added.get("normalized") or added.get("single_word"):
                problems.append(f"{where}: added token {added['content']!r} matched after normalizing or as a single "
                                "word; supported: special tokens matched on the raw text")
            else:
                specials.append((added["content"], int(added["id"])))
        if problems:
            return None
        return cls(pieces=tuple((p, float(s)) for p, s in model["vocab"]), unk_id=int(model["unk_id"]),
                   framing=framing, specials=tuple(sorted(specials, key=lambda s: -len(s[0]))),
                   charsmap=base64.b64decode(steps[0]["precompiled_charsmap"]),
                   backend_json=tokenizer.backend_tokenizer.to_str())

    def describe(self) -> dict[str, Any]:
        """Return the settings recorded in the manifest."""
        return {**super().describe(), "model": "SentencePiece Unigram", "vocab_size": len(self.pieces),
                "unk_id": self.unk_id, "normalizer": "precompiled character map, per grapheme cluster as HF applies it",
                "character_map": self._character_map_counts(),
                "pre_tokenizer": "WhitespaceSplit, Metaspace('▁')",
                "special_tokens": [s for s, _ in self.specials]}

    def kernel_decided(self) -> dict[str, tuple[str, list[str]]]:
        """Unigram ties, swept on every target: 0 expected. Segmentations of equal exact score (the same pieces in
        another order: runs of one repeated string) are decided by rounding: the reference sums float64 scores
        in path order and keeps the first best start (strictly greater wins), the kernels sum float32 and keep
        others (before the step: 114/12,000 and 3,815/19,456 on onnx, 36 and 2,295 on savedmodel and tflite). No
        table of piece scores can steer the kernels (every order of the same pieces has the same exact sum
        under any table), so every graph re-decides each word's runs of commuting pieces after the kernel, the
        reference's way (``ties``: float64 in ONNX, float64 addition emulated in int64 ops for TensorFlow and
        TFLite). The classes stay swept so that the manifest shows the 0 (docs/tokenizers.md)."""
        from ...verify.sweeps import REPEATS, sequence_sweep, vocabulary_runs

        why = ("segmentations of equal exact score (runs of one repeated string: the same pieces in another "
               "order) that the kernel's float32 sums decide otherwise than the reference's float64 sums; the "
               "graph re-decides them after the kernel, in float64 (0 expected)")
        return {"unigram ties": (why, sequence_sweep()[REPEATS]),
                "unigram ties, vocabulary runs": (why, vocabulary_runs(piece for piece, _ in self.pieces))}

    sweep_words = True  # WhitespaceSplit / BertPreTokenizer: each word alone

    def piece_texts(self) -> list[str]:
        """Return every piece's text: "▁" as the space it stands for."""
        return [piece.replace(METASPACE, " ") for piece, _ in self.pieces]

    def piece(self, token_id: int) -> str:
        return self.pieces[token_id][0]

    def normalization(self) -> Normalization:
        """Return the reference's normalization as the graphs apply it (about 8 s, cached)."""
        return _normalization(self.backend_json, self.charsmap)

    def _character_map_counts(self) -> dict[str, int]:
        norm = self.normalization()
        return {"single_characters_changed": len(norm.chars.mapped) + sum(b - a + 1 for a, b in norm.chars.deleted),
                "cluster_keys": sum(len(k) > 1 for k in norm.keys), "joining_characters": len(norm.joins),
                "breaking_characters": len(norm.breaks)}

    def nul_replacement(self) -> str:
        """Return what the graphs put for NUL, which the kernels cannot read: the reference's own mapping of it,
        else ``STAND_IN`` (the reference keeps NUL, a character no piece holds)."""
        chars = self.normalization().chars
        if any(a == 0 for a, _ in chars.deleted):
            return ""
        return chars.mapped.get("\x00", STAND_IN)

    def placeholders(self) -> dict[str, int]:
        """Return the private-use character standing for each special token → its id."""
        return placeholders(token_id for _, token_id in self.specials)

    def reserved(self) -> list[int]:
        """Return the code points the graphs use as marks (a text's own become STAND_IN first)."""
        return sorted({ord(SENTINEL), ord(DELETE_MARK), *map(ord, self.placeholders())})

    def ids(self) -> np.ndarray:
        """Return the reference id of each kernel id: the pieces', then each placeholder's special token."""
        return np.array([*range(len(self.pieces)), *self.placeholders().values()], np.int64)

    def tie_tables(self) -> TieTables:
        """Return the tables of the step after the kernel that orders runs of commuting pieces (``ties``)."""
        return tie_tables(self.pieces, self.unk_id, len(self.placeholders()))

    def model_proto(self) -> bytes:
        """Return the SentencePiece model the kernels run: the reference's pieces and scores, no normalizer.

        Special tokens are user-defined pieces "▁" + placeholder (the graphs put "▁" before every
        word), so that one placeholder word gives one id.
        """
        from sentencepiece import sentencepiece_model_pb2 as sp

        Piece = sp.ModelProto.SentencePiece
        model = sp.ModelProto()
        special_ids = {token_id for _, token_id in self.specials}
        for index, (piece, score) in enumerate(self.pieces):
            kind = Piece.UNKNOWN if index == self.unk_id else Piece.CONTROL if index in special_ids else Piece.NORMAL
            model.pieces.add(piece=piece, score=score, type=kind)
        for placeholder in self.placeholders():
            model.pieces.add(piece=METASPACE + placeholder, score=0.0, type=Piece.USER_DEFINED)
        return kernel_model(model, sp.TrainerSpec.UNIGRAM, self.unk_id)
