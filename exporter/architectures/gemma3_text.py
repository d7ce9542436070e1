"""``gemma3_text``: Gemma 3's text model as EmbeddingGemma-300m runs it (bidirectional attention).

transformers' ``Gemma3TextModel``: token embeddings scaled by sqrt(hidden_size), RMSNorm with (1 + weight),
grouped-query attention with RoPE (one base frequency for the sliding layers, another for the global ones),
no token types, no position table: position ids are 0.. in the padded batch, so the model embeds a text the
same alone and padded on the right. ``use_bidirectional_attention`` (EmbeddingGemma's config) makes every
layer bidirectional, the sliding layers within ``|i - j| < window``; the window is built from the token
positions inside the graph, so texts longer than it export as they run. Eager attention, traced.

transformers builds those masks with ``torch.vmap`` (a custom mask function makes it take that path), which the
TorchScript tracer cannot follow; :meth:`Gemma3Text.call_kwargs` hands the model the same masks, one per layer type,
built with plain tensor ops (``Gemma3TextModel.forward`` takes a ready mapping as its ``attention_mask``).
"""
from __future__ import annotations

from typing import Any

import torch

from . import Architecture, register


@register
class Gemma3Text(Architecture):
    model_type = "gemma3_text"
    ort_optimizer_type = None
    no_fusion_reason = ("onnxruntime's transformer optimizer has no Gemma 3 model type (RMSNorm with 1 + weight, "
                        "RoPE, grouped-query attention, sliding-window masks); the variant is the plain encoder")

    def max_positions(self, config: dict[str, Any]) -> int:
        """RoPE has no table; the model's own limit is ``max_position_embeddings``."""
        return int(config.get("max_position_embeddings", 2048))

    def problems(self, config: dict[str, Any]) -> list[str]:
        if not config.get("use_bidirectional_attention"):
            return [f"gemma3_text with use_bidirectional_attention {config.get('use_bidirectional_attention')!r}: "
                    "a causal Gemma 3 is a decoder (its embedding is not EmbeddingGemma's); supported: "
                    "use_bidirectional_attention true, as EmbeddingGemma's config.json has it"]
        return []

    def call_kwargs(self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> dict[str, Any]:
        """The masks ``Gemma3TextModel`` builds with bidirectional attention: every real token for the global layers,
        the real tokens less than ``sliding_window`` positions away for the sliding ones; additive, as eager
        attention adds them."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        near = (positions[:, None] - positions[None, :]).abs() < model.config.sliding_window  # [Q, K]
        real = attention_mask[:, None, None, :].bool()  # [B, 1, 1, K]
        blocked = torch.tensor(torch.finfo(model.dtype).min, dtype=model.dtype)
        zero = torch.tensor(0.0, dtype=model.dtype)
        every_query = positions[:, None] >= 0  # all True: broadcasts the key mask to [B, 1, Q, K]
        masks = {"full_attention": torch.where(real & every_query, zero, blocked),
                 "sliding_attention": torch.where(real & near, zero, blocked)}
        return {"input_ids": input_ids, "attention_mask": masks}
