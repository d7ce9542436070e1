"""``sentence_transformers.models.Transformer``: an encoder of a registered architecture (exporter/architectures)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import architectures
from ..architectures import Architecture
from ..errors import InvalidModelError
from ..files import read_json, weights_file, weights_problem
from . import ModuleConverter, ModuleEntry, register


@dataclass(frozen=True)
class TransformerConfig:
    folder: Path
    model_type: str
    hidden_size: int
    max_seq_length: int
    do_lower_case: bool
    architecture: Architecture
    #: tokens one text may have, specials included (the architecture's position limit)
    max_positions: int
    #: rows of the word-embedding matrix (config.json ``vocab_size``; 0 when it does not say)
    vocab_rows: int = 0


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
        arch = architectures.architecture(model_type)
        if arch is None:
            problems.append(
                f"modules.json entry {entry.index}: transformer architecture {model_type!r} "
                f"(config.json model_type); supported: {', '.join(architectures.supported())}"
            )
            return None
        weights = weights_file(folder)
        if weights is None:
            raise InvalidModelError(f"{folder}: no transformer weights (model.safetensors or pytorch_model.bin)")
        problems.extend(filter(None, [weights_problem(weights)]))
        problems.extend(f"modules.json entry {entry.index} ({model_type}): {p}" for p in arch.problems(config))
        sbert = read_json(folder / "sentence_bert_config.json", required=False) or {}
        max_positions = arch.max_positions(config)
        max_seq_length = _max_seq_length(folder, sbert, max_positions)
        if max_seq_length > max_positions:
            problems.append(f"{folder / 'sentence_bert_config.json'}: max_seq_length {max_seq_length} is over the "
                            f"{max_positions} positions of this {model_type} model; set it to {max_positions} or less")
        return TransformerConfig(
            folder=folder,
            model_type=model_type,
            hidden_size=arch.hidden_size(config),
            max_seq_length=max_seq_length,
            do_lower_case=bool(sbert.get("do_lower_case", False)),
            architecture=arch,
            max_positions=max_positions,
            vocab_rows=int(config.get("vocab_size") or 0),
        )

    def output_dim(self, input_dim: int) -> int:
        return self.config.hidden_size

    def build(self) -> torch.nn.Module:
        return _TransformerModule(self.config)

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"architecture": c.model_type, "hidden_size": c.hidden_size, "max_seq_length": c.max_seq_length,
                "max_positions": c.max_positions}


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
        self.architecture = config.architecture

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        kwargs = self.architecture.forward_kwargs(features["input_ids"], features["attention_mask"],
                                                  features["token_type_ids"])
        features["token_embeddings"] = self.model(**kwargs, return_dict=True).last_hidden_state
        return features
