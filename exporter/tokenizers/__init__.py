"""Tokenizer families, one folder each, on one shared layer; listed once in :data:`FAMILIES`.

``shared/`` holds the contract (:class:`~.shared.family.TokenizerSpec`, :class:`~.shared.family.Family`)
and what every family uses: code points, the framing (specials, truncation, padding, masks) once per
graph language, the string and code-point graph pieces. ``<family>/`` reads the reference tokenizer
(``spec.py``) and emits it (``emit_onnx.py``, ``emit_tf.py``); its ``__init__.py`` registers it.
``reference.py`` loads the reference: the tokenizer ``SentenceTransformer`` itself uses.
Adding a family is adding its folder and its name here (docs/contributing.md).
"""
from __future__ import annotations

import importlib
import json
from typing import Any

from ..modules.transformer import TransformerConfig
from .reference import prompt_length, reference_tokenizer, vocabulary_problems
from .shared.family import Family, TokenizerSpec, registry

__all__ = ["FAMILIES", "families", "prompt_length", "read_tokenizer", "reference_tokenizer", "vocabulary_problems"]

#: the families, by folder name
FAMILIES = ("wordpiece", "unigram", "bpe", "spbpe")


def families() -> dict[str, Family]:
    """Return {family name: Family} of every family in :data:`FAMILIES` (each registers itself on import)."""
    for name in FAMILIES:
        importlib.import_module(f"{__name__}.{name}")
    return registry()


def family_of(data: dict[str, Any]) -> Family | None:
    """Return the family that reads the backend tokenizer JSON ``data``: of those reading its model type, the one
    whose ``claims`` takes it, else the one without ``claims``; None when no family reads it."""
    model_type = data.get("model", {}).get("type")
    readers = [family for family in families().values() if model_type in family.model_types]
    claimed = [family for family in readers if family.claims and family.claims(data)]
    return next(iter(claimed or [family for family in readers if not family.claims]), None)


def read_tokenizer(transformer: TransformerConfig, problems: list[str], reference: Any = None) -> TokenizerSpec | None:
    """Return the spec of the model's tokenizer, or None after appending why it is unsupported.

    ``reference``: the tokenizer the model runs, where it is not transformers' tokenizer of the folder
    (a ``StaticEmbedding`` runs its ``tokenizer.json`` as a ``tokenizers.Tokenizer``; see :func:`reference_tokenizer`).
    """
    tokenizer = reference_tokenizer(transformer) if reference is None else reference
    mismatch = vocabulary_problems(transformer, tokenizer)
    problems.extend(mismatch)  # reported with any family problem below
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    model_type = data.get("model", {}).get("type")
    family = family_of(data)
    if family is None:
        supported = sorted({t for f in families().values() for t in f.model_types})
        problems.append(f"tokenizer model {model_type!r} in {transformer.folder}; supported: {', '.join(supported)}")
        return None
    spec = family.spec.read(data, tokenizer, transformer, problems)
    return None if mismatch else spec
