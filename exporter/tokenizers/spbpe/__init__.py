"""The SentencePiece BPE family with byte fallback (Gemma): registered once, read in ``spec``, emitted in ``emit_*``."""
from __future__ import annotations

from typing import Any

from ..shared.family import Family, register
from ..shared.self_sweep import with_self_sweep
from .spec import TFLITE_REFUSAL, SpBpeSpec, claims


def _onnx_emitter() -> Any:
    from .emit_onnx import piece_ids

    return piece_ids


def _tf_emitter() -> Any:
    from .emit_tf import SpBpeTokenizerTF

    return SpBpeTokenizerTF


FAMILY = register(Family(
    spec=SpBpeSpec, model_types=("BPE",), claims=claims, emitters={"onnx": _onnx_emitter, "tf": _tf_emitter},
    kernels={"onnx": "onnxruntime-extensions SentencepieceTokenizer (BPE model, byte fallback)",
             "tf": "tensorflow-text SentencepieceTokenizer (BPE model, byte fallback)"},
    graphs=("onnx", "tf"), refused={"tflite": TFLITE_REFUSAL}, check=with_self_sweep(None)))

__all__ = ["FAMILY", "SpBpeSpec"]
