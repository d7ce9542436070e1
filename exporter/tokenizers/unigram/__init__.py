"""The SentencePiece Unigram family (XLM-RoBERTa): registered once, read in ``spec``, emitted in ``emit_*``."""
from __future__ import annotations

from typing import Any

from ...errors import UnsupportedModelError
from ..shared.family import Family, register
from ..shared.self_sweep import with_self_sweep
from .spec import STAND_IN, UnigramSpec


def _onnx_emitter() -> Any:
    from .emit_onnx import piece_ids

    return piece_ids


def _tf_emitter() -> Any:
    from .emit_tf import UnigramTokenizerTF

    return UnigramTokenizerTF


def _marked_pieces(spec: UnigramSpec) -> list[str]:
    """Return why pieces holding a code point the graphs reserve as a mark keep every graph from this tokenizer.

    The graphs turn a text's own marks (the special tokens' placeholders, the sentinel, the deletion mark) into
    ``STAND_IN`` before the kernel sees them, so such a piece is ``<unk>`` in the graphs where the reference
    gives the piece; a piece "▁" + placeholder would also clash with the special token's own piece.
    """
    marks = {chr(cp) for cp in spec.reserved()} | {STAND_IN}
    found = [(index, piece) for index, (piece, _) in enumerate(spec.pieces) if not marks.isdisjoint(piece)]
    if not found:
        return []
    named = ", ".join(f"{piece!r} (id {index})" for index, piece in found[:5])
    reserved = ", ".join(f"U+{ord(c):04X}" for c in sorted(marks))
    return [f"{len(found)} vocabulary piece(s) hold a code point the graphs reserve as a mark ({reserved}): {named}; "
            "the graphs would give <unk> for such a character where the reference gives the piece. Supported: "
            "vocabularies without these private-use code points"]


def _check(spec: UnigramSpec, graph: str) -> list[str]:
    """Return what keeps every graph from this tokenizer: pieces holding the graphs' marks, the character map's
    probes."""
    marked = _marked_pieces(spec)
    if marked:
        return marked
    try:
        spec.normalization()
    except UnsupportedModelError as exc:
        return exc.problems
    return []


FAMILY = register(Family(
    spec=UnigramSpec, model_types=("Unigram",), emitters={"onnx": _onnx_emitter, "tf": _tf_emitter},
    kernels={"onnx": "onnxruntime-extensions SentencepieceTokenizer (Unigram model)",
             "tf": "tensorflow-text FastSentencepieceTokenizer"},
    check=with_self_sweep(_check)))

__all__ = ["FAMILY", "UnigramSpec"]
