"""``SentenceTransformer(truncate_dim=N)``: the slice ``sentence_embedding[..., :N]`` after the last module.

Not a ``modules.json`` entry (nothing registers here): the model's ``config_sentence_transformers.json`` or
``st-export --truncate-dim`` asks for it, and :meth:`exporter.model.ModelSpec.build_torch` puts it at the end of
the head, so every graph traced from the head (encoder.onnx, the fused variants, the SavedModel's and TFLite's
onnx-tf encoder) ends with the same Slice. sentence-transformers 6.2 slices after a Normalize module and does not
normalize again unless ``encode(normalize_embeddings=True)``: so does this.
"""
from __future__ import annotations

import torch


class Truncate(torch.nn.Module):
    """Keep the first ``dim`` values of ``sentence_embedding``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features["sentence_embedding"] = features["sentence_embedding"][..., :self.dim]
        return features
