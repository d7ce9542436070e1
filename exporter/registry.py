"""Plug-in discovery shared by the module, architecture and target registries."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Iterable


def import_submodules(package: str, path: Iterable[str]) -> None:
    """Import every module of a package so that its ``@register`` decorators run."""
    for info in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{info.name}")
