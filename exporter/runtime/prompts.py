"""Named prompts (``encode(prompt_name=...)``, ``encode_query``, ``encode_document``): which graph holds which prompt.

An embedding export holds every prompt of its model (``config_sentence_transformers.json`` ``prompts``, with the
``"query"`` and ``"document"`` prompts SentenceTransformer adds as "" when the file has none). The graph of the
default prompt is the main file (``onnx/model.onnx``, signature ``serving_default``); every other prompt text has its
own graph, named by a *key*: the prompt's name made a valid file-name part and signature key
(``onnx/model.<key>.onnx``, signature ``<key>``). The manifest's ``prompts`` lists them; the builders and
``exporter.load`` both read them through this module (it imports nothing but the errors).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from ..errors import InvalidInputError

#: the prompts SentenceTransformer adds (as "") to every model's ``prompts`` (``SentenceTransformer._default_prompts``)
IMPLICIT_PROMPTS = ("query", "document")
#: the prompt names ``encode_document`` tries, in this order, when given none (SentenceTransformer.encode_document)
DOCUMENT_PROMPTS = ("document", "passage", "corpus")
#: signature names the exports already use for something else
RESERVED_KEYS = ("serving_default", "tokenize")
_NOT_IN_KEY = re.compile(r"[^A-Za-z0-9_]+")


def prompt_key(name: str) -> str:
    """Return ``name`` as a signature key and file-name part: runs of other characters than ASCII letters, digits and
    ``_`` become one ``_``; a key that would not start with a letter gets ``p_`` in front ("1st" → "p_1st")."""
    key = _NOT_IN_KEY.sub("_", name).strip("_") or "prompt"
    return key if key[0].isalpha() else f"p_{key}"


def key_problems(names: list[str]) -> list[str]:
    """Return why the prompt names cannot each have their own key: two names made the same key, or a reserved one."""
    by_key: dict[str, list[str]] = {}
    for name in names:
        by_key.setdefault(prompt_key(name), []).append(name)
    problems = [f"prompts {names_!r} all become the signature key {key!r}: rename one of them in "
                "config_sentence_transformers.json" for key, names_ in by_key.items() if len(names_) > 1]
    problems += [f"prompt {names_[0]!r} becomes the signature key {key!r}, which the export uses for another "
                 "signature: rename it in config_sentence_transformers.json"
                 for key, names_ in by_key.items() if key in RESERVED_KEYS]
    return problems


def prompt_file(main: str, key: str) -> str:
    """Return the file of the prompt graph ``key`` beside the main file ``main`` ("model.onnx", "query" →
    "model.query.onnx"; ``key`` "": ``main``)."""
    stem, dot, suffix = main.rpartition(".")
    return f"{stem}.{key}.{suffix}" if key else main


def graph_keys(prompts: Mapping[str, str], default_text: str) -> dict[str, str]:
    """Return {prompt name: the key of its graph, "" for the main graph}: each text other than the default's gets one
    graph, named by the first prompt (in ``prompts``' order) that has it."""
    first: dict[str, str] = {}
    keys = {}
    for name, text in prompts.items():
        if text == default_text:
            keys[name] = ""
        else:
            keys[name] = first.setdefault(text, prompt_key(name))
    return keys


def resolved_prompt_name(prompts: Mapping[str, Any], default_name: str | None, *, prompt_name: str | None,
                         prompt: str | None) -> str | None:
    """Return the name of the prompt ``encode`` applies, as ``SentenceTransformer._resolve_prompt`` decides it (None:
    the export's default graph).

    Args:
        prompts: {name: its manifest row, with "text"} of the export.
        default_name: the model's ``default_prompt_name``.
        prompt_name: ``encode``'s prompt_name.
        prompt: ``encode``'s free-text prompt; the export holds only its model's prompts, so it must equal one.

    Raises:
        InvalidInputError: an unknown prompt name, or a prompt text the export does not hold (both list what it has).
    """
    available = ", ".join(f"{name!r} ({row['text']!r})" for name, row in prompts.items()) or "none"
    if prompt is not None:
        if prompt == "" and not _text_of(prompts, default_name):
            return None
        for name, row in prompts.items():
            if row["text"] == prompt:
                return name
        raise InvalidInputError(f"prompt={prompt!r}: an export holds its model's prompts only, each inside its own "
                                f"graph, and this one is none of them; pass prompt_name= one of {available}, or "
                                "prepend the text to each input yourself (pooling then includes it)")
    if prompt_name is None:
        return default_name
    if prompt_name not in prompts:
        raise InvalidInputError(f"prompt_name={prompt_name!r} is not a prompt of this model; available: {available}")
    return prompt_name


def _text_of(prompts: Mapping[str, Any], name: str | None) -> str:
    return prompts[name]["text"] if name in prompts else ""


def query_prompt_name(prompts: Mapping[str, Any], prompt_name: str | None, prompt: str | None) -> str | None:
    """Return ``encode_query``'s prompt_name: "query" when neither a name nor a prompt is given and the model has it."""
    return "query" if prompt_name is None and prompt is None and "query" in prompts else prompt_name


def document_prompt_name(prompts: Mapping[str, Any], prompt_name: str | None, prompt: str | None) -> str | None:
    """Return ``encode_document``'s prompt_name: the first of "document", "passage", "corpus" the model has, when
    neither a name nor a prompt is given."""
    if prompt_name is None and prompt is None:
        return next((name for name in DOCUMENT_PROMPTS if name in prompts), None)
    return prompt_name
