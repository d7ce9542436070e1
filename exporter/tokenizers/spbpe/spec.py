"""SentencePiece BPE with byte fallback (Gemma: EmbeddingGemma-300m): read from the reference.

The reference is transformers' ``GemmaTokenizer`` (rebuilt from the folder's vocabulary and merges):
added tokens matched on the raw text (leftmost, longest), the ``Replace(" ", "▁")`` normalizer, a
``Split(" ")`` pre-tokenizer that finds nothing to split (the normalizer has replaced every space
before it runs), so each stretch of text between added tokens is one word, then BPE over it with
the merges in rank order; a character no piece holds becomes its UTF-8 bytes' pieces ``<0x00>`` ..
``<0xFF>`` (byte fallback). That is a SentencePiece BPE model, which is what Gemma's was: the
kernels run it natively, no pre-tokenizer tables (unlike the byte-level BPE family, whose GPT-2
regex the graphs rebuild) and no normalization beyond the space.

The graphs: texts split on NUL (the extensions' kernels read a string up to its first NUL; NUL is
in no piece, so the reference's ``<0x00>`` stands between the parts), spaces replaced by "▁", and
the SentencePiece kernel (onnxruntime-extensions' ``SentencepieceTokenizer``, tensorflow-text's
``SentencepieceTokenizer``) over the model of :meth:`SpBpeSpec.model_proto`: the reference's
pieces in id order, so kernel ids are reference ids; a piece made by merge r scored -(r + 1);
multi-character pieces no merge makes never matched; ``<0xXX>`` as BYTE pieces with
``byte_fallback``; every added token a user-defined piece, which SentencePiece matches leftmost
and longest before BPE, as the reference matches added tokens.

SentencePiece merges the adjacent pair of best score whose concatenation is a piece; HF's BPE the
pair of best rank that is a merge. transformers converts Gemma's model ranking every split of a
piece by that piece's score, so the two agree; the vocabulary self-sweep and the parity sweeps
measure it for every export.

TFLite: tensorflow-text's only TFLite SentencePiece kernel (``FastSentencepieceTokenizer``) runs
Unigram, so ``tflite`` is refused.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...modules.transformer import TransformerConfig
from ..shared.family import Framing, TokenizerSpec, normalizer_steps, nul_piece_problems, read_framing
from ..shared.sentencepiece import kernel_model

METASPACE = "\u2581"
BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")
TFLITE_REFUSAL = ("tensorflow-text's only TFLite SentencePiece kernel (FastSentencepieceTokenizer) runs Unigram: "
                  "it has no BPE and no byte fallback, and TFLite has no other SentencePiece kernel; export the "
                  "other targets (--targets onnx,savedmodel,triton,tfserving)")


def byte_pieces() -> list[str]:
    """Return the byte-fallback pieces ``<0x00>`` .. ``<0xFF>``, in byte order."""
    return [f"<0x{value:02X}>" for value in range(256)]


def missing_byte_pieces(vocab: Any) -> list[str]:
    """Return the byte pieces ``vocab`` lacks (transformers' conversion of older Gemma put "\\t" in <0x09>'s place)."""
    present = set(vocab)
    return [p for p in byte_pieces() if p not in present]


def claims(data: dict[str, Any]) -> bool:
    """True for a BPE tokenizer JSON with byte fallback (this family's; byte-level BPE has none)."""
    return bool(data.get("model", {}).get("byte_fallback"))


def _split_on_space(pre: dict[str, Any] | None) -> bool:
    """True for no pre-tokenizer or a ``Split`` on " " (Gemma's): after the normalizer there is no space to split."""
    if pre is None:
        return True
    return (pre.get("type") == "Split" and pre.get("pattern") == {"String": " "} and not pre.get("invert"))


@dataclass(frozen=True)
class SpBpeSpec(TokenizerSpec):
    """A SentencePiece BPE tokenizer with byte fallback (Gemma), as the reference runs it."""

    vocab: tuple[str, ...]  # the pieces in id order ("" where an id has none)
    merges: tuple[tuple[str, str], ...]
    framing: Framing
    added: tuple[tuple[str, int], ...]  # added token literal → id, matched on the raw text
    unk_id: int
    backend_json: str = field(default="", repr=False)

    family = "spbpe"

    @classmethod
    def read(cls, data: dict[str, Any], tokenizer: Any, transformer: TransformerConfig,
             problems: list[str]) -> "SpBpeSpec | None":
        where = f"tokenizer in {transformer.folder}"
        steps = normalizer_steps(data.get("normalizer"))
        if steps != [{"type": "Replace", "pattern": {"String": " "}, "content": METASPACE}]:
            problems.append(f"{where}: normalizer {json.dumps(data.get('normalizer'))}; supported: Replace(' ', "
                            "'▁') alone, as Gemma's")
        if not _split_on_space(data.get("pre_tokenizer")):
            problems.append(f"{where}: pre-tokenizer {json.dumps(data.get('pre_tokenizer'))}; supported: none, or "
                            "Split on ' ' as Gemma's (a no-op after the normalizer)")
        model = data["model"]
        options = {"dropout": None, "continuing_subword_prefix": "", "end_of_word_suffix": "", "ignore_merges": False}
        for key, expected in options.items():
            if (model.get(key) or expected) != expected:
                problems.append(f"{where}: BPE {key} {model.get(key)!r}; supported: {expected!r}")
        vocab: dict[str, int] = model["vocab"]
        missing = [p for p in missing_byte_pieces(vocab) if int(p[3:5], 16) >= 0x80 or chr(int(p[3:5], 16)) not in vocab]
        if missing:
            problems.append(f"{where}: byte fallback without {len(missing)} of the 256 byte pieces ({missing[:4]}...), "
                            "whose bytes the reference would make <unk>; supported: every byte piece <0x00>..<0xFF>, "
                            "or an ASCII one whose character is a piece itself (older Gemma's \\t for <0x09>)")
        added = []
        for token in data.get("added_tokens", []):
            content = token["content"]
            if token.get("single_word") or token.get("lstrip") or token.get("rstrip") or " " in content \
                    or METASPACE in content or not content:
                problems.append(f"{where}: added token {content!r} with single_word, lstrip, rstrip or a space; "
                                "supported: tokens matched on the raw text as they are, as Gemma's")
            else:
                added.append((content, int(token["id"])))
        pieces = [""] * (max([*vocab.values(), *(i for _, i in added)]) + 1)
        for piece, index in vocab.items():
            pieces[index] = piece
        for content, index in added:
            pieces[index] = content
        problems.extend(nul_piece_problems(pieces, where))
        framing = read_framing(data.get("post_processor"), tokenizer, max_seq_length=transformer.max_seq_length,
                               where=where, problems=problems, pair_truncation=transformer.pair_truncation,
                               specials=transformer.specials)
        if problems:
            return None
        merges = tuple(tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"])
        unk = model.get("unk_token")
        return cls(vocab=tuple(pieces), merges=merges, framing=framing, added=tuple(added),
                   unk_id=int(vocab.get(unk, 0)) if unk else 0, backend_json=tokenizer.backend_tokenizer.to_str())

    def describe(self) -> dict[str, Any]:
        """Return the settings recorded in the manifest."""
        return {**super().describe(), "model": "SentencePiece BPE with byte fallback", "vocab_size": len(self.vocab),
                "merges": len(self.merges), "normalizer": "Replace(' ', '▁')",
                "pre_tokenizer": "none (Split on ' ' finds no space after the normalizer)",
                "added_tokens": len(self.added)}

    sweep_why = ("SentencePiece's BPE (the kernels') merges the adjacent pair of best score whose concatenation is "
                 "a piece, HF's BPE the pair of best rank that is a merge: they part where a piece is reached two ways "
                 "with ranks that do not follow the pieces' order, as in hand-edited merges; transformers' conversion "
                 "of a SentencePiece model ranks them so. Supported: merge lists where every piece's text tokenizes "
                 "the same in both")

    def piece_texts(self) -> list[str]:
        """Return the text of every piece and every merge's concatenation ("▁" as a space; byte pieces left out:
        no text spells them)."""
        texts = [p for p in (*self.vocab, *(a + b for a, b in self.merges)) if p and not BYTE_PIECE.fullmatch(p)]
        return [p.replace(METASPACE, " ") for p in texts]

    def piece(self, token_id: int) -> str:
        return self.vocab[token_id]

    def nul_id(self) -> int:
        """Return the id of ``<0x00>``, the reference's piece of NUL."""
        return self.vocab.index("<0x00>")

    def ids(self) -> np.ndarray:
        """Return the reference id of each kernel id: the pieces' own, then the kernel's unknown piece (byte
        fallback leaves no character to it) and the byte pieces the kernel needs but the vocabulary lacks (their
        characters are pieces: never reached) as the reference's unknown token."""
        return np.array([*range(len(self.vocab)), self.unk_id, *[self.unk_id] * len(missing_byte_pieces(self.vocab))],
                        np.int64)

    def model_proto(self) -> bytes:
        """Return the SentencePiece BPE model with byte fallback the kernels run over "▁"-spelled text."""
        from sentencepiece import sentencepiece_model_pb2 as sp

        Piece = sp.ModelProto.SentencePiece
        model = sp.ModelProto()
        rank = {a + b: r for r, (a, b) in reversed(list(enumerate(self.merges)))}
        added = {index for _, index in self.added}
        for index, piece in enumerate(self.vocab):
            if index in added:
                model.pieces.add(piece=piece, score=0.0, type=Piece.USER_DEFINED)
            elif BYTE_PIECE.fullmatch(piece):
                model.pieces.add(piece=piece, score=0.0, type=Piece.BYTE)
            elif piece and (len(piece) == 1 or piece in rank):
                model.pieces.add(piece=piece, score=-float(rank.get(piece, -1) + 1), type=Piece.NORMAL)
            else:  # never made by a merge: the reference cannot produce it, the kernel must not
                model.pieces.add(piece=piece or f"<unused {index}>", score=0.0, type=Piece.CONTROL)
        unk = len(model.pieces)  # SentencePiece needs one; the reference's <unk> is an added token
        model.pieces.add(piece="<kernel unk>", score=0.0, type=Piece.UNKNOWN)
        for piece in missing_byte_pieces(self.vocab):  # SentencePiece loads byte fallback only with all 256
            model.pieces.add(piece=piece, score=0.0, type=Piece.BYTE)
        model.trainer_spec.byte_fallback = True
        return kernel_model(model, sp.TrainerSpec.BPE, unk)
