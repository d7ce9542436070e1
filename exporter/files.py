"""Reading a model's files: JSON configs and weights, with errors that name the file."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidModelError

if TYPE_CHECKING:
    import torch

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def read_json(path: Path, *, required: bool = True) -> dict[str, Any] | list[Any] | None:
    """Return the parsed JSON of ``path``.

    Raises:
        InvalidModelError: the file is missing (when ``required``) or is not valid JSON.
    """
    if not path.is_file():
        if required:
            raise InvalidModelError(f"{path}: file not found")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidModelError(f"{path}: not valid JSON ({exc}); restore the file from the original model") from None


def weights_file(folder: Path) -> Path | None:
    """Return the weight file of a module folder, safetensors first, or None."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def weights_problem(path: Path) -> str | None:
    """Return why a weight file cannot be read (truncated, not safetensors, refused by the weights-only
    loader), or None; checked while reading the model, before anything is built."""
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as handle:  # validates the header against the file's length
                handle.keys()
        else:
            import torch

            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # safetensors and torch raise many types for a bad file
        return (f"{path}: cannot read the weights ({type(exc).__name__}: {str(exc)[:200]}); restore the file from "
                "the original model (a weights-only load: pickles with code are refused)")
    return None


def load_state_dict(folder: Path) -> dict[str, torch.Tensor]:
    """Return the tensors of a module folder (safetensors, else a weights-only torch pickle)."""
    path = weights_file(folder)
    if path is None:
        raise InvalidModelError(f"{folder}: no weights ({' or '.join(WEIGHT_FILES)})")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt file raises many library-specific types
        raise InvalidModelError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from None


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
