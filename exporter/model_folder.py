"""The files of a model folder that may be read: none outside it.

The exporter, transformers and sentence-transformers read what ``modules.json`` and the config files
name. A path with ``..``, an absolute path or a symlink out of the folder (``tokenizer.json -> /etc/passwd``)
would make them read another file, fail far from the cause, or prove parity against something that is
not the model. :func:`outside_problems` lists every such entry before anything is read or loaded.

Symlinks that stay inside the folder are kept. So are the symlinks of a Hugging Face hub cache: a
snapshot ``models--<org>--<name>/snapshots/<revision>/`` holds links to ``../../blobs/<sha>``, outside
the snapshot folder but inside the cache's own ``blobs/`` of that repository.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

#: the fix every refusal names
FIX = ("copy the model into one folder that holds all its files (cp -rL follows the links) and give modules.json "
       "paths relative to it")


def allowed_roots(folder: Path) -> tuple[Path, ...]:
    """Return the folders a file of ``folder`` may resolve into: itself, and a hub cache's ``blobs/``.

    Args:
        folder: the model folder, resolved.
    """
    snapshots = folder.parent
    if snapshots.name == "snapshots" and snapshots.parent.name.startswith("models--"):
        return folder, Path(os.path.realpath(snapshots.parent / "blobs"))
    return (folder,)


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(root) for root in roots)


def _module_path_problem(index: int, raw: Any) -> str | None:
    """Return why a ``modules.json`` path is refused as written (sentence-transformers refuses the same)."""
    if not isinstance(raw, str):
        return f"modules.json entry {index} has path {raw!r}; expected a folder name relative to the model folder"
    if "\0" in raw:
        return f"modules.json entry {index} has path {raw!r}, with a NUL character"
    if PureWindowsPath(raw).anchor or PurePosixPath(raw).is_absolute() or ".." in PureWindowsPath(raw).parts:
        return f"modules.json entry {index} has path {raw!r}, which leaves the model folder"
    return None


def _links_out(folder: Path, roots: tuple[Path, ...], where: str) -> list[str]:
    """Return one problem per entry of ``folder`` (not its subfolders) that resolves outside ``roots``."""
    if not folder.is_dir():
        return []
    return [f"{where}{child.name} resolves to {os.path.realpath(child)}, outside the model folder"
            for child in sorted(folder.iterdir()) if not _inside(child, roots)]


def root_problems(folder: Path) -> list[str]:
    """Return the files directly in the model folder (modules.json, the configs, the tokenizer, the weights)
    that resolve outside it; checked before modules.json is read.

    Args:
        folder: the model folder, resolved.
    """
    return _links_out(folder, allowed_roots(folder), "")


def module_problems(folder: Path, paths: list[Any]) -> list[str]:
    """Return the ``modules.json`` paths that leave the model folder, as written or through a symlink, and the
    files of each module folder that resolve outside it.

    Args:
        folder: the model folder, resolved.
        paths: the ``path`` of each ``modules.json`` entry, in order.
    """
    roots = allowed_roots(folder)
    problems = []
    for index, raw in enumerate(paths):
        problem = _module_path_problem(index, raw)
        if problem:
            problems.append(problem)
        elif not PurePosixPath(raw).parts:
            continue  # the model folder itself: root_problems checked its files
        elif not _inside(folder / raw, roots):
            problems.append(f"modules.json entry {index} has path {raw!r}, which resolves to "
                            f"{os.path.realpath(folder / raw)}, outside the model folder")
        else:
            problems.extend(_links_out(folder / raw, roots, f"modules.json entry {index}: {raw.rstrip('/')}/"))
    return problems


def refusal(folder: Path, problems: list[str]) -> str:
    """Return the message of an InvalidModelError listing every path that leaves ``folder``."""
    lines = "\n".join(f"  - {p}" for p in problems)
    return (f"{folder}: the model would read files outside its folder; refused before anything is loaded "
            f"(symlinks that stay inside it, or lead from a Hugging Face cache snapshot into its blobs/, are "
            f"allowed):\n{lines}\n  fix: {FIX}")
