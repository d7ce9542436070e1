"""The SentencePiece Unigram family (XLM-RoBERTa): registered once, read in ``spec``, emitted in ``emit_*``."""
from __future__ import annotations

from typing import Any

from ...errors import UnsupportedModelError
from ..shared.family import Family, register
from ..shared.self_sweep import with_self_sweep
from .spec import UnigramSpec


def _onnx_emitter() -> Any:
    from .emit_onnx import piece_ids

    return piece_ids


def _tf_emitter() -> Any:
    from .emit_tf import UnigramTokenizerTF

    return UnigramTokenizerTF


def _check(spec: UnigramSpec, graph: str) -> list[str]:
    """Return what keeps every graph from this tokenizer: the character map's probes."""
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
