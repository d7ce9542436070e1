"""Emit a SentencePiece BPE tokenizer with byte fallback as ONNX: text [N] → every piece's id and row.

1. the texts are split on NUL (``chars_onnx.nul_free_pieces``: the extensions' kernels read a string up to
   its first NUL); every part is one word, its spaces replaced by "▁";
2. onnxruntime-extensions' ``SentencepieceTokenizer`` runs BPE with byte fallback over the words with the model
   of ``SpBpeSpec.model_proto`` (added tokens are its user-defined pieces);
3. ``<0x00>`` (the reference's piece of NUL) goes after every part but a text's last.
"""
from __future__ import annotations

from onnx import TensorProto, helper

from ...graphs.onnx_builder import GraphBuilder, ones_at
from ..shared.chars_onnx import nul_free_pieces, replaced, sentencepiece_ids
from .spec import METASPACE, SpBpeSpec


def _flat(b: GraphBuilder, x: str) -> str:
    return b.op("Reshape", [x, b.const([-1])])


def _with_nuls(b: GraphBuilder, nul_id: int, nul_after: str):
    """Return the ``after`` step of ``sentencepiece_ids`` that puts ``nul_id`` at the end of each word where
    ``nul_after`` [W] (int64 0/1) is 1."""
    def after(b: GraphBuilder, ids: str, splits: str) -> tuple[str, str]:
        counts = b.op("Sub", [b.op("Slice", [splits, b.const([1]), b.const([2**62])]),
                              b.op("Slice", [splits, b.const([0]), b.const([-1])])])
        new_splits = b.op("Concat", [b.const([0]), b.op("CumSum", [b.op("Add", [counts, nul_after]), b.const(0)])],
                          axis=0)
        n_ids = b.op("Shape", [ids])
        # each id's word: the words started at or before it (one more slot: empty words may end the batch)
        starts = b.op("Slice", [splits, b.const([1]), b.const([-1])])
        word = b.op("Slice", [b.op("CumSum", [ones_at(b, b.op("Add", [n_ids, b.const([1])]), starts,
                                                       reduction="add"), b.const(0)]), b.const([0]), n_ids])
        shift = b.op("CumSum", [nul_after, b.const(0)], exclusive=1)
        position = b.op("Add", [b.op("Range", [b.const(0), b.op("Squeeze", [n_ids]), b.const(1)]),
                                b.op("Gather", [shift, word])])
        total = b.op("Slice", [new_splits, b.const([-1]), b.const([2**62])])
        filled = b.op("ConstantOfShape", [total], value=helper.make_tensor("nul", TensorProto.INT64, [1], [nul_id]))
        return b.op("ScatterElements", [filled, position, ids]), new_splits
    return after


def piece_ids(b: GraphBuilder, spec: SpBpeSpec, text: str) -> tuple[str, str]:
    """Add the tokenizer to ``b`` reading the string tensor ``text``; return (ids [P], row of each [P])."""
    parts, last = nul_free_pieces(b, text)  # [N, K + 1], [N, 1]
    column = b.op("Range", [b.const(0), b.op("Squeeze", [b.op("Shape", [parts], start=1, end=2)]), b.const(1)])
    used = _flat(b, b.op("LessOrEqual", [column, last]))
    nul_after = b.op("Cast", [b.op("Compress", [_flat(b, b.op("Less", [column, last])), used], axis=0)],
                     to=TensorProto.INT64)
    flat = _flat(b, parts)
    words = replaced(b, b.op("Compress", [flat, used], axis=0), " ", METASPACE)
    columns = b.op("Shape", [parts], start=1, end=2)
    row = b.op("Div", [b.op("Range", [b.const(0), b.op("Squeeze", [b.op("Shape", [flat])]), b.const(1)]), columns])
    word_row = b.op("Compress", [row, used], axis=0)
    return sentencepiece_ids(b, spec.model_proto(), spec.ids(), words, word_row,
                             after=_with_nuls(b, spec.nul_id(), nul_after))
