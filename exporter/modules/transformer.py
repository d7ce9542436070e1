"""``sentence_transformers.models.Transformer``: a BERT or DistilBERT encoder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidModelError
from ..files import read_json, weights_file
from . import ModuleConverter, ModuleEntry, register

#: config.json ``model_type`` → whether the architecture takes token_type_ids
SUPPORTED_ARCHITECTURES = {"bert": True, "distilbert": False}


@dataclass(frozen=True)
class TransformerConfig:
    folder: Path
    model_type: str
    hidden_size: int
    max_seq_length: int
    do_lower_case: bool
    uses_token_type_ids: bool
    max_position_embeddings: int


def _max_seq_length(folder: Path, sbert: dict[str, Any], max_positions: int) -> int:
    """Return the length ST truncates to: its config, else the tokenizer's, capped by the positions."""
    if sbert.get("max_seq_length"):
        return int(sbert["max_seq_length"])
    tokenizer_config = read_json(folder / "tokenizer_config.json", required=False) or {}
    limit = tokenizer_config.get("model_max_length")
    if isinstance(limit, (int, float)) and 0 < limit < 1e9:
        return int(min(limit, max_positions))
    return max_positions


@register
class Transformer(ModuleConverter):
    class_name = "Transformer"
    stage = "transformer"

    @classmethod
    def read(cls, entry: ModuleEntry, problems: list[str]) -> TransformerConfig | None:
        folder = entry.folder
        config = read_json(folder / "config.json", required=False)
        if config is None:
            raise InvalidModelError(f"{folder / 'config.json'}: file not found (the transformer's config)")
        model_type = config.get("model_type")
        if model_type not in SUPPORTED_ARCHITECTURES:
            problems.append(
                f"modules.json entry {entry.index}: transformer architecture {model_type!r} "
                f"(config.json model_type); supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
            )
            return None
        if weights_file(folder) is None:
            raise InvalidModelError(f"{folder}: no transformer weights (model.safetensors or pytorch_model.bin)")
        sbert = read_json(folder / "sentence_bert_config.json", required=False) or {}
        max_positions = int(config.get("max_position_embeddings", 512))
        hidden = int(config.get("hidden_size") or config.get("dim"))
        return TransformerConfig(
            folder=folder,
            model_type=model_type,
            hidden_size=hidden,
            max_seq_length=_max_seq_length(folder, sbert, max_positions),
            do_lower_case=bool(sbert.get("do_lower_case", False)),
            uses_token_type_ids=SUPPORTED_ARCHITECTURES[model_type],
            max_position_embeddings=max_positions,
        )

    def output_dim(self, input_dim: int) -> int:
        return self.config.hidden_size

    def build(self) -> torch.nn.Module:
        return _TransformerModule(self.config)

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"architecture": c.model_type, "hidden_size": c.hidden_size, "max_seq_length": c.max_seq_length}


class _TransformerModule(torch.nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        # Eager attention exports to plain MatMul/Softmax at any opset; never run remote code.
        self.model = AutoModel.from_pretrained(
            str(config.folder),
            local_files_only=True,
            trust_remote_code=False,
            attn_implementation="eager",
        ).eval()
        self.uses_token_type_ids = config.uses_token_type_ids

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        kwargs = {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}
        if self.uses_token_type_ids:
            kwargs["token_type_ids"] = features["token_type_ids"]
        features["token_embeddings"] = self.model(**kwargs, return_dict=True).last_hidden_state
        return features
