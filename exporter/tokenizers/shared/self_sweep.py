"""The vocabulary self-sweep: every piece of the vocabulary, through the ONNX tokenizer graph and the reference.

The graphs hand finished words to a SentencePiece kernel over a model built from the reference's
vocabulary; where the kernel's algorithm and the reference's can part (BPE merges that reach a piece
two ways, a piece the graphs' tables cannot reach), a corpus rarely shows it, because only that
piece's own text does. So before anything is built, every piece (and, for BPE, every merge's
concatenation) is tokenized as its own text and inside a word (``SWEEP_TEMPLATES``), in one batch per
chunk, by the standalone tokenizer graph (``framing_onnx.tokenizer_model``, in onnxruntime) and by
the reference's backend; any difference refuses the model, naming the first pieces that differ.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...progress import note

#: each piece's text alone and inside a word (after a letter, before a space and a word)
SWEEP_TEMPLATES = ("{}", "x{} y")
#: texts per onnxruntime call (the graph pads each batch to its longest row)
CHUNK = 16384
#: piece texts per line where words are tokenized one by one (``sweep_words``): fewer, longer rows run faster
GROUP = 32
#: the swept graph's max_seq_length: no text of the sweep is truncated
UNTRUNCATED = 1 << 20
#: the opset and IR version of the swept graph (the lowest the tokenizer graphs support; the ids do not depend on it)
OPSET, IR_VERSION = 20, 10
#: pieces named in the refusal
NAMED = 5


def sweep_texts(spec: Any) -> list[str]:
    """Return the sweep's texts: each of the family's piece texts (``spec.piece_texts()``) in every template."""
    pieces = list(dict.fromkeys(text for text in spec.piece_texts() if text.strip()))
    return [template.format(text) for text in pieces for template in SWEEP_TEMPLATES]


def _session(spec: Any) -> Any:
    """Return an onnxruntime session of the standalone tokenizer graph of ``spec``, framed without truncation."""
    import onnx
    import onnxruntime as ort

    from ...runtime.ortx_runtime import verified_library
    from .framing_onnx import tokenizer_model

    untruncated = dataclasses.replace(spec, framing=dataclasses.replace(spec.framing, max_seq_length=UNTRUNCATED))
    options = ort.SessionOptions()
    options.register_custom_ops_library(verified_library())
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tokenizer.onnx"
        onnx.save(tokenizer_model(untruncated, opset=OPSET, ir_version=IR_VERSION), str(path))
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _graph_bodies(session: Any, spec: Any, texts: list[str]) -> list[tuple[int, ...]]:
    """Return each text's piece ids from the tokenizer graph (framing ids left out)."""
    before, after = len(spec.framing.prefix), len(spec.framing.suffix)
    bodies = []
    for start in range(0, len(texts), CHUNK):
        ids, mask = session.run(["input_ids", "attention_mask"],
                                {"text": np.array(texts[start:start + CHUNK], dtype=object)})
        bodies += [tuple(row[before:length - after].tolist()) for row, length in zip(ids, mask.sum(axis=1),
                                                                                       strict=True)]
    return bodies


def _reference_bodies(backend: Any, texts: list[str]) -> list[tuple[int, ...]]:
    """Return each text's piece ids from the reference's backend (no special tokens, no truncation)."""
    return [tuple(encoding.ids) for encoding in backend.encode_batch(texts, add_special_tokens=False)]


def _differing(session: Any, backend: Any, spec: Any, texts: list[str]) -> list[tuple[str, tuple, tuple]]:
    """Return (text, reference ids, graph ids) of each text the two tokenize otherwise."""
    return [(text, ref, ours) for text, ref, ours in zip(texts, _reference_bodies(backend, texts),
                                                          _graph_bodies(session, spec, texts), strict=True)
            if ref != ours]


class _Same:
    """A spec as a cache key by what the sweep depends on: its tables and rules and the ids around a text, not its
    truncation or pair settings (a reranker and an embedding model on one vocabulary sweep it once per process)."""

    def __init__(self, spec: Any):
        self.spec = spec
        fields = [(f.name, getattr(spec, f.name)) for f in dataclasses.fields(spec) if f.name != "framing"]
        self.key = (type(spec).__qualname__, hashlib.sha256(repr(fields).encode()).hexdigest(),
                    spec.framing.prefix, spec.framing.suffix)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.key == self.key


@functools.lru_cache(maxsize=8)
def _mismatches(key: _Same) -> tuple[int, tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]]:
    from tokenizers import Tokenizer

    spec = key.spec
    texts = sweep_texts(spec)
    session, backend = _session(spec), Tokenizer.from_str(spec.backend_json)
    backend.no_padding()  # a file's fixed padding and truncation, which SentenceTransformer overrides
    backend.no_truncation()
    note(f"the vocabulary self-sweep: {len(texts)} texts (every piece alone and inside a word), graph and reference")
    if not spec.sweep_words:
        return len(texts), tuple(_differing(session, backend, spec, texts))
    # words a space separates are tokenized one by one: GROUP texts per line, each line that differs read text by text
    groups = [texts[i:i + GROUP] for i in range(0, len(texts), GROUP)]
    lines = _differing(session, backend, spec, [" ".join(group) for group in groups])
    by_line = dict(zip((" ".join(group) for group in groups), groups, strict=True))
    return len(texts), tuple(found for line, _, _ in lines for found in _differing(session, backend, spec,
                                                                                   by_line[line]))


def _pieces(spec: Any, ids: tuple[int, ...]) -> str:
    return "[" + ", ".join(repr(spec.piece(i)) for i in ids) + "]"


def self_sweep_problems(spec: Any) -> list[str]:
    """Return why the ONNX tokenizer graph of ``spec`` cannot be trusted: the piece texts it tokenizes otherwise
    than the reference (empty: none).

    The result is cached per tokenizer (:class:`_Same`): every target asks, the sweep runs once per process.
    """
    count, found = _mismatches(_Same(spec))
    if not found:
        return []
    named = "; ".join(f"{text!r}: reference {_pieces(spec, ref)}, graph {_pieces(spec, graph)}"
                      for text, ref, graph in found[:NAMED])
    return [f"the vocabulary self-sweep (each piece's text alone and inside a word) finds {len(found)} of {count} "
            f"texts tokenized otherwise than the reference, e.g. {named}. Why: {spec.sweep_why}"]


def with_self_sweep(check: Callable[[Any, str], list[str]] | None) -> Callable[[Any, str], list[str]]:
    """Return a family's ``check`` (see :class:`~.family.Family`) followed by the vocabulary self-sweep.

    The sweep runs the ONNX graph, so it runs only where the family builds that graph for this tokenizer.
    """
    def checked(spec: Any, graph: str) -> list[str]:
        found = check(spec, graph) if check else []
        if found or (check and graph != "onnx" and check(spec, "onnx")):
            return found
        return self_sweep_problems(spec)
    return checked
