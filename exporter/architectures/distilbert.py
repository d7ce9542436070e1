"""``distilbert``: DistilBERT, no token types; its config names the width ``dim``, its layers ``transformer``."""
from __future__ import annotations

from typing import Any

import torch

from . import Architecture, register


@register
class DistilBert(Architecture):
    model_type = "distilbert"

    def hidden_size(self, config: dict[str, Any]) -> int:
        return int(config.get("dim") or config["hidden_size"])

    def layers(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.transformer
