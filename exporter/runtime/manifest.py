"""Reading an export's ``manifest.json``, its fields checked: the runtime (``exporter.load``), ``check`` and
``--add`` read it through :func:`read_manifest`; :mod:`exporter.manifest` writes it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ArtifactNotFoundError, InvalidManifestError
from .truncation import truncate_dim_problem

MANIFEST = "manifest.json"


#: the fields the readers of a manifest use (``--add``, ``check``), with their JSON types
FIELDS: dict[str, type] = {"source": dict, "source.path": str, "source.weights_sha256": dict, "source.modules": list,
                           "tokenizer": dict, "output": dict, "output.shape": list, "targets": dict}
TARGET_FIELDS: dict[str, type] = {"files": dict}
FILE_FIELDS: dict[str, type] = {"bytes": int, "sha256": str}
#: the model kinds an export may hold (``manifest["kind"]``; exporter/kinds registers the builders of each)
KINDS = ("embedding", "reranker", "sparse", "static")
JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "an integer"}


def _type_problems(value: Any, kind: type, name: str) -> list[str]:
    """Return ["NAME: expected ..., found ..."] when ``value`` is not of JSON type ``kind``, else []."""
    if isinstance(value, kind) and not isinstance(value, bool):
        return []
    found = "nothing (missing)" if value is None else f"{type(value).__name__} {json.dumps(value)[:40]}"
    return [f"{name}: expected {JSON_TYPES[kind]}, found {found}"]


def _field_problems(data: dict[str, Any], fields: dict[str, type], prefix: str = "") -> list[str]:
    """Return the problems of the ``fields`` ("a.b" for nested ones) of ``data``."""
    problems = []
    for name, kind in fields.items():
        value: Any = data
        for key in name.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        problems += _type_problems(value, kind, prefix + name)
    return problems


def _target_problems(name: str, entry: Any) -> list[str]:
    """Return the problems of one ``targets`` entry: its files' and variants' sizes and sha256."""
    prefix = f"targets.{name}"
    problems = _type_problems(entry, dict, prefix) or _field_problems(entry, TARGET_FIELDS, f"{prefix}.")
    if problems:
        return problems
    for file, row in entry["files"].items():
        problems += _type_problems(row, dict, f"{prefix}.files.{file}") or _field_problems(
            row, FILE_FIELDS, f"{prefix}.files.{file}.")
    variants = entry.get("variants", {})
    problems += _type_problems(variants, dict, f"{prefix}.variants")
    for variant, row in (variants.items() if isinstance(variants, dict) else ()):
        fields = {"file": str, **(FILE_FIELDS if isinstance(row, dict) and "sha256" in row else {})}
        problems += _type_problems(row, dict, f"{prefix}.variants.{variant}") or _field_problems(
            row, fields, f"{prefix}.variants.{variant}.")
    return problems


def manifest_problems(data: Any) -> list[str]:
    """Return one line per field of a parsed manifest.json that is missing or of the wrong type (every field
    ``--add`` and ``check`` read: the source model, the targets and their files' sizes and sha256)."""
    if not isinstance(data, dict):
        return _type_problems(data, dict, "the document")
    problems = _field_problems(data, FIELDS)
    if data.get("kind", "embedding") not in KINDS:
        problems.append(f"kind: {json.dumps(data['kind'])[:40]}; this version of st-exporter reads {', '.join(KINDS)}")
    if "truncate_dim" in data and truncate_dim_problem(data["truncate_dim"]):  # optional: exports with truncation
        problems.append(f"truncate_dim: {truncate_dim_problem(data['truncate_dim'])}")
    for name, entry in (data["targets"].items() if isinstance(data.get("targets"), dict) else ()):
        problems += _target_problems(name, entry)
    return problems


def read_manifest(out: Path) -> dict[str, Any]:
    """Return ``OUT/manifest.json``, its fields checked.

    Raises:
        ArtifactNotFoundError: ``out`` has no manifest.json.
        InvalidManifestError: the file is not JSON, or a field is missing or of the wrong type (each one named).
    """
    path = out / MANIFEST
    if not path.is_file():
        raise ArtifactNotFoundError(f"{out}: no manifest.json; pass a directory written by st-export")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidManifestError(f"{path}: not valid JSON ({exc}); re-run st-export (--force) to write the export "
                                   "again") from None
    problems = manifest_problems(data)
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems[:10])
        raise InvalidManifestError(f"{path} is not an st-export manifest ({len(problems)} problem(s)):\n{lines}\n"
                                   "re-run st-export (--force) to write the export again")
    return data
