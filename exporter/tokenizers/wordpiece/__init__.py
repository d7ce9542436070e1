"""The WordPiece family (BERT, DistilBERT, MPNet): registered once, read in ``spec``, emitted in ``emit_*``."""
from __future__ import annotations

from typing import Any

from ...errors import UnsupportedModelError
from ..shared.family import Family, register
from ..shared.self_sweep import with_self_sweep
from .spec import WordPieceSpec


def _onnx_emitter() -> Any:
    from .emit_onnx import piece_ids

    return piece_ids


def _tf_emitter() -> Any:
    from .emit_tf import WordPieceTokenizerTF

    return WordPieceTokenizerTF


def _check(spec: WordPieceSpec, graph: str) -> list[str]:
    """Return what keeps ``graph`` from this tokenizer: the marks the ONNX graph uses, the code-point tables' limits."""
    try:
        if graph == "onnx":
            from .emit_onnx import onnx_rules

            onnx_rules(spec, spec.char_classes())
        else:
            from .codepoints import code_point_tables

            code_point_tables(spec)
    except UnsupportedModelError as exc:
        return exc.problems
    return []


FAMILY = register(Family(
    spec=WordPieceSpec, model_types=("WordPiece",), emitters={"onnx": _onnx_emitter, "tf": _tf_emitter},
    kernels={"onnx": "onnxruntime-extensions WordpieceTokenizer", "tf": "tensorflow-text FastWordpieceTokenizer"},
    check=with_self_sweep(_check)))

__all__ = ["FAMILY", "WordPieceSpec"]
