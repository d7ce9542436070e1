"""Encoder architectures, one file per ``config.json`` ``model_type``, registered by that name.

An architecture tells the exporter what the weights alone do not: how the transformers model is
called, how ONNX Runtime's transformer optimizer sees it, what the TensorFlow bridge needs, and
how many positions it has. To add one (say ``roberta``):

1. add ``exporter/architectures/roberta.py`` with a subclass of :class:`Architecture` decorated
   with :func:`register`, ``model_type = "roberta"``, and the class attributes and methods that
   differ from the defaults below;
2. add a tiny model of that type to ``tests/model_factory.py`` (``ARCHITECTURES``) and a fixture
   that uses it to ``tests/test_tiny_models.py``: ``test_every_architecture_has_a_fixture`` fails
   until there is one, and the fixture must pass parity on every target.

Nothing under ``targets/`` changes: targets and graph builders ask the registry.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import onnx
import torch

from ..registry import import_submodules

_ARCHITECTURES: dict[str, type["Architecture"]] = {}


class Architecture:
    """What the exporter needs to know about one transformers encoder type.

    The defaults describe a BERT-like encoder; a subclass overrides what differs.
    """

    #: ``config.json`` ``model_type``
    model_type: ClassVar[str]
    #: the model's forward takes ``token_type_ids`` (every graph has the input either way)
    takes_token_type_ids: ClassVar[bool] = False
    #: ``onnxruntime.transformers.optimizer`` model type for ``model_optimized.onnx``; None: that
    #: variant is the plain encoder (no fused kernels), with ``no_fusion_reason`` in the manifest
    ort_optimizer_type: ClassVar[str | None] = "bert"
    no_fusion_reason: ClassVar[str] = ""
    #: positions the embedding table holds before the first token's (RoBERTa-style: padding_idx + 1)
    position_offset: ClassVar[int] = 0

    def max_positions(self, config: dict[str, Any]) -> int:
        """Return how many tokens (specials included) one text may have."""
        return int(config.get("max_position_embeddings", 512)) - self.position_offset

    def hidden_size(self, config: dict[str, Any]) -> int:
        """Return the width of the token embeddings."""
        return int(config["hidden_size"])

    def problems(self, config: dict[str, Any]) -> list[str]:
        """Return why this model of the type cannot be exported (empty: it can)."""
        return []

    def forward_kwargs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       token_type_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return the keyword arguments of the transformers model's forward."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.takes_token_type_ids:
            kwargs["token_type_ids"] = token_type_ids
        return kwargs

    def call_kwargs(self, model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return the keyword arguments ``model`` (the loaded transformers model) is called with: ``forward_kwargs``,
        unless the architecture needs the model's config for them (masks built from it)."""
        return self.forward_kwargs(input_ids, attention_mask, token_type_ids)

    def embeddings(self, model: torch.nn.Module, input_ids: torch.Tensor,
                   token_type_ids: torch.Tensor) -> torch.Tensor:
        """Return the embedding layer's output (for the encoder ONNX Runtime's optimizer fuses)."""
        return model.embeddings(input_ids=input_ids)

    def layers(self, model: torch.nn.Module) -> torch.nn.Module:
        """Return the stack of layers, called as ``layers(hidden, attention_mask=additive)[0]``."""
        return model.encoder

    def tf_rewrites(self, scope: str | None = None) -> list[Callable[[onnx.ModelProto], Any]]:
        """Return the in-place rewrites the encoder's ONNX graph gets before onnx-tf converts it.

        ``scope``: the name prefix of the transformer's nodes in that graph (default: the embedding encoder's,
        ``TRANSFORMER_SCOPE``; a reranker's classifier names them otherwise).

        The defaults: TFLite-friendly GELU and boolean Expand (the TFLite target converts the
        SavedModel), and dense layers as 2-D MatMuls (TensorFlow's speed).
        """
        from ..graphs.onnx_for_tf import weight_matmuls_as_2d
        from ..graphs.onnx_for_tflite import tflite_friendly

        return [tflite_friendly, weight_matmuls_as_2d]

    def for_model(self, model: torch.nn.Module) -> "Architecture":
        """Return the architecture calling the loaded transformers ``model`` (itself; the model's own code's,
        exporter/architectures/remote.py, reads what its forward takes)."""
        return self

    def describe(self) -> dict[str, Any]:
        """Return what the manifest records about the architecture."""
        return {"model_type": self.model_type, "token_type_ids": self.takes_token_type_ids,
                "ort_optimizer": self.ort_optimizer_type or f"none: {self.no_fusion_reason}"}


def register(cls: type[Architecture]) -> type[Architecture]:
    """Class decorator: make ``cls`` the architecture of ``config.json`` files with its ``model_type``."""
    _ARCHITECTURES[cls.model_type] = cls
    return cls


def _load_all() -> None:
    import_submodules(__name__, __path__)


def architecture(model_type: str | None) -> Architecture | None:
    """Return the architecture registered for ``model_type``, or None."""
    _load_all()
    cls = _ARCHITECTURES.get(str(model_type))
    return cls() if cls else None


def supported() -> list[str]:
    """Return every registered ``model_type``."""
    _load_all()
    return sorted(_ARCHITECTURES)
