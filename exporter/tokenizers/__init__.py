"""Tokenizer families, one file per family, registered by the HF ``tokenizers`` model types they read.

``family.py`` holds the contract (:class:`TokenizerFamily`, its contributor guide) and the
framing every family shares; ``framing_onnx.py`` / ``framing_tf.py`` write the framing once per
graph language around a family's emitter. The reference tokenizer is the one
``SentenceTransformer`` itself uses: transformers' fast tokenizer for the folder, with ST's
``do_lower_case`` applied the way ST applies it.
"""
from __future__ import annotations

import json
from typing import Any

from ..errors import InvalidModelError
from ..registry import import_submodules
from ..modules.transformer import TransformerConfig
from .family import TokenizerFamily

_FAMILIES: dict[str, type[TokenizerFamily]] = {}


def register(cls: type[TokenizerFamily]) -> type[TokenizerFamily]:
    """Class decorator: make ``cls`` the spec of tokenizers whose model type is one of ``cls.model_types``."""
    for model_type in cls.model_types:
        _FAMILIES[model_type] = cls
    return cls


def families() -> dict[str, type[TokenizerFamily]]:
    """Return {family name: spec class} of every registered family."""
    _load_all()
    return {cls.family: cls for cls in _FAMILIES.values()}


def _load_all() -> None:
    # emitters (``*_onnx``, ``*_tf``) are imported by the targets that need them: TensorFlow is heavy
    import_submodules(__name__, __path__, skip_suffixes=("_onnx", "_tf"))


def reference_tokenizer(transformer: TransformerConfig) -> Any:
    """Return the transformers tokenizer SentenceTransformer would use for this folder.

    Its ``backend_tokenizer`` (a ``tokenizers.Tokenizer``) carries ST's ``do_lower_case``.
    """
    from tokenizers.normalizers import Lowercase
    from tokenizers.normalizers import Sequence as NormalizerSequence
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(transformer.folder), local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:  # transformers raises OSError/ValueError/KeyError... for bad files
        raise InvalidModelError(
            f"{transformer.folder}: cannot load the tokenizer ({type(exc).__name__}: {exc}); "
            "it needs tokenizer.json or vocab.txt with tokenizer_config.json"
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidModelError(f"{transformer.folder}: the tokenizer has no fast (tokenizers) backend")
    backend = tokenizer.backend_tokenizer
    if transformer.do_lower_case:
        normalizer = backend.normalizer
        has_lower = isinstance(normalizer, Lowercase) or (
            isinstance(normalizer, NormalizerSequence) and any(isinstance(n, Lowercase) for n in normalizer)
        )
        if not has_lower:
            parts = [Lowercase()] + (list(normalizer) if isinstance(normalizer, NormalizerSequence)
                                     else [normalizer] if normalizer is not None else [])
            backend.normalizer = NormalizerSequence(parts)
    return tokenizer


#: files a tokenizer's vocabulary comes from; without one transformers builds a 5-token tokenizer silently
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model",
                    "vocab.json")
#: rows an embedding matrix may have beyond the tokenizer's entries (matrices are padded to a multiple of 8-128)
PADDED_ROWS = 128


def vocabulary_problems(transformer: TransformerConfig, tokenizer: Any) -> list[str]:
    """Return why the tokenizer is not the model's: no vocabulary file, or a size the embedding matrix does not fit.

    Parity against such a reference proves nothing: it tokenizes with the same wrong vocabulary.
    """
    folder = transformer.folder
    if not any((folder / name).is_file() for name in VOCABULARY_FILES):
        return [f"{folder}: no tokenizer vocabulary ({', '.join(VOCABULARY_FILES)}); transformers would build a "
                "placeholder tokenizer that maps every word to the unknown token. Save the model with its tokenizer "
                "(SentenceTransformer.save writes tokenizer.json)"]
    size, rows = len(tokenizer), transformer.vocab_rows
    if rows and not rows - PADDED_ROWS <= size <= rows:
        return [f"{folder}: the tokenizer has {size} entries but the embedding matrix has {rows} rows (config.json "
                "vocab_size): they are not the same model's. Put the model's own tokenizer files beside its weights"]
    return []


def read_tokenizer(transformer: TransformerConfig, problems: list[str]) -> TokenizerFamily | None:
    """Return the spec of the model's tokenizer, or None after appending why it is unsupported."""
    _load_all()
    tokenizer = reference_tokenizer(transformer)
    mismatch = vocabulary_problems(transformer, tokenizer)
    problems.extend(mismatch)  # reported with any family problem below
    backend = tokenizer.backend_tokenizer
    data = json.loads(backend.to_str())
    model_type = data.get("model", {}).get("type")
    family = _FAMILIES.get(model_type)
    if family is None:
        problems.append(
            f"tokenizer model {model_type!r} in {transformer.folder}; supported: {', '.join(sorted(_FAMILIES))}"
        )
        return None
    spec = family.read(data, tokenizer, transformer, problems)
    return None if mismatch else spec


def prompt_length(transformer: TransformerConfig, prompt: str) -> int:
    """Return the tokens ST's pooling skips for ``prompt``: its ids less a trailing special token."""
    tokenizer = reference_tokenizer(transformer)
    ids = tokenizer([prompt])["input_ids"][0]
    return len(ids) - 1 if ids and ids[-1] in tokenizer.all_special_ids else len(ids)
