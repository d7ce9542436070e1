"""``modernbert``: ModernBERT (gte-modernbert-base, modernbert-embed-base): rotary positions, local and global attention.

transformers' ``ModernBertModel`` (5.x) runs padded batches: token embeddings and LayerNorm, then layers whose
attention is global (every ``global_attn_every_n_layers``-th, from the first) or local (a token sees the tokens at
most ``local_attention // 2`` away), each with its own rotary base (``global_rope_theta``, ``local_rope_theta``),
GeGLU MLPs, no biases, a final LayerNorm. No token types. Positions are rotary, so the only limit on a text's
length is the configured ``max_position_embeddings``. Exported with eager attention (the sentence-transformers
reference runs SDPA on CPU: the same arithmetic, rounded apart by ~1e-7); flash attention's unpadding is never used.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import onnx
import torch

from . import Architecture, register


@register
class ModernBert(Architecture):
    model_type = "modernbert"
    #: onnxruntime's optimizer has no ModernBERT type; its "bert" fusions match the GeGLU's GELU and the residual
    #: LayerNorms (Gelu, SkipLayerNormalization: the same numbers within 5e-7 on the tiny model) but not the rotary
    #: attention, which stays MatMul / Softmax
    ort_optimizer_type = "bert"

    def layers(self, model: torch.nn.Module) -> torch.nn.Module:
        return _Layers(model)

    def tf_rewrites(self, scope: str | None = None) -> list[Callable[[onnx.ModelProto], Any]]:
        """The defaults; the local window's int64 ``Abs(i - j)`` as ``Max(x, -x)`` (TFLite has no int64 ABS); the
        integer divisions of the rotary embedding and the GeGLU split in float32 (onnx-tf's are float64); pad
        positions zeroed after the embedding norm (where the pad token's row is zero, as ``padding_idx`` makes it,
        the norm is 0/0 = NaN in fp16 TFLite: the epsilon is a float16 subnormal, stored as 0)."""
        from ..graphs.encoder import TRANSFORMER_SCOPE
        from ..graphs.onnx_for_tflite import integer_abs_as_max, integer_div_in_float32, pad_positions_zeroed

        return [*super().tf_rewrites(scope), integer_abs_as_max, integer_div_in_float32,
                partial(pad_positions_zeroed, scope=f"{scope or TRANSFORMER_SCOPE}/embeddings/norm/")]


class _Layers(torch.nn.Module):
    """ModernBERT after its embeddings, called as the fused-encoder path calls a BERT encoder: the layers with their
    rotary embeddings and masks (global: the padding mask given; local: that mask inside the window), then the
    final norm."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        model, length = self.model, hidden.shape[1]
        positions = torch.arange(length, device=hidden.device)
        distance = (positions[None, :] - positions[:, None]).abs()
        outside = (distance > model.config.sliding_window)[None, None]
        masks = {"full_attention": attention_mask,
                 "sliding_attention": attention_mask.masked_fill(outside, torch.finfo(hidden.dtype).min)}
        rotary = {kind: model.rotary_emb(hidden, positions[None], kind) for kind in masks}
        for layer in model.layers:
            hidden = layer(hidden, attention_mask=masks[layer.attention_type],
                           position_embeddings=rotary[layer.attention_type])
        return (model.final_norm(hidden),)
