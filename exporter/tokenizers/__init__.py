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
FAMILIES = ("wordpiece", "unigram", "bpe")


def families() -> dict[str, Family]:
    """Return {family name: Family} of every family in :data:`FAMILIES` (each registers itself on import)."""
    for name in FAMILIES:
        importlib.import_module(f"{__name__}.{name}")
    return registry()


def read_tokenizer(transformer: TransformerConfig, problems: list[str], reference: Any = None) -> TokenizerSpec | None:
    """Return the spec of the model's tokenizer, or None after appending why it is unsupported.

    ``reference``: the tokenizer the model runs, where it is not transformers' tokenizer of the folder
    (a ``StaticEmbedding`` runs its ``tokenizer.json`` as a ``tokenizers.Tokenizer``; see :func:`reference_tokenizer`).
    """
    by_model_type = {model_type: family for family in families().values() for model_type in family.model_types}
    tokenizer = reference_tokenizer(transformer) if reference is None else reference
    mismatch = vocabulary_problems(transformer, tokenizer)
    problems.extend(mismatch)  # reported with any family problem below
    data = json.loads(tokenizer.backend_tokenizer.to_str())
    model_type = data.get("model", {}).get("type")
    family = by_model_type.get(model_type)
    if family is None:
        problems.append(
            f"tokenizer model {model_type!r} in {transformer.folder}; supported: {', '.join(sorted(by_model_type))}"
        )
        return None
    spec = family.spec.read(data, tokenizer, transformer, problems)
    return None if mismatch else spec
