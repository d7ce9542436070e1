"""``bert``: BERT and its many fine-tunes (all-MiniLM-L6-v2 is one), absolute positions, token types.

Some hub models say ``model_type`` ``"bert"`` and load their own code (``auto_map``): jina-embeddings-v2's JinaBert
(``jinaai/jina-bert-implementation``: ALiBi, ``position_embedding_type`` ``"alibi"``; gated MLPs,
``feed_forward_type``). Without ``--trust-remote-code`` transformers loads its ``BertModel`` for them, which reads
neither key (5.23 has absolute positions only, and no JinaBert class): such a config is refused by name, naming the
model's own code.
"""
from __future__ import annotations

from typing import Any

import torch

from . import Architecture, register
from .remote import unread_keys_problems

#: keys of BERT-like hub code that transformers' BertModel does not read → what it computes as (absent or null: that)
COMPUTED_AS = {"position_embedding_type": "absolute", "feed_forward_type": "original"}


@register
class Bert(Architecture):
    model_type = "bert"
    takes_token_type_ids = True

    def problems(self, config: dict[str, Any]) -> list[str]:
        return unread_keys_problems(config, "transformers' BertModel", COMPUTED_AS)

    def embeddings(self, model: torch.nn.Module, input_ids: torch.Tensor,
                   token_type_ids: torch.Tensor) -> torch.Tensor:
        return model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)

