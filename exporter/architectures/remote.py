"""A model's own modeling code (``config.json`` ``auto_map``), run only with ``--trust-remote-code``.

How transformers 5.23 resolves ``auto_map`` (``models/auto/configuration_auto.py``, ``auto_factory.py``,
``dynamic_module_utils.get_class_from_dynamic_module``):

* ``"module.Class"``: ``module.py`` in the model folder, copied with the files it imports relatively into
  ``HF_MODULES_CACHE`` and imported from there;
* ``"repo--module.Class"``: ``module.py`` of the hub repository ``repo`` (or its copy in the download cache),
  never the folder's, even with ``local_files_only`` and a file of that name in the folder;
* ``trust_remote_code=False``: a ``model_type`` transformers has its own class for loads that class, the
  ``auto_map`` unread; any other ``model_type`` is refused;
* ``trust_remote_code=True``: the ``auto_map`` code is loaded in place of transformers' own class.

So the exporter runs a folder's code only with the flag and only when every reference is ``"module.Class"`` with its
file in the folder: a ``"repo--…"`` reference is refused by name, its code being elsewhere. The architecture of a model
whose own code runs is :class:`RemoteCode`, whatever its ``model_type``: nothing is known of that code but its forward,
so it gets no ORT fusion and is called as sentence-transformers calls it (the inputs its forward names).
"""
from __future__ import annotations

import inspect
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import onnx
import torch

from . import Architecture

#: the ``auto_map`` classes a SentenceTransformer's Transformer loads (its config and its model)
LOADED_CLASSES = ("AutoConfig", "AutoModel")
FLAG = "--trust-remote-code (export(trust_remote_code=True))"


@dataclass(frozen=True)
class RemoteCodeFiles:
    """The model's own code that runs: the ``auto_map`` references and every file they import (name → sha256)."""

    references: dict[str, str]
    files: dict[str, str]

    def describe(self) -> dict[str, Any]:
        """Return what the manifest records: that the folder's code ran, and which files."""
        return {"ran": True, "auto_map": self.references, "files_sha256": self.files}


class RemoteCode(Architecture):
    """The architecture of a model whose own modeling code runs (not registered: any ``model_type`` may have it)."""

    ort_optimizer_type = None
    no_fusion_reason = ("the model's own modeling code (--trust-remote-code): ONNX Runtime's fusions are matched to "
                        "transformers' classes, not to it")
    takes_token_type_ids = True

    def __init__(self, model_type: str):
        self.model_type = model_type

    def tf_rewrites(self, scope: str | None = None) -> list[Callable[[onnx.ModelProto], Any]]:
        """The defaults; integer Divs (``size // heads`` of a shape, common in hand-written attention) divided in
        float32, as TFLite has no integer RealDiv."""
        from ..graphs.onnx_for_tflite import integer_div_in_float32

        return [*super().tf_rewrites(scope), integer_div_in_float32]

    def for_model(self, model: torch.nn.Module) -> "RemoteCode":
        """Return this architecture feeding ``model`` what sentence-transformers feeds it: the token arrays its
        forward names (sentence-transformers 6.2's Transformer filters the features by that signature too)."""
        bound = copy(self)
        bound.takes_token_type_ids = "token_type_ids" in inspect.signature(model.forward).parameters
        return bound


def loaded_references(config: dict[str, Any]) -> dict[str, str]:
    """Return the ``auto_map`` entries of :data:`LOADED_CLASSES` in ``config`` (class → reference)."""
    auto_map = config.get("auto_map")
    if not isinstance(auto_map, dict):
        return {}
    return {key: str(auto_map[key]) for key in LOADED_CLASSES if key in auto_map}


def native(model_type: Any) -> bool:
    """Return True when transformers has its own class for ``model_type`` (it loads that without the flag)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    return isinstance(model_type, str) and model_type in CONFIG_MAPPING


def runs_remote_code(config: dict[str, Any], *, trusted: bool) -> bool:
    """Return True when transformers would import the folder's code to load this model (with ``trusted`` as the
    flag), False when it loads its own class."""
    return bool(loaded_references(config)) and (trusted or not native(config.get("model_type")))


def _module_file(folder: Path, reference: str) -> Path:
    module = reference.split("--", 1)[-1].rsplit(".", 1)[0]
    return folder / f"{module.replace('.', '/')}.py"


def reference_problems(folder: Path, config: dict[str, Any]) -> list[str]:
    """Return why the folder's ``auto_map`` code cannot be what runs (empty: every file is in the folder)."""
    problems = []
    for key, reference in loaded_references(config).items():
        where = f"{folder / 'config.json'}: auto_map {key} {reference!r}"
        module_file = _module_file(folder, reference)
        if "." not in reference.split("--", 1)[-1]:
            problems.append(f"{where}: not a 'module.Class' reference")
        elif "--" in reference:
            repo, local = reference.split("--", 1)
            held = (f"the {module_file.name} in the folder is not what it would load" if module_file.is_file() else
                    f"{module_file.name} is not in the folder")
            problems.append(f"{where}: transformers loads this code from the hub repository {repo!r} (or its "
                            f"download cache), not from the model folder ({held}); put {module_file.name} and the "
                            f"files it imports in {folder} and set auto_map {key} to {local!r}")
        elif not module_file.is_file():
            problems.append(f"{where}: {module_file.name} is not in {folder}; restore it from the original model")
    return problems + _tokenizer_code_problems(folder)


def _tokenizer_code_problems(folder: Path) -> list[str]:
    """Return the refusal of a tokenizer of the model's own code: the tokenizer graphs are built from the standard
    pieces of tokenizer.json, which a Python tokenizer class need not follow."""
    from ..files import read_json

    where = folder / "tokenizer_config.json"
    config = read_json(where, required=False)
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if isinstance(auto_map, dict) and "AutoTokenizer" in auto_map:
        return [f"{where}: auto_map AutoTokenizer {auto_map['AutoTokenizer']!r}: a tokenizer of the model's own code "
                "is not exported (the tokenizer graphs are built from tokenizer.json); remove the key if its "
                "tokenizer.json is the tokenizer"]
    return []


def remote_code_files(folder: Path, config: dict[str, Any]) -> RemoteCodeFiles:
    """Return the references and the files (with those they import relatively) that transformers would import."""
    from transformers.dynamic_module_utils import get_relative_import_files

    from ..files import sha256_of

    references = loaded_references(config)
    files: set[Path] = set()
    for reference in references.values():
        module_file = _module_file(folder, reference)
        files |= {module_file, *(Path(f) for f in get_relative_import_files(str(module_file)))}
    return RemoteCodeFiles(references=references,
                           files={str(f.resolve().relative_to(folder.resolve())): sha256_of(f) for f in sorted(files)})


def unread_keys_problems(config: dict[str, Any], reader: str, computed_as: dict[str, Any]) -> list[str]:
    """Return the refusal of a config whose keys ``reader`` (the transformers class loaded without the flag) does
    not read, at values other than what it computes as (``computed_as``: key → value; absent or null is that too):
    the hub code of a ``model_type`` transformers has a class for (jina-embeddings-v2: ``bert`` with ALiBi), which
    that class would load silently as another model. Names the model's own code and how it runs."""
    unread = [f"{key} {config[key]!r}" for key, computed in computed_as.items()
              if config.get(key) is not None and config[key] != computed]
    if not unread:
        return []
    reference = loaded_references(config).get("AutoModel")
    if reference is None:
        code = "the code that computes this model is not named in config.json (auto_map AutoModel)"
    else:
        repo, _, local = reference.rpartition("--")
        module = local.rsplit(".", 1)[0].replace(".", "/") + ".py"
        where = (f"put {module} of the hub repository {repo!r} (and the files it imports) in the model folder, set "
                 f"auto_map AutoModel to {local!r}, and pass " if repo else
                 f"keep {module} in the model folder and pass ")
        code = f"the model's own code computes it (auto_map AutoModel {reference!r}): {where}{FLAG}"
    return [f"config.json {', '.join(unread)}: {reader} reads no such key (it computes "
            f"{', '.join(f'{key} {value!r}' for key, value in computed_as.items())}); {code}"]


def untrusted_problem(folder: Path, config: dict[str, Any]) -> str:
    """Return the refusal of a model whose code is its own, met without the flag."""
    references = ", ".join(f"{key} {ref!r}" for key, ref in loaded_references(config).items())
    return (f"{folder / 'config.json'}: model_type {config.get('model_type')!r} has no transformers class; the model's "
            f"own code loads it (auto_map {references}), and st-export runs code from a model folder only with "
            f"{FLAG}: read the folder's .py files, then pass the flag")
