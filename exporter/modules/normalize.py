"""``sentence_transformers.models.Normalize``: L2 normalization (it has no config, may have no folder)."""
from __future__ import annotations

import torch

from ..files import read_json
from . import ModuleConverter, ModuleEntry, register


@register
class Normalize(ModuleConverter):
    class_name = "Normalize"
    stage = "head"

    @classmethod
    def read(cls, entry: ModuleEntry, problems: list[str]) -> None:
        # The bundled all-MiniLM-L6-v2 names a 2_Normalize folder that does not exist: ST accepts that.
        config = read_json(entry.folder / "config.json", required=False) or {}
        source = config.get("module_input_name", "sentence_embedding")
        if source != "sentence_embedding":
            problems.append(
                f"modules.json entry {entry.index}: Normalize of {source!r}; only 'sentence_embedding' is supported"
            )
        return None

    def build(self) -> torch.nn.Module:
        return _NormalizeModule()


class _NormalizeModule(torch.nn.Module):
    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features["sentence_embedding"] = torch.nn.functional.normalize(features["sentence_embedding"], p=2, dim=-1)
        return features
