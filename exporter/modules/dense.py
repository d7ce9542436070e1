"""``sentence_transformers.models.Dense``: Linear (+ bias, + residual) and an activation."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidModelError
from ..files import load_state_dict, read_json, weights_file, weights_problem
from . import ModuleConverter, ModuleEntry, register

#: activations ST instantiates with no arguments, by class name
ACTIVATIONS = {
    "Identity": torch.nn.Identity,
    "Tanh": torch.nn.Tanh,
    "ReLU": torch.nn.ReLU,
    "GELU": torch.nn.GELU,
    "Sigmoid": torch.nn.Sigmoid,
    "SiLU": torch.nn.SiLU,
    "LeakyReLU": torch.nn.LeakyReLU,
    "ELU": torch.nn.ELU,
    "Softplus": torch.nn.Softplus,
}
#: ST's constructor default when the config names none
DEFAULT_ACTIVATION = "torch.nn.modules.activation.Tanh"


@dataclass(frozen=True)
class DenseConfig:
    folder: Path
    in_features: int
    out_features: int
    bias: bool
    activation: str
    use_residual: bool


@register
class Dense(ModuleConverter):
    class_name = "Dense"
    stage = "head"

    @classmethod
    def read(cls, entry: ModuleEntry, problems: list[str]) -> DenseConfig | None:
        config = read_json(entry.folder / "config.json")
        where = f"modules.json entry {entry.index}: Dense"
        activation = config.get("activation_function") or DEFAULT_ACTIVATION
        name = activation.rsplit(".", 1)[-1]
        if not activation.startswith("torch.") or name not in ACTIVATIONS:
            problems.append(f"{where} activation {activation!r}; supported: {', '.join(ACTIVATIONS)} from torch.nn")
        for key in ("module_input_name", "module_output_name"):
            if config.get(key, "sentence_embedding") != "sentence_embedding":
                problems.append(f"{where} {key}={config[key]!r}; only 'sentence_embedding' is supported")
        try:
            weights = weights_file(entry.folder)
            problems.extend(filter(None, [weights_problem(weights) if weights else None]))
            return DenseConfig(
                folder=entry.folder,
                in_features=int(config["in_features"]),
                out_features=int(config["out_features"]),
                bias=bool(config.get("bias", True)),
                activation=name,
                use_residual=bool(config.get("use_residual", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidModelError(f"{entry.folder / 'config.json'}: Dense config lacks a valid {exc}") from None

    def check_input_dim(self, input_dim: int, problems: list[str]) -> None:
        if self.config.in_features != input_dim:
            problems.append(
                f"modules.json entry {self.entry.index}: Dense takes {self.config.in_features} features "
                f"but receives {input_dim}"
            )

    def output_dim(self, input_dim: int) -> int:
        return self.config.out_features

    def build(self) -> torch.nn.Module:
        module = _DenseModule(self.config)
        state = load_state_dict(self.config.folder)
        missing, unexpected = module.load_state_dict(state, strict=False)
        if missing:
            raise InvalidModelError(f"{self.config.folder}: Dense weights lack {missing} (found {sorted(state)})")
        return module.eval()

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"in": c.in_features, "out": c.out_features, "bias": c.bias, "activation": c.activation,
                "residual": c.use_residual}


class _DenseModule(torch.nn.Module):
    def __init__(self, config: DenseConfig):
        super().__init__()
        self.linear = torch.nn.Linear(config.in_features, config.out_features, bias=config.bias)
        self.activation = ACTIVATIONS[config.activation]()
        self.use_residual = config.use_residual
        if config.use_residual and config.in_features != config.out_features:
            self.residual = torch.nn.Linear(config.in_features, config.out_features, bias=False)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = features["sentence_embedding"]
        out = self.activation(self.linear(x))
        if self.use_residual:
            out = out + (self.residual(x) if hasattr(self, "residual") else x)
        features["sentence_embedding"] = out
        return features
