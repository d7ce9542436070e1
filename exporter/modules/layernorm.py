"""``sentence_transformers.models.LayerNorm``: ``torch.nn.LayerNorm(dimension)`` (eps 1e-5) on the sentence embedding.

A Matryoshka model trained with a LayerNorm before the cut (nomic-embed-text-v1.5's recipe: layer_norm, then the
first N dimensions) is this module before ``truncate_dim``'s slice.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidModelError
from ..files import load_state_dict, read_json, weights_file, weights_problem
from . import ModuleConverter, ModuleEntry, register


@dataclass(frozen=True)
class LayerNormConfig:
    folder: Path
    dimension: int


@register
class LayerNorm(ModuleConverter):
    class_name = "LayerNorm"
    stage = "head"

    @classmethod
    def read(cls, entry: ModuleEntry, problems: list[str]) -> LayerNormConfig:
        config = read_json(entry.folder / "config.json")
        dimension = config.get("dimension") if isinstance(config, dict) else None
        if not isinstance(dimension, int) or isinstance(dimension, bool) or dimension < 1:
            raise InvalidModelError(f"{entry.folder / 'config.json'}: LayerNorm dimension {dimension!r} is not a "
                                    "positive whole number; restore the file from the original model")
        weights = weights_file(entry.folder)
        if weights is None:
            raise InvalidModelError(f"{entry.folder}: no LayerNorm weights (model.safetensors or pytorch_model.bin)")
        problems.extend(filter(None, [weights_problem(weights)]))
        return LayerNormConfig(folder=entry.folder, dimension=dimension)

    def check_input_dim(self, input_dim: int, problems: list[str]) -> None:
        if self.config.dimension != input_dim:
            problems.append(f"modules.json entry {self.entry.index}: LayerNorm of {self.config.dimension} "
                            f"dimensions receives {input_dim}")

    def build(self) -> torch.nn.Module:
        module = _LayerNormModule(self.config.dimension)
        state = load_state_dict(self.config.folder)
        missing, _ = module.load_state_dict(state, strict=False)
        if missing:
            raise InvalidModelError(f"{self.config.folder}: LayerNorm weights lack {missing} (found {sorted(state)})")
        return module.eval()

    def describe(self) -> dict[str, Any]:
        return {"dimension": self.config.dimension}


class _LayerNormModule(torch.nn.Module):
    def __init__(self, dimension: int):
        super().__init__()
        self.norm = torch.nn.LayerNorm(dimension)  # sentence-transformers' own: default eps, affine

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features["sentence_embedding"] = self.norm(features["sentence_embedding"])
        return features
