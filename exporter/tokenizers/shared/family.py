"""The contract of a tokenizer family: what the exporter asks of WordPiece, SentencePiece, BPE...

A family is one folder, ``exporter/tokenizers/<family>/``, listed once in
``exporter/tokenizers/__init__.py`` (``FAMILIES``). Its ``__init__.py`` registers one :class:`Family`:
what it reads (``model_types``), its spec class, its emitters, the graphs it reproduces and the
kernels that run its model. ``docs/contributing.md`` lists the files; to add one:

1. **Read** (``<family>/spec.py``): a frozen subclass of :class:`TokenizerSpec` whose ``read`` takes
   the reference tokenizer (transformers' fast tokenizer, as ``SentenceTransformer`` loads it, and
   its ``backend_tokenizer`` as JSON) and returns the spec, or None after appending to ``problems``
   everything it cannot reproduce. Pure: no graph code. :func:`read_framing` reads the template,
   truncation and padding for you; every spec holds one :class:`Framing`. ``piece_texts`` and ``piece``
   give the vocabulary self-sweep (``shared/self_sweep.py``) every piece's text and name.
2. **Emit** (``<family>/emit_onnx.py``, ``<family>/emit_tf.py``): only normalization,
   pre-tokenization and the model. The ONNX emitter is a function ``(GraphBuilder, spec, text) ->
   (ids [P], rows [P])`` (every piece's id and the row of the text it came from, in order); the TF
   emitter is a ``tf.Module`` class built from the spec with ``token_ids(text, prompt) ->
   RaggedTensor`` int32 [N, None] that TFLite can convert (no Flex). The shared framing
   (``shared/framing_onnx.py``, ``shared/framing_tf.py``) adds the special tokens, truncation,
   padding, attention mask and token type ids around them. Targets never import an emitter.
3. **Say what each graph cannot do** before anything is written: ``graphs`` lists the graphs the
   family reproduces (``refused`` says why not the others), and ``check(spec, graph)`` returns what
   keeps one tokenizer from a graph it otherwise supports (table limits); registered wrapped in
   ``with_self_sweep``, which then runs every piece's text through the ONNX graph and the reference.
4. **Test**: a tiny model with this tokenizer in ``tests/model_factory.py`` and its parity tests
   (``tests/test_contributing.py`` fails until then).

The shared layer (``exporter/tokenizers/shared/``: this file, code points, framing, the string
and code-point graph pieces) imports no family, and no family imports another.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

#: the graph languages a family may emit; TFLite converts the TensorFlow graph
GRAPHS = ("onnx", "tf", "tflite")
EMITTER_OF = {"onnx": "onnx", "tf": "tf", "tflite": "tf"}


#: ``Framing.max_seq_length`` of a tokenizer that cuts no text (a tokenizer.json without truncation, read with
#: ``specials=False``)
UNTRUNCATED = 2**31 - 1

#: the reference's pair truncation strategies (transformers' names), all reproduced by the pair framing
PAIR_TRUNCATIONS = ("longest_first", "only_first", "only_second")


@dataclass(frozen=True)
class PairTemplate:
    """How the reference frames a (query, document) pair: ``before $A between $B after``, a type id per token.

    Each special-token segment carries one type id per token; ``type_a`` and ``type_b`` are the type ids of
    the query's and the document's own pieces. All 0 where the reference returns no ``token_type_ids``.
    """

    before: tuple[int, ...]
    before_types: tuple[int, ...]
    between: tuple[int, ...]
    between_types: tuple[int, ...]
    after: tuple[int, ...]
    after_types: tuple[int, ...]
    type_a: int
    type_b: int
    template: str = ""  # for people: "[CLS] $A [SEP] $B:1 [SEP]:1"

    @property
    def specials(self) -> int:
        """Return how many special tokens frame a pair."""
        return len(self.before) + len(self.between) + len(self.after)


@dataclass(frozen=True)
class Framing:
    """How the reference frames one text's pieces: ``prefix $A suffix``, truncated, padded to the longest;
    and, where it has a pair template, a (query, document) pair's (:class:`PairTemplate`)."""

    prefix: tuple[int, ...]  # ids before the text ([CLS], <s>)
    suffix: tuple[int, ...]  # ids after it ([SEP], </s>)
    pad_id: int
    max_seq_length: int  # specials included, as transformers truncates
    template: str = ""  # for people: "[CLS] $A [SEP]"
    #: the reference's pair template; None: it has none (``pair_problem`` says why)
    pair: PairTemplate | None = None
    #: how pairs longer than ``max_seq_length`` are cut, of :data:`PAIR_TRUNCATIONS`
    pair_truncation: str = "longest_first"
    #: why pairs cannot be framed as the reference frames them ("" when they can)
    pair_problem: str = ""
    #: False: the text's pieces alone, as ``encode(..., add_special_tokens=False)`` (a static embedding)
    specials: bool = True

    @property
    def body(self) -> int:
        """Return how many of a text's own pieces are kept."""
        return self.max_seq_length - len(self.prefix) - len(self.suffix)

    @property
    def pairs(self) -> bool:
        """Return True when (query, document) pairs are framed exactly as the reference frames them."""
        return self.pair is not None and not self.pair_problem

    @property
    def pair_room(self) -> int:
        """Return how many of a pair's own pieces (query and document together) are kept at most."""
        return self.max_seq_length - (self.pair.specials if self.pair else 0)

    def describe(self) -> dict[str, Any]:
        if not self.specials:
            return {"template": self.template, "add_special_tokens": False,
                    "max_seq_length": None if self.max_seq_length == UNTRUNCATED else self.max_seq_length,
                    "truncation": "right, to max_seq_length pieces" if self.max_seq_length != UNTRUNCATED else "none",
                    "padding": "to the longest (the mask keeps pads out of the mean)"}
        return {"template": self.template, "prefix_ids": list(self.prefix), "suffix_ids": list(self.suffix),
                "pad_id": self.pad_id, "max_seq_length": self.max_seq_length, "token_type_ids": "all 0",
                "truncation": "right, to max_seq_length with the special tokens", "padding": "to the longest"}

    def describe_pairs(self) -> dict[str, Any]:
        """Return the pair framing's settings for a reranker's manifest (or why there is none)."""
        if not self.pairs:
            return {"pair_problem": self.pair_problem}
        pair = self.pair
        return {"pair_template": pair.template, "before_ids": list(pair.before), "between_ids": list(pair.between),
                "after_ids": list(pair.after), "pad_id": self.pad_id, "max_seq_length": self.max_seq_length,
                "truncation": f"{self.pair_truncation}, right, to max_seq_length with the special tokens",
                "padding": "to the longest"}


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


#: a pair template as read: (special tokens before $A, type id of A, between, type id of B, after); each special
#: token is (the vocabulary tokens it stands for, its type id)
_PairPieces = tuple[list[tuple[list[str], int]], int, list[tuple[list[str], int]], int, list[tuple[list[str], int]]]


def _pair_pieces(post: dict[str, Any] | None) -> _PairPieces | str:
    """Return the pair template of a post-processor, or why it has none (special tokens named, not yet ids)."""
    kind = (post or {}).get("type")
    if kind == "BertProcessing":  # tokenizers: [CLS] $A [SEP] $B:1 [SEP]:1
        cls, sep = [post["cls"][0]], [post["sep"][0]]
        return [(cls, 0)], 0, [(sep, 0)], 1, [(sep, 1)]
    if kind == "RobertaProcessing":  # tokenizers: <s> $A </s> </s> $B </s>, every type id 0
        cls, sep = [post["cls"][0]], [post["sep"][0]]
        return [(cls, 0)], 0, [(sep, 0), (sep, 0)], 0, [(sep, 0)]
    if kind == "Sequence":
        inner = [p for p in post.get("processors", []) if p.get("type") != "ByteLevel"]
        return _pair_pieces(inner[0]) if len(inner) == 1 else f"{len(inner)} post-processors frame the pair"
    if kind != "TemplateProcessing":
        return f"post-processor {kind!r} has no pair template"
    pair = post.get("pair") or []
    sequences = [next(iter(p.values())).get("id") for p in pair if "Sequence" in p]
    if sequences != ["A", "B"]:
        return f"its pair template has the sequences {sequences}; supported: $A then $B, once each"
    named = post.get("special_tokens") or {}
    segments: list[list[tuple[list[str], int]]] = [[]]
    types = []
    for piece in pair:
        if "Sequence" in piece:
            types.append(int(piece["Sequence"].get("type_id", 0)))
            segments.append([])
        else:
            token = piece["SpecialToken"]
            tokens = named.get(token["id"], {}).get("tokens") or [token["id"]]
            segments[-1].append((list(tokens), int(token.get("type_id", 0))))
    return segments[0], types[0], segments[1], types[1], segments[2]


def _pair_framing(post: dict[str, Any] | None, tokenizer: Any, *, max_seq_length: int,
                  truncation: Any) -> tuple[PairTemplate | None, str, str]:
    """Return (the pair template, the truncation strategy, why pairs cannot be framed exactly or "")."""
    strategy = "longest_first" if truncation is True else str(truncation)
    pieces = _pair_pieces(post)
    if isinstance(pieces, str):
        return None, strategy, (f"the reference tokenizer frames no (query, document) pair: {pieces}; supported: "
                                "BertProcessing, RobertaProcessing, or TemplateProcessing with a pair template")
    vocab = tokenizer.get_vocab()
    missing = [t for segment in pieces[::2] for tokens, _ in segment for t in tokens if t not in vocab]
    if missing:
        return None, strategy, f"its pair template adds {missing}, which the vocabulary does not have"
    typed = "token_type_ids" in getattr(tokenizer, "model_input_names", ())  # XLM-R, RoBERTa: no type ids, all 0

    def ids_and_types(segment: list[tuple[list[str], int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        flat = [(vocab[t], type_id * typed) for tokens, type_id in segment for t in tokens]
        return tuple(i for i, _ in flat), tuple(t for _, t in flat)

    before, between, after = map(ids_and_types, pieces[::2])
    words = [[f"{t}:{type_id}" if type_id and typed else t for tokens, type_id in segment for t in tokens]
             for segment in pieces[::2]]
    sequence = [f"$A:{pieces[1]}" if pieces[1] and typed else "$A", f"$B:{pieces[3]}" if pieces[3] and typed else "$B"]
    template = PairTemplate(before=before[0], before_types=before[1], between=between[0], between_types=between[1],
                            after=after[0], after_types=after[1], type_a=pieces[1] * typed, type_b=pieces[3] * typed,
                            template=" ".join([*words[0], sequence[0], *words[1], sequence[1], *words[2]]))
    problem = ""
    if strategy not in PAIR_TRUNCATIONS:
        problem = (f"pair truncation {truncation!r}: the reference would not cut a pair to max_seq_length; supported: "
                   f"{', '.join(PAIR_TRUNCATIONS)} (transformers' truncation=True is longest_first)")
    elif getattr(tokenizer, "truncation_side", "right") != "right" or getattr(tokenizer, "padding_side",
                                                                              "right") != "right":
        problem = (f"truncation_side {tokenizer.truncation_side!r}, padding_side {tokenizer.padding_side!r}; "
                   "supported: right, both (tokenizer_config.json)")
    elif max_seq_length < template.specials:
        problem = f"max_seq_length {max_seq_length} leaves no room for a pair beside {template.template}"
    return template, strategy, problem


def pieces_only(tokenizer: Any, *, max_seq_length: int, where: str) -> Framing:
    """Return the framing of a tokenizer called with ``add_special_tokens=False`` (sentence-transformers'
    ``StaticEmbedding``): the text's pieces alone, cut to ``max_seq_length``, no pair template. Rows are padded
    with 0, which no reader sees: the mask keeps pads out of the mean."""
    return Framing(prefix=(), suffix=(), pad_id=0,
                   max_seq_length=max_seq_length, template="$A", specials=False,
                   pair_problem=f"{where}: a text's pieces alone (add_special_tokens=False) frame no pair")


def read_framing(post: dict[str, Any] | None, tokenizer: Any, *, max_seq_length: int, where: str,
                 problems: list[str], pair_truncation: Any = "longest_first",
                 specials: bool = True) -> Framing | None:
    """Return the framing of the reference's post-processor, or None after appending why it is unsupported.

    Args:
        post: the backend tokenizer's ``post_processor`` JSON (None: no special tokens).
        tokenizer: the reference (transformers) tokenizer: its ``pad_token_id`` and vocabulary.
        max_seq_length: where ``SentenceTransformer`` truncates.
        where: names the tokenizer in messages.
        pair_truncation: how a reranker cuts pairs, as its tokenizer is called (``CrossEncoder``: "longest_first";
            a module's ``processing_kwargs["text"]["truncation"]`` overrides it): of :data:`PAIR_TRUNCATIONS`, or
            True for "longest_first". Anything else leaves the framing without pairs (``Framing.pair_problem``).
        specials: False where the reference is called with ``add_special_tokens=False`` (the post-processor is
            not read: :func:`pieces_only`).

    Returns:
        The framing; its ``pairs`` is False (and ``pair_problem`` says why) where pairs cannot be framed exactly.
        None where a single text cannot be: the single-text problems are appended to ``problems``.
    """
    if not specials:
        return pieces_only(tokenizer, max_seq_length=max_seq_length, where=where)
    pieces = ([], []) if post is None else _template_pieces(post)
    if pieces == ([], []):
        problems.append(f"{where}: post-processor {json.dumps(post)} adds no special token, so a text without pieces "
                        "(\"\", or only spaces) is a sequence of length 0, which the encoder graphs cannot run "
                        "(SentenceTransformer pools it to a zero vector); supported: a post-processor that adds at "
                        "least one token (BertProcessing, RobertaProcessing, TemplateProcessing)")
        return None
    if pieces is None:
        problems.append(f"{where}: post-processor {post!r}; supported: BertProcessing, RobertaProcessing, or "
                        "TemplateProcessing of one text with special tokens around it (type id 0)")
        return None
    vocab = tokenizer.get_vocab()
    missing = [token for token in (*pieces[0], *pieces[1]) if token not in vocab]
    if missing:
        problems.append(f"{where}: the post-processor adds {missing}, which the vocabulary does not have")
        return None
    pair, strategy, pair_problem = _pair_framing(post, tokenizer, max_seq_length=max_seq_length,
                                                 truncation=pair_truncation)
    framing = Framing(prefix=tuple(vocab[t] for t in pieces[0]), suffix=tuple(vocab[t] for t in pieces[1]),
                      pad_id=int(tokenizer.pad_token_id or 0), max_seq_length=max_seq_length,
                      template=" ".join([*pieces[0], "$A", *pieces[1]]), pair=pair, pair_truncation=strategy,
                      pair_problem=f"{where}: {pair_problem}" if pair_problem else "")
    if framing.body < 1:
        problems.append(f"{where}: max_seq_length {max_seq_length} leaves no room for text beside {framing.template}")
        return None
    return framing


def nul_piece_problems(pieces: list[str], where: str) -> list[str]:
    """Return why pieces holding NUL (U+0000) keep a vocabulary from the SentencePiece kernels (empty: none does).

    The kernels keep their pieces in a darts-clone trie of NUL-ended keys: "\\x00" fails to load as a
    zero-length key, and a piece with NUL inside would be cut short.
    """
    found = [(index, piece) for index, piece in enumerate(pieces) if "\x00" in piece]
    if not found:
        return []
    named = ", ".join(f"{piece!r} (id {index})" for index, piece in found[:5])
    return [f"{where}: {len(found)} vocabulary piece(s) hold NUL (U+0000): {named}; the SentencePiece kernels "
            "(darts-clone tries of NUL-ended keys) cannot hold such a piece. Supported: pieces without NUL"]


class TokenizerSpec:
    """Base class of a family's spec: one reference tokenizer as the graphs reproduce it (module docstring)."""

    #: the family's name in the manifest and in the registry
    family: ClassVar[str]

    framing: Framing

    @classmethod
    def read(cls, data: dict[str, Any], tokenizer: Any, transformer: Any,
             problems: list[str]) -> "TokenizerSpec | None":
        """Return the spec of the reference tokenizer, or None after appending every problem."""
        raise NotImplementedError

    def problems(self, graph: str) -> list[str]:
        """Return why ``graph`` ("onnx", "tf" or "tflite") cannot reproduce this tokenizer (empty: it can)."""
        family = registered(self.family)
        if graph not in family.graphs:
            return [family.refused.get(graph) or f"the {self.family} tokenizer has no {graph} graph in this version; "
                    f"supported for it: {', '.join(family.graphs)}"]
        return family.check(self, graph) if family.check else []

    def emitter(self, graph: str) -> Any:
        """Return the emitter of ``graph`` ("onnx" or "tf"; TFLite converts the tf one), imported on first use."""
        return registered(self.family).emitters[EMITTER_OF[graph]]()

    #: why the graphs may tokenize a vocabulary piece otherwise than the reference (the self-sweep's refusal says it)
    sweep_why: ClassVar[str] = ("the graphs' tables and kernel reproduce the reference's algorithm, not this "
                                "vocabulary's every piece")

    #: True where words a space separates are tokenized one by one (WordPiece, Unigram): the sweep joins its texts
    sweep_words: ClassVar[bool] = False

    def piece_texts(self) -> list[str]:
        """Return the text of every vocabulary piece as a user would type it (what the vocabulary self-sweep,
        ``shared/self_sweep.py``, tokenizes alone and inside a word)."""
        raise NotImplementedError

    def piece(self, token_id: int) -> str:
        """Return the vocabulary's piece of ``token_id``."""
        raise NotImplementedError

    def kernel_decided(self) -> dict[str, tuple[str, list[str]]]:
        """Return {class name: (why, texts)} of the classes a tokenizer kernel decides otherwise than the reference
        (whether or not a step of the graph corrects it); the export sweeps each class on every target and counts
        its mismatching texts into the manifest (they do not fail parity, the embedding bar on the corpora does;
        the family's tests hold the counts). Empty for a family whose kernels match the reference everywhere."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Return the settings recorded in the manifest."""
        return {"family": self.family, **self.framing.describe()}


@dataclass(frozen=True)
class Family:
    """A tokenizer family as registered: what it reads, what it emits, what it supports."""

    #: the frozen :class:`TokenizerSpec` subclass that reads the reference
    spec: type[TokenizerSpec]
    #: HF ``tokenizers`` model types (``model.type`` in the backend JSON) this family reads
    model_types: tuple[str, ...]
    #: graph language ("onnx", "tf") → a function returning its emitter (imported on first use: TensorFlow is heavy)
    emitters: dict[str, Callable[[], Any]]
    #: graph language → the kernel that runs the tokenizer's model there (for people: docs and error messages)
    kernels: dict[str, str]
    #: the graphs it reproduces exactly, of :data:`GRAPHS`
    graphs: tuple[str, ...] = GRAPHS
    #: graph → why the family does not support it (a graph left out of ``graphs`` without one gets a plain message)
    refused: dict[str, str] = field(default_factory=dict)
    #: (spec, graph) → what keeps this one tokenizer from ``graph`` (table limits, marks it keeps); None: nothing
    check: Callable[[Any, str], list[str]] | None = None
    #: frames a (query, document) pair into one sequence (what the reranker kind needs): every family does, through
    #: the shared framing; ``Framing.pairs`` says whether one tokenizer's template can
    pairs: bool = True
    #: where families read one model type (BPE: byte-level, SentencePiece's with byte fallback): the backend JSONs
    #: this family reads of it; None: every one no other family's ``claims`` takes
    claims: Callable[[dict[str, Any]], bool] | None = None

    @property
    def name(self) -> str:
        return self.spec.family


_REGISTERED: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Return ``family`` after adding it to the registry (each family's ``__init__`` calls this once).

    Raises:
        ValueError: a graph it claims has no emitter, or a model type another family reads with neither saying
            which JSONs it ``claims`` (a programming error).
    """
    missing = [graph for graph in family.graphs if EMITTER_OF[graph] not in family.emitters]
    taken = [t for other in _REGISTERED.values() if other.name != family.name for t in other.model_types
             if t in family.model_types and not (family.claims or other.claims)]
    if missing or taken or not set(family.graphs) <= set(GRAPHS):
        raise ValueError(f"tokenizer family {family.name!r}: graphs {family.graphs} (of {GRAPHS}), no emitter for "
                         f"{missing}, model types read by another family {taken}")
    _REGISTERED[family.name] = family
    return family


def registered(name: str) -> Family:
    """Return the registered family called ``name``."""
    return _REGISTERED[name]


def registry() -> dict[str, Family]:
    """Return {name: Family} of every family registered so far."""
    return dict(_REGISTERED)
