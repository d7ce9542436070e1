"""The byte-level BPE family (RoBERTa): registered once, read in ``spec``, emitted in ``emit_*``."""
from __future__ import annotations

from typing import Any

from ..shared.family import Family, register
from ..shared.self_sweep import with_self_sweep
from .spec import TFLITE_REFUSAL, BpeSpec


def _onnx_emitter() -> Any:
    from .emit_onnx import piece_ids

    return piece_ids


def _tf_emitter() -> Any:
    from .emit_tf import BpeTokenizerTF

    return BpeTokenizerTF


FAMILY = register(Family(
    spec=BpeSpec, model_types=("BPE",), emitters={"onnx": _onnx_emitter, "tf": _tf_emitter},
    kernels={"onnx": "onnxruntime-extensions SentencepieceTokenizer (BPE model)",
             "tf": "tensorflow-text SentencepieceTokenizer (BPE model)"},
    graphs=("onnx", "tf"), refused={"tflite": TFLITE_REFUSAL}, check=with_self_sweep(None)))

__all__ = ["FAMILY", "BpeSpec"]
