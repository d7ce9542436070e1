"""The reference tokenizer: the one ``SentenceTransformer`` itself uses, and what makes it unfit to compare against.

transformers' fast tokenizer for the folder, with ST's ``do_lower_case`` applied the way ST applies it.
Parity against a tokenizer that is not the model's proves nothing, so :func:`vocabulary_problems`
refuses it before anything is built.
"""
from __future__ import annotations

from typing import Any

from ..errors import InvalidModelError
from ..modules.transformer import TransformerConfig


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


def prompt_length(transformer: TransformerConfig, prompt: str) -> int:
    """Return the tokens ST's pooling skips for ``prompt``: its ids less a trailing special token."""
    tokenizer = reference_tokenizer(transformer)
    ids = tokenizer([prompt])["input_ids"][0]
    return len(ids) - 1 if ids and ids[-1] in tokenizer.all_special_ids else len(ids)
