"""``qwen3``: Qwen3 decoders used as embedders (Qwen3-Embedding-0.6B): causal attention, RoPE, grouped-query
attention, RMSNorm on queries and keys, last-token pooling.

transformers' ``Qwen3Model`` computes position ids as ``arange(sequence)``, whatever the padding: the
reference (Qwen3-Embedding's tokenizer pads on the left) gives a left-padded text positions offset by its pad
count, our graphs (padded on the right) give it positions from 0. Rotary embeddings depend only on the distance
between two positions, so the attention scores are the same up to rounding, and the causal mask keeps a text's
tokens from seeing the pads after it: a text embeds the same alone and in a padded batch, which the parity
check proves on every target. No key/value cache: ``use_cache`` False, one forward, no past in the graph.
"""
from __future__ import annotations

from typing import Any, Callable

import onnx
import torch

from . import Architecture, register


@register
class Qwen3(Architecture):
    model_type = "qwen3"
    ort_optimizer_type = None
    no_fusion_reason = ("ONNX Runtime's transformer optimizer fuses encoder attention (bert and its kin); "
                        "a causal decoder with rotary embeddings and grouped-query attention has no fusion there")

    def problems(self, config: dict[str, Any]) -> list[str]:
        sliding = [i for i, kind in enumerate(config.get("layer_types") or []) if kind != "full_attention"]
        if config.get("use_sliding_window") or sliding:
            return [f"sliding-window attention (config.json use_sliding_window / layer_types {sliding}): the export "
                    "is proven with full causal attention only; Qwen3-Embedding uses full attention in every layer"]
        return []

    def forward_kwargs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       token_type_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False}

    def embeddings(self, model: torch.nn.Module, input_ids: torch.Tensor,
                   token_type_ids: torch.Tensor) -> torch.Tensor:
        return model.embed_tokens(input_ids)

    def layers(self, model: torch.nn.Module) -> torch.nn.Module:
        """The decoder layers and final norm, called with the fused path's additive padding mask."""
        return _DecoderLayers(model)

    def tf_rewrites(self, scope: str | None = None) -> list[Callable[[onnx.ModelProto], Any]]:
        """The defaults; integer Div (``rotate_half``'s ``x.shape[-1] // 2``) in float32 (TFLite has no float64 Div)."""
        from ..graphs.onnx_for_tflite import integer_div_in_float32

        return [*super().tf_rewrites(scope), integer_div_in_float32]


class _DecoderLayers(torch.nn.Module):
    """``Qwen3Model`` from its token embeddings: the fused-encoder path's ``layers(hidden, attention_mask=additive)``.

    That path builds an encoder's additive mask ([N, 1, S, S], every row the padding row); the model builds its own
    causal mask from the padding row, so the graph is the plain encoder's (no ORT fusion applies to a decoder).
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        padding = (attention_mask[:, 0, 0, :] == 0).to(torch.int64)
        return (self.model(inputs_embeds=hidden, attention_mask=padding, use_cache=False).last_hidden_state,)
