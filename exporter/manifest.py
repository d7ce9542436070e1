"""``manifest.json``: what was exported, from what, with which libraries, and how close it is."""
from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
from pathlib import Path
from typing import Any

from . import kinds
from .files import sha256_of
from .runtime.manifest import MANIFEST

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
        "kind": spec.kind,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": {"path": str(spec.path), "weights_sha256": spec.weight_files, "config_sha256": config_hashes(spec),
                   "modules": spec.describe(), "embedding_dim": spec.source_dim, **remote_code(spec)},
        **({"truncate_dim": spec.truncate_dim} if spec.truncate_dim is not None else {}),
        "tokenizer": spec.tokenizer.describe(),
        "libraries": library_versions(),
        "min_runtime": min_runtime(),
        **kinds.get(spec.kind).manifest_io(spec),
        "targets": {},
    }


#: the files besides the weights that decide what a model computes: modules.json, each module's config, the
#: prompts (config_sentence_transformers.json), max_seq_length (sentence_bert_config.json), the tokenizer's files
#: (tokenizer.json, vocab.txt, merges.txt, sentencepiece .model...); READMEs and other formats' weights are not
CONFIG_SUFFIXES = (".json", ".txt", ".model")
#: keys saying which library versions wrote a config file, not what the model computes
VERSION_KEYS = ("__version__", "transformers_version")


def remote_code(spec: Any) -> dict[str, Any]:
    """Return the source's ``remote_code`` entry: the model's own code that ran (--trust-remote-code) and its files'
    sha256 ({} when transformers' own class loaded the model)."""
    code = getattr(spec.modules[0].config, "remote_code", None)
    return {"remote_code": code.describe()} if code is not None else {}


def config_hashes(spec: Any) -> dict[str, str]:
    """Return {path relative to the model folder: sha256} of the model's config and tokenizer files (see
    ``CONFIG_SUFFIXES``), in the model folder and each module's; ``--add`` compares them with the export's."""
    folders = dict.fromkeys([spec.path, *(module.entry.folder for module in spec.modules)])
    files = sorted({f for folder in folders if folder.is_dir() for f in folder.iterdir()
                    if f.is_file() and f.suffix in CONFIG_SUFFIXES and not f.name.startswith(".")})
    return {os.path.relpath(f, spec.path): _config_sha256(f) for f in files}


def _config_sha256(path: Path) -> str:
    """Return the sha256 of a config file; of a JSON object without its ``VERSION_KEYS`` (a model saved again by a
    newer library computes the same)."""
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            data = None
        if isinstance(data, dict):
            kept = {key: value for key, value in data.items() if key not in VERSION_KEYS}
            return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()
    return sha256_of(path)


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
