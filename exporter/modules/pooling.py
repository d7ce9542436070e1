"""``sentence_transformers.models.Pooling``: every mode of ST 2.x–6.x, several concatenated."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..files import read_json
from . import ModuleConverter, ModuleEntry, register

#: legacy flag → mode, in the order ST concatenates legacy flags
LEGACY_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
MODES = tuple(LEGACY_FLAGS.values())


@dataclass(frozen=True)
class PoolingConfig:
    embedding_dimension: int
    modes: tuple[str, ...]
    include_prompt: bool


def _modes(config: dict[str, Any]) -> tuple[str, ...]:
    """Return the pooling modes in concatenation order, from either config form."""
    mode = config.get("pooling_mode")
    if mode is not None:
        return (mode,) if isinstance(mode, str) else tuple(mode)
    flagged = tuple(m for flag, m in LEGACY_FLAGS.items() if config.get(flag))
    return flagged or ("mean",)


@register
class Pooling(ModuleConverter):
    class_name = "Pooling"
    stage = "pooling"

    @classmethod
    def read(cls, entry: ModuleEntry, problems: list[str]) -> PoolingConfig | None:
        config = read_json(entry.folder / "config.json")
        flags = [k for k, v in config.items() if k.startswith("pooling_mode_") and k not in LEGACY_FLAGS and v]
        if flags:
            problems.append(f"modules.json entry {entry.index}: pooling flag(s) {flags}; supported: "
                            f"{', '.join(LEGACY_FLAGS)} (or the 6.x pooling_mode)")
            return None
        modes = _modes(config)
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            problems.append(
                f"modules.json entry {entry.index}: pooling mode(s) {unknown}; supported: {', '.join(MODES)}"
            )
            return None
        dim = config.get("embedding_dimension", config.get("word_embedding_dimension"))
        return PoolingConfig(
            embedding_dimension=int(dim) if dim is not None else -1,
            modes=modes,
            include_prompt=bool(config.get("include_prompt", True)),
        )

    def check_input_dim(self, input_dim: int, problems: list[str]) -> None:
        declared = self.config.embedding_dimension
        if declared not in (-1, input_dim):
            problems.append(
                f"modules.json entry {self.entry.index}: Pooling expects {declared}-dim token embeddings "
                f"but the transformer outputs {input_dim}"
            )

    def output_dim(self, input_dim: int) -> int:
        return input_dim * len(self.config.modes)

    def build(self) -> torch.nn.Module:
        return _PoolingModule(self.config.modes)

    def describe(self) -> dict[str, Any]:
        return {"modes": list(self.config.modes), "include_prompt": self.config.include_prompt}


def _pool(mode: str, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Return one pooled [N, D] tensor; mirrors ST's ``Pooling._forward_padded`` without prompts."""
    fmask = mask.unsqueeze(-1).to(tokens.dtype)
    if mode == "cls":
        first = mask.to(torch.int32).argmax(dim=1)
        return tokens[torch.arange(tokens.shape[0]), first]
    if mode == "max":
        return tokens.masked_fill(fmask == 0, float("-inf")).max(dim=1).values
    if mode in ("mean", "mean_sqrt_len_tokens"):
        total = (tokens * fmask).sum(dim=1)
        count = torch.clamp(fmask.sum(dim=1), min=1e-9)
        return total / (count if mode == "mean" else torch.sqrt(count))
    if mode == "weightedmean":
        positions = torch.arange(1, tokens.shape[1] + 1, dtype=tokens.dtype).view(1, -1, 1)
        pad_lengths = mask.to(torch.int32).argmax(dim=1).to(tokens.dtype)
        weighted = fmask * (positions - pad_lengths.view(-1, 1, 1))
        return (tokens * weighted).sum(dim=1) / torch.clamp(weighted.sum(dim=1), min=1e-9)
    if mode == "lasttoken":
        # ST flips the mask and takes the argmax; the largest attended position is the same index
        # (0 when nothing is attended, as ST's fallback) without a reversed slice, which TFLite
        # cannot convert from onnx-tf's graph
        positions = torch.arange(tokens.shape[1], device=tokens.device).view(1, -1)
        last = (positions * mask.to(torch.int64)).max(dim=1).values
        return (tokens * fmask)[torch.arange(tokens.shape[0]), last]
    raise ValueError(mode)


class _PoolingModule(torch.nn.Module):
    def __init__(self, modes: tuple[str, ...]):
        super().__init__()
        self.modes = modes
        #: set for include_prompt=False with a default prompt: these first tokens are not pooled
        self.prompt_length = 0

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        tokens, mask = features["token_embeddings"], features["attention_mask"]
        # a graph input (int64 []) where one encoder serves several prompts (exporter/graphs/encoder.py), else the
        # default prompt's length
        length = features.get("prompt_length", self.prompt_length)
        if isinstance(length, torch.Tensor) or length:  # ST zeroes the prompt's mask (right padding: the first positions)
            keep = torch.arange(mask.shape[1]).unsqueeze(0) >= length
            mask = mask * keep.to(mask.dtype)
        pooled = [_pool(mode, tokens, mask) for mode in self.modes]
        features["sentence_embedding"] = torch.cat(pooled, dim=-1)
        return features
