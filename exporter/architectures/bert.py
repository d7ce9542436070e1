"""``bert``: BERT and its many fine-tunes (all-MiniLM-L6-v2 is one), absolute positions, token types."""
from __future__ import annotations

import torch

from . import Architecture, register


@register
class Bert(Architecture):
    model_type = "bert"
    takes_token_type_ids = True

    def embeddings(self, model: torch.nn.Module, input_ids: torch.Tensor,
                   token_type_ids: torch.Tensor) -> torch.Tensor:
        return model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
