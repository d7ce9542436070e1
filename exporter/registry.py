"""Plug-in discovery shared by the module, tokenizer and target registries."""
from __future__ import annotations

import importlib
import pkgutil
from typing import Iterable


def import_submodules(package: str, path: Iterable[str], *, skip_suffixes: tuple[str, ...] = ()) -> None:
    """Import every module of a package (but those ending in ``skip_suffixes``) so ``@register`` runs."""
    for info in pkgutil.iter_modules(path):
        if not info.name.endswith(skip_suffixes) if skip_suffixes else True:
            importlib.import_module(f"{package}.{info.name}")
