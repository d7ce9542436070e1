"""``mpnet``: MPNet (all-mpnet-base-v2 and its fine-tunes): relative position bias, no token types.

Position ids count from ``padding_idx + 1`` = 2 (transformers hard-codes ``padding_idx = 1``) and
skip the ids equal to 1, so a text embeds the same alone and in a padded batch when the pad id is 1
(MPNet's ``<pad>``); the embedding table's first two rows are never a text's position.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import onnx

from . import Architecture, register


@register
class MPNet(Architecture):
    model_type = "mpnet"
    position_offset = 2

    def tf_rewrites(self, scope: str | None = None) -> list[Callable[[onnx.ModelProto], Any]]:
        """The defaults; the relative-position buckets' int64 ``Abs`` as ``Max(x, -x)`` (TFLite has no int64
        ABS); pad positions zeroed after the embeddings (``<pad>``'s zero rows are NaN in fp16 TFLite)."""
        from ..graphs.encoder import TRANSFORMER_SCOPE
        from ..graphs.onnx_for_tflite import integer_abs_as_max, pad_positions_zeroed

        return [*super().tf_rewrites(scope), integer_abs_as_max,
                partial(pad_positions_zeroed, scope=f"{scope or TRANSFORMER_SCOPE}/embeddings/LayerNorm/")]
