"""The reference tokenizer: the one ``SentenceTransformer`` itself uses, and what makes it unfit to compare against.

transformers' fast tokenizer for the folder, with ST's ``do_lower_case`` applied the way ST applies it.
Parity against a tokenizer that is not the model's proves nothing, so :func:`vocabulary_problems`
refuses it before anything is built.
"""
from __future__ import annotations

import base64
import binascii
import json
import struct
from pathlib import Path
from typing import Any, Iterator

from ..errors import InvalidModelError
from ..modules.transformer import TransformerConfig


def reference_tokenizer(transformer: TransformerConfig) -> Any:
    """Return the transformers tokenizer SentenceTransformer would use for this folder.

    Its ``backend_tokenizer`` (a ``tokenizers.Tokenizer``) carries ST's ``do_lower_case``.
    """
    from tokenizers.normalizers import Lowercase
    from tokenizers.normalizers import Sequence as NormalizerSequence
    from transformers import AutoTokenizer

    unreadable = unreadable_charsmaps(transformer.folder / "tokenizer.json")
    if unreadable:
        raise InvalidModelError(unreadable)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            str(transformer.folder), local_files_only=True, trust_remote_code=transformer.trust_remote_code
        )
    except BaseException as exc:  # transformers raises OSError/ValueError/KeyError... for bad files
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # KeyboardInterrupt, SystemExit; a Rust panic in tokenizers derives from BaseException too
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


def _charsmaps(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Yield (JSON path, value) of every ``precompiled_charsmap`` under ``node``."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key == "precompiled_charsmap":
                yield here, value
            else:
                yield from _charsmaps(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _charsmaps(value, f"{path}[{index}]")


def _charsmap_fault(value: Any) -> str:
    """Return what keeps ``value`` from being a SentencePiece character map ("" when nothing does)."""
    if value is None:
        return ""
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        return "not base64"
    if len(raw) < 4 or struct.unpack("<I", raw[:4])[0] + 4 > len(raw):
        return "empty" if not raw else f"{len(raw)} bytes, shorter than the trie its header announces"
    return ""


def unreadable_charsmaps(path: Path) -> str:
    """Return why ``path``'s precompiled character maps cannot be read ("" when they can, or there is no such file).

    The tokenizers library panics on such a map (a ``pyo3_runtime.PanicException``, which ``except Exception``
    does not catch, after printing a Rust backtrace); the same file named with its field reads better.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""  # no file, or one transformers names as unreadable
    faults = [f"{where} is {fault} ({value!r:.40})" for where, value in _charsmaps(data, "")
              for fault in [_charsmap_fault(value)] if fault]
    if not faults:
        return ""
    return (f"{path}: {'; '.join(faults)}: the tokenizers library cannot load a SentencePiece normalizer without its "
            "character map. Write the map the tokenizer was trained with (SentencePiece's "
            "normalizer_spec.precompiled_charsmap, base64), or save the tokenizer again with transformers")


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
        clashes = added_token_clashes(folder / "tokenizer.json")
        if clashes:
            return [f"{folder / 'tokenizer.json'}: {'; '.join(clashes)}: transformers gives it a new id, one more "
                    f"entry ({size}) than the embedding matrix has rows ({rows}). Give the added token the vocabulary's own content, or an id "
                    "of its own (and a row for it)"]
        return [f"{folder}: the tokenizer has {size} entries but the embedding matrix has {rows} rows (config.json "
                "vocab_size): they are not the same model's. Put the model's own tokenizer files beside its weights"]
    return []


def added_token_clashes(path: Path) -> list[str]:
    """Return each added token of the tokenizer.json at ``path`` whose id its vocabulary gives to another piece,
    named (transformers moves such a token to a new id at the end, without a word)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    vocab = data.get("model", {}).get("vocab") or {}
    piece_of = ({index: entry[0] for index, entry in enumerate(vocab)} if isinstance(vocab, list)
                else {index: piece for piece, index in vocab.items()})
    return [f"added token {added['content']!r} has id {added['id']}, which the vocabulary gives to "
            f"{piece_of[added['id']]!r}" for added in data.get("added_tokens", [])
            if added.get("id") in piece_of and piece_of[added["id"]] != added.get("content")]


def prompt_length(transformer: TransformerConfig, prompt: str) -> int:
    """Return the tokens ST's pooling skips for ``prompt``: its ids less a trailing special token."""
    tokenizer = reference_tokenizer(transformer)
    ids = tokenizer([prompt])["input_ids"][0]
    return len(ids) - 1 if ids and ids[-1] in tokenizer.all_special_ids else len(ids)
