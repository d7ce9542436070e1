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

#: pre-token classes of GPT-2's regex: other (``[^\s\p{L}\p{N}]``) first, the default
OTHER, LETTER, NUMBER, WHITESPACE = 0, 1, 2, 3
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


def pretoken_starts(cps, kinds, stretch_start, ops: Any = NumpyOps):
    """Return where GPT-2's regex starts a pre-token, as local rules on neighbouring characters.

    Args:
        cps, kinds: code points of the texts' stretches (text between special tokens) and their classes.
        stretch_start: True where a stretch starts.
        ops: the array operations (:class:`NumpyOps`; the TF and ONNX emitters pass theirs).

    The regex (``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``)
    as rules: a run of one class is one pre-token; a space (U+0020) before a letter, number or other
    character joins it; a whitespace run followed by something else in its stretch leaves its last
    character to the next pre-token; an apostrophe that starts a pre-token takes a contraction after
    it, and the character after the contraction starts the next.
    """
    joined = [ops.not_(ops.and_(stretch_start, ops.not_(stretch_start)))]  # [k]: characters i..i+k in one stretch
    for k in (1, 2, 3):
        joined.append(ops.and_(joined[-1], ops.ahead(ops.not_(stretch_start), k, False)))
    prev_kind, space = ops.behind(kinds, 1, -1), ops.eq(kinds, WHITESPACE)
    run_ends = ops.and_(joined[1], ops.ne(ops.ahead(kinds, 1, WHITESPACE), WHITESPACE))
    inside_run = ops.or_(ops.ne(prev_kind, WHITESPACE), run_ends)
    outside = ops.and_(ops.ne(ops.behind(cps, 1, -1), 0x20), ops.ne(prev_kind, kinds))
    starts = ops.or_(stretch_start, ops.where(space, inside_run, outside))
    apostrophe = ops.and_(ops.eq(cps, ord("'")), starts)
    result = starts
    for suffix in CONTRACTIONS:
        length = len(suffix) + 1
        found = ops.and_(apostrophe, joined[length - 1])
        for k, c in enumerate(suffix, start=1):
            found = ops.and_(found, ops.eq(ops.ahead(cps, k, 0), ord(c)))
        for k in range(1, length):
            result = ops.and_(result, ops.not_(ops.behind(found, k, False)))
        result = ops.or_(result, ops.behind(ops.and_(found, joined[length]), length, False))
    return result


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

    family = "bpe"

    @classmethod
    def read(cls, data: dict[str, Any], tokenizer: Any, transformer: TransformerConfig,
             problems: list[str]) -> "BpeSpec | None":
        where = f"tokenizer in {transformer.folder}"
        if data.get("normalizer") is not None:
            problems.append(f"{where}: normalizer {json.dumps(data['normalizer'])}; supported: none (RoBERTa's)")
        if not _byte_level(data.get("pre_tokenizer")):
            problems.append(f"{where}: pre-tokenizer {json.dumps(data.get('pre_tokenizer'))}; supported: ByteLevel "
                            "with GPT-2's regex and add_prefix_space false, as transformers builds RoBERTa's")
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
        specials = []
        for added in data.get("added_tokens", []):
            if added.get("single_word") or added.get("rstrip"):
                problems.append(f"{where}: added token {added['content']!r} with single_word or rstrip; supported: "
                                "tokens matched on the raw text, taking the whitespace before them or not (lstrip)")
            else:
                specials.append((added["content"], int(added["id"]), bool(added.get("lstrip"))))
        if problems:
            return None
        pieces = [""] * (max(vocab.values()) + 1)
        for piece, index in vocab.items():
            pieces[index] = piece
        merges = tuple(tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"])
        return cls(vocab=tuple(pieces), merges=merges, framing=framing,
                   specials=tuple(sorted(specials, key=lambda s: -len(s[0]))),
                   backend_json=tokenizer.backend_tokenizer.to_str())

    def describe(self) -> dict[str, Any]:
        """Return the settings recorded in the manifest."""
        return {**super().describe(), "model": "byte-level BPE", "vocab_size": len(self.vocab),
                "merges": len(self.merges), "normalizer": "none",
                "pre_tokenizer": "ByteLevel (GPT-2's regex, no prefix space)",
                "special_tokens": [s for s, _, _ in self.specials],
                "lstrip": [s for s, _, lstrip in self.specials if lstrip]}

    sweep_why = ("SentencePiece's BPE (the kernels') merges the adjacent pair of best score whose concatenation is "
                 "a piece, HF's BPE the pair of best rank that is a merge: they part where a piece is reached two ways "
                 "(merges 'b c', 'a b', 'ab c': 'abc' is [a, bc] for HF, [abc] for SentencePiece), as in hand-edited "
                 "merges; trained merges reach each piece one way. Supported: merge lists where every piece's "
                 "text tokenizes the same in both")

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
        """Return every code point's pre-token class (probed from the reference: about 8 s, cached)."""
        return _classes(self.backend_json)

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
