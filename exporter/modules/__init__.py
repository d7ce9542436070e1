"""Converters for sentence-transformers modules, one file per module type.

A converter is a class registered with :func:`register`. It

* names the ``modules.json`` class it converts (``class_name``: the last part of the
  type string, e.g. ``Pooling`` for both ``sentence_transformers.models.Pooling`` and
  the 6.x ``sentence_transformers.sentence_transformer.modules.pooling.Pooling``);
* ``read``s the module's folder into a small typed config, appending every problem it
  finds to ``problems`` instead of raising, so an export fails once with all of them;
* ``build``s a ``torch.nn.Module`` with ST's calling convention (a dict of features in,
  the same dict out) that the encoder export traces.

Adding a module type is adding a file here that defines and registers a converter.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..registry import import_submodules

_REGISTRY: dict[str, type["ModuleConverter"]] = {}


@dataclass(frozen=True)
class ModuleEntry:
    """One row of ``modules.json``."""

    index: int
    name: str
    folder: Path
    type_name: str
    #: ``--trust-remote-code``: the transformer's own modeling code (config.json ``auto_map``) may run
    trust_remote_code: bool = False

    @property
    def class_name(self) -> str:
        return self.type_name.rsplit(".", 1)[-1]


class ModuleConverter:
    """Base class: subclass, set ``class_name`` and ``stage``, implement read/build."""

    class_name: ClassVar[str]
    #: where the module may stand: "transformer" (first), "pooling" (second), "head" (after)
    stage: ClassVar[str]

    def __init__(self, entry: ModuleEntry, config: Any):
        self.entry = entry
        self.config = config

    @classmethod
    def read(cls, entry: ModuleEntry, problems: list[str]) -> Any:
        """Return this module's config, appending what we cannot convert to ``problems``."""
        raise NotImplementedError

    def output_dim(self, input_dim: int) -> int:
        """Return the embedding size this module outputs given the size it receives."""
        return input_dim

    def check_input_dim(self, input_dim: int, problems: list[str]) -> None:
        """Append a problem when this module cannot take an input of ``input_dim``."""

    def build(self) -> torch.nn.Module:
        """Return the torch module that the encoder export traces."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Return the settings recorded in the manifest."""
        return {}


def register(cls: type[ModuleConverter]) -> type[ModuleConverter]:
    """Class decorator: make ``cls`` the converter of modules named ``cls.class_name``."""
    _REGISTRY[cls.class_name] = cls
    return cls


def _load_all() -> None:
    import_submodules(__name__, __path__)


def converter_class(type_name: str) -> type[ModuleConverter] | None:
    """Return the converter registered for a ``modules.json`` type string, or None."""
    _load_all()
    if not type_name.startswith("sentence_transformers."):
        return None
    return _REGISTRY.get(type_name.rsplit(".", 1)[-1])


def supported_class_names() -> list[str]:
    """Return the names of every module class we convert."""
    _load_all()
    return sorted(_REGISTRY)
