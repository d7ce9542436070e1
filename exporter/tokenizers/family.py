"""The contract of a tokenizer family: what the exporter asks of WordPiece, SentencePiece, BPE...

A family is one file, ``exporter/tokenizers/<family>.py``, with a subclass of
:class:`TokenizerFamily` registered with :func:`exporter.tokenizers.register`, plus one emitter
file per graph language. To add one:

1. **Read** (``<family>.py``): ``read`` takes the reference tokenizer (transformers' fast
   tokenizer, as ``SentenceTransformer`` loads it, and its ``backend_tokenizer`` as JSON) and
   returns a frozen spec, or None after appending to ``problems`` everything it cannot
   reproduce. Pure: no graph code here. :func:`read_framing` reads the template, truncation and
   padding for you; every family's spec holds one :class:`Framing`.
2. **Emit** (``<family>_onnx.py``, ``<family>_tf.py``): only normalization, pre-tokenization and
   the model. The ONNX emitter is a function ``(GraphBuilder, spec, text) -> (ids [P], rows [P])``
   (every piece's id and the row of the text it came from, in order); the TF emitter is a
   ``tf.Module`` class built from the spec with ``token_ids(text, prompt) -> RaggedTensor`` int32
   [N, None] that TFLite can convert (no Flex). ``emitters`` names them as ``"module:attribute"``;
   the framing (``framing_onnx`` / ``framing_tf``) adds the special tokens, truncation,
   padding, attention mask and token type ids around them. Targets never import an emitter.
3. **Say what each graph cannot do** (``problems(graph)``) before anything is written: a graph
   without an emitter is refused by the base class; a family adds its own limits.
4. **Test**: a tiny model with this tokenizer in ``tests/model_factory.py`` and a fixture in
   ``tests/test_tiny_models.py`` (``test_every_tokenizer_family_has_a_fixture`` fails until then).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

#: the graph languages a family may emit; TFLite converts the TensorFlow graph
GRAPHS = ("onnx", "tf", "tflite")
EMITTER_OF = {"onnx": "onnx", "tf": "tf", "tflite": "tf"}


@dataclass(frozen=True)
class Framing:
    """How the reference frames one text's pieces: ``prefix $A suffix``, truncated, padded to the longest."""

    prefix: tuple[int, ...]  # ids before the text ([CLS], <s>)
    suffix: tuple[int, ...]  # ids after it ([SEP], </s>)
    pad_id: int
    max_seq_length: int  # specials included, as transformers truncates
    template: str = ""  # for people: "[CLS] $A [SEP]"

    @property
    def body(self) -> int:
        """Return how many of a text's own pieces are kept."""
        return self.max_seq_length - len(self.prefix) - len(self.suffix)

    def describe(self) -> dict[str, Any]:
        return {"template": self.template, "prefix_ids": list(self.prefix), "suffix_ids": list(self.suffix),
                "pad_id": self.pad_id, "max_seq_length": self.max_seq_length, "token_type_ids": "all 0",
                "truncation": "right, to max_seq_length with the special tokens", "padding": "to the longest"}


def normalizer_steps(normalizer: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Return a backend normalizer's JSON as a flat list of steps (Sequences unrolled)."""
    if normalizer is None:
        return []
    if normalizer.get("type") == "Sequence":
        return [step for inner in normalizer["normalizers"] for step in normalizer_steps(inner)]
    return [normalizer]


def _template_pieces(post: dict[str, Any]) -> tuple[list[str], list[str]] | None:
    """Return (tokens before $A, tokens after it) of a single-text post-processor, or None."""
    kind = post.get("type")
    if kind in ("BertProcessing", "RobertaProcessing"):
        return [post["cls"][0]], [post["sep"][0]]
    if kind == "TemplateProcessing":
        single = post.get("single", [])
        kinds = [next(iter(piece)) for piece in single]
        if kinds.count("Sequence") != 1 or any(next(iter(p.values())).get("type_id", 0) for p in single):
            return None
        at = kinds.index("Sequence")
        return ([p["SpecialToken"]["id"] for p in single[:at]], [p["SpecialToken"]["id"] for p in single[at + 1:]])
    if kind == "Sequence":  # ByteLevel only changes offsets; one template decides the ids
        inner = [p for p in post.get("processors", []) if p.get("type") != "ByteLevel"]
        return _template_pieces(inner[0]) if len(inner) == 1 else ([], []) if not inner else None
    return None


def read_framing(post: dict[str, Any] | None, tokenizer: Any, *, max_seq_length: int, where: str,
                 problems: list[str]) -> Framing | None:
    """Return the framing of the reference's post-processor, or None after appending why it is unsupported.

    Args:
        post: the backend tokenizer's ``post_processor`` JSON (None: no special tokens).
        tokenizer: the reference (transformers) tokenizer: its ``pad_token_id`` and vocabulary.
        max_seq_length: where ``SentenceTransformer`` truncates.
        where: names the tokenizer in messages.
    """
    pieces = ([], []) if post is None else _template_pieces(post)
    if pieces is None:
        problems.append(f"{where}: post-processor {post!r}; supported: BertProcessing, RobertaProcessing, or "
                        "TemplateProcessing of one text with special tokens around it (type id 0)")
        return None
    vocab = tokenizer.get_vocab()
    missing = [token for token in (*pieces[0], *pieces[1]) if token not in vocab]
    if missing:
        problems.append(f"{where}: the post-processor adds {missing}, which the vocabulary does not have")
        return None
    framing = Framing(prefix=tuple(vocab[t] for t in pieces[0]), suffix=tuple(vocab[t] for t in pieces[1]),
                      pad_id=int(tokenizer.pad_token_id or 0), max_seq_length=max_seq_length,
                      template=" ".join([*pieces[0], "$A", *pieces[1]]))
    if framing.body < 1:
        problems.append(f"{where}: max_seq_length {max_seq_length} leaves no room for text beside {framing.template}")
        return None
    return framing


class TokenizerFamily:
    """Base class of a family's spec (see the module docstring for the contributor guide)."""

    #: the family's name in the manifest
    family: ClassVar[str]
    #: HF ``tokenizers`` model types (``model.type`` in the backend JSON) this family reads
    model_types: ClassVar[tuple[str, ...]]
    #: graph language → ``"module:attribute"`` of its emitter, the module inside exporter.tokenizers
    emitters: ClassVar[dict[str, str]] = {}

    framing: Framing

    @classmethod
    def read(cls, data: dict[str, Any], tokenizer: Any, transformer: Any,
             problems: list[str]) -> "TokenizerFamily | None":
        """Return the spec of the reference tokenizer, or None after appending every problem."""
        raise NotImplementedError

    def problems(self, graph: str) -> list[str]:
        """Return why ``graph`` ("onnx", "tf" or "tflite") cannot reproduce this tokenizer (empty: it can)."""
        if EMITTER_OF[graph] not in self.emitters:
            return [f"the {self.family} tokenizer has no {graph} graph in this version; "
                    f"supported for it: {', '.join(g for g in GRAPHS if EMITTER_OF[g] in self.emitters)}"]
        return []

    def emitter(self, graph: str) -> Any:
        """Return the emitter of ``graph`` ("onnx" or "tf"), imported on first use (TensorFlow is heavy)."""
        module, attribute = self.emitters[EMITTER_OF[graph]].split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), attribute)

    def kernel_decided(self) -> dict[str, tuple[str, list[str]]]:
        """Return {class name: (why, texts)} of differences a tokenizer kernel decides and no graph around it can
        change; the export counts each class's mismatching texts into the manifest (they do not fail parity, the
        embedding bar on the corpora does). Empty for a family that matches the reference everywhere."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Return the settings recorded in the manifest."""
        return {"family": self.family, **self.framing.describe()}
