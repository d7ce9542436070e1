"""``manifest.json``: what was exported, from what, with which libraries, and how close it is."""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any

from .files import read_json, sha256_of

MANIFEST = "manifest.json"
LIBRARIES = ("st-exporter", "torch", "transformers", "tokenizers", "sentence-transformers", "onnx", "onnxruntime",
             "onnxruntime-extensions", "numpy", "safetensors", "tensorflow", "tensorflow-text", "onnx-tf",
             "ai-edge-litert")


def library_versions() -> dict[str, str]:
    """Return the installed version of every library the exporter may use (installed ones only)."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def file_rows(files: list[Path], root: Path) -> dict[str, dict[str, Any]]:
    """Return {relative path: {bytes, sha256}} for the files a target wrote."""
    return {str(f.relative_to(root)): {"bytes": f.stat().st_size, "sha256": sha256_of(f)} for f in files}


def min_runtime() -> dict[str, Any]:
    """Return the runtime versions the artifacts are proven with, the oldest we stand behind.

    ``examples/java/pom.xml`` pins the same ONNX Runtime / onnxruntime-extensions versions.
    """
    versions = library_versions()
    ort, ortx = versions.get("onnxruntime"), versions.get("onnxruntime-extensions")
    return {
        "onnxruntime": ort, "onnxruntime-extensions": ortx,
        "maven": {"com.microsoft.onnxruntime:onnxruntime": ort, "com.microsoft.onnxruntime:onnxruntime-extensions": ortx},
        "tensorflow": versions.get("tensorflow"), "tensorflow-text": versions.get("tensorflow-text"),
        "note": "the versions every artifact was checked with; older releases are untested",
    }


def new_manifest(spec: Any) -> dict[str, Any]:
    """Return the manifest's source-model part."""
    return {
        "format": 1,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": {"path": str(spec.path), "weights_sha256": spec.weight_files, "modules": spec.describe(),
                   "embedding_dim": spec.embedding_dim},
        "tokenizer": spec.tokenizer.describe(),
        "libraries": library_versions(),
        "min_runtime": min_runtime(),
        "input": {"name": "text", "type": "string", "shape": ["batch"]},
        "output": {"name": "sentence_embedding", "type": "float32", "shape": ["batch", spec.embedding_dim]},
        "empty_batch": "a batch of 0 texts returns a [0, D] embedding and [0, 0] token arrays",
        "targets": {},
    }


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_manifest(out: Path) -> dict[str, Any]:
    return read_json(out / MANIFEST)  # type: ignore[return-value]
