"""Shared by the serving-layout targets (Triton, TF Serving): the served model's name and file placement."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from .errors import InvalidOptionError

#: what Triton's model repository and TF Serving's REST paths (/v1/models/<name>:predict) both accept
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def sanitized_name(text: str) -> str:
    """Return ``text`` reduced to a valid served-model name ("model" when nothing is left)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)
    name = re.sub(r"-{2,}", "-", name).strip("-_.")[:64].rstrip("-_.")
    return name or "model"


def model_name(spec: Any, options: dict[str, Any]) -> str:
    """Return the served model's name: ``options["name"]``, else derived from the source folder.

    Raises:
        InvalidOptionError: ``options["name"]`` is not 1-64 characters of letters, digits, ``_ . -``
            starting with a letter or digit.
    """
    given = options.get("name")
    if given is not None:
        if not isinstance(given, str) or not NAME_PATTERN.match(given):
            raise InvalidOptionError(
                f"model name {given!r} is not valid for Triton / TF Serving: use 1-64 letters, digits, '_', "
                "'.' or '-', starting with a letter or digit (--name)")
        return given
    from .model import default_model_path

    try:
        if Path(spec.path).resolve() == default_model_path().resolve():
            return DEFAULT_MODEL_NAME
    except Exception:  # the default package may be absent; the folder name is used then
        pass
    return sanitized_name(Path(spec.path).resolve().name)


def server_path(path: Any, *, flag: str, server: str) -> str:
    """Return ``path`` if it can stand in a server's config file: absolute (the configs are protobuf messages:
    the text format escapes any character).

    Raises:
        InvalidOptionError: it cannot (the server resolves the path on its own machine or container).
    """
    if not str(path).startswith("/"):
        raise InvalidOptionError(f"{flag} {path!r}: give an absolute path as {server} sees it")
    return str(path)


def link_or_copy(source: Path, target: Path) -> Path:
    """Place ``source`` at ``target`` as a hard link (no extra disk), or a copy across filesystems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


def link_tree(source: Path, target: Path) -> list[Path]:
    """Place every file under ``source`` at the same relative path under ``target``; return them."""
    placed = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir():
            (target / relative).mkdir(parents=True, exist_ok=True)
        else:
            placed.append(link_or_copy(path, target / relative))
    target.mkdir(parents=True, exist_ok=True)
    return placed
