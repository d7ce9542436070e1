"""``xlm-roberta``: XLM-RoBERTa (paraphrase-multilingual-*, multilingual-e5): BERT layers, RoBERTa positions.

Position ids count from ``padding_idx + 1`` = 2 and skip the ids equal to the pad id (1), computed
from ``input_ids`` inside the model, so a text embeds the same alone and in a padded batch; the
embedding table's first two rows are never a text's position. One token type (all 0).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import onnx
import torch

from . import Architecture, register
from .remote import unread_keys_problems


@register
class XLMRoberta(Architecture):
    model_type = "xlm-roberta"
    takes_token_type_ids = True
    position_offset = 2

    def problems(self, config: dict[str, Any]) -> list[str]:
        """Refused: a hub code's keys the class does not read (jina-embeddings-v3 says ``xlm-roberta`` with rotary
        positions)."""
        return unread_keys_problems(config, f"transformers' {type(self).__name__}Model",
                                    {"position_embedding_type": "absolute"})

    def embeddings(self, model: torch.nn.Module, input_ids: torch.Tensor,
                   token_type_ids: torch.Tensor) -> torch.Tensor:
        return model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)

    def tf_rewrites(self, scope: str | None = None) -> list[Callable[[onnx.ModelProto], Any]]:
        """The defaults; pad positions zeroed after the embeddings (the pad position's zero row is NaN in fp16 TFLite)."""
        from ..graphs.encoder import TRANSFORMER_SCOPE
        from ..graphs.onnx_for_tflite import pad_positions_zeroed

        return [*super().tf_rewrites(scope),
                partial(pad_positions_zeroed, scope=f"{scope or TRANSFORMER_SCOPE}/embeddings/LayerNorm/")]
