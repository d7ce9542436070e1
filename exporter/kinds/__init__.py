"""Model kinds, one file each, registered by name: what a sentence-transformers folder is and what its export holds.

A folder is one of sentence-transformers' model classes (``config_sentence_transformers.json`` ``model_type``):
``SentenceTransformer`` (the *embedding* kind: ``text`` in, ``sentence_embedding`` out) or ``CrossEncoder``
(the *reranker* kind: ``query`` and ``document`` in, ``score`` and ``logits`` out) or ``SparseEncoder`` (the
*sparse* kind, SPLADE: ``text`` in, ``indices`` and ``values`` of the top-K dimensions out); a ``SentenceTransformer``
whose first module is a ``StaticEmbedding`` (model2vec) is the *static* kind (``text`` in, ``sentence_embedding``
out, no special tokens, an embedding-bag mean). A kind subclasses
:class:`Kind` in ``exporter/kinds/<kind>.py`` with :func:`register`; the model reader, the targets, the manifest
and the parity check ask it (``kinds.get(spec.kind)``) for what differs, instead of testing the kind's name.
The runtime side (``exporter.load``) reads ``manifest["kind"]`` and keeps its own table (it imports no builder).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Sequence

from .. import model_folder
from ..errors import InvalidOptionError, UnsupportedModelError
from ..registry import import_submodules

_KINDS: dict[str, type["Kind"]] = {}
#: config_sentence_transformers.json model_type values no kind exports yet, and why
NOT_YET = {"MultiVectorEncoder": "multi-vector (ColBERT) models are not exported yet"}


class Kind:
    """Base class of a model kind; a subclass says what differs from one kind to another."""

    #: the manifest's ``kind``
    name: ClassVar[str]
    #: the targets that export this kind; the others refuse it by name before anything is built
    targets: ClassVar[tuple[str, ...] | None] = None  # None: every target
    #: the order kinds are asked to claim a folder in; the embedding kind, which claims any folder, is last
    order: ClassVar[int] = 0

    @classmethod
    def claims(cls, path: Path) -> bool:
        """Return True when the model folder ``path`` is of this kind."""
        raise NotImplementedError

    def read(self, path: Path, *, trust_remote_code: bool = False) -> Any:
        """Return the validated ModelSpec of the folder (``exporter.model.read_model`` calls it); the transformer's own
        modeling code (config.json ``auto_map``) may run only with ``trust_remote_code``."""
        raise NotImplementedError

    def configured(self, spec: Any, options: dict[str, Any]) -> Any:
        """Return ``spec`` with the export's ``options`` this kind reads applied (the sparse kind's top-K).

        Raises:
            InvalidOptionError: a sparse encoder's setting (``sparse_top_k``, ``sparse_dense``) for another kind.
        """
        given = [f"--{key.replace('_', '-')}" for key in ("sparse_top_k", "sparse_dense") if options.get(key)
                 is not None and options.get(key) is not False]
        if given:
            raise InvalidOptionError(f"{', '.join(given)}: settings of a SparseEncoder's export; this model is a "
                                     f"{self.name} model")
        return spec

    def recorded_options(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Return the export options an export's ``manifest`` records that :meth:`configured` reads (``check``
        applies them to the model it reads again)."""
        return {}

    def target_problems(self, target: str) -> list[str]:
        """Return why ``target`` cannot export this kind (empty: it can)."""
        if self.targets is None or target in self.targets:
            return []
        return [f"{target}: {self.name} export not implemented yet (supported for a {self.name}: "
                f"{', '.join(self.targets)})"]

    #: why the onnx target writes no int8/optimized variants for this kind ("": it does)
    no_variants: ClassVar[str] = ""

    def variants_problem(self, spec: Any) -> str:
        """Return why the onnx target writes no int8/optimized variants for this model ("": it does)."""
        return self.no_variants

    #: why the tflite target writes no fp16/int8 files for this kind ("": it does)
    no_tflite_variants: ClassVar[str] = ""

    def onnx_tokenizer(self, spec: Any, *, opset: int, ir_version: int) -> Any:
        """Return the standalone tokenizer graph (strings → the three int64 [N, L] token arrays)."""
        raise NotImplementedError

    def export_encoder(self, spec: Any, path: Path, *, opset: int, external_data: bool) -> Any:
        """Write the custom-op-free graph (token arrays → the kind's outputs) to ``path`` and return it."""
        raise NotImplementedError

    def compose_onnx(self, tokenizer: Any, encoder: Any, spec: Any) -> Any:
        """Return the string-in ``model.onnx``: ``tokenizer`` ∘ ``encoder``, an empty batch allowed."""
        raise NotImplementedError

    def manifest_io(self, spec: Any) -> dict[str, Any]:
        """Return the manifest's ``input``/``output`` description of the export's main graph."""
        raise NotImplementedError

    def corpus(self, source: "str | Path | Sequence[Any] | None") -> tuple[list[Any], dict[str, Any]]:
        """Return (the parity inputs plus the user's, what the manifest records of them)."""
        raise NotImplementedError

    def reference(self, spec: Any) -> Any:
        """Return the reference runner of the source model (sentence-transformers)."""
        raise NotImplementedError

    def expected(self, reference: Any, inputs: list[Any]) -> Any:
        """Return the reference's outputs on the parity inputs (computed once, compared with every artifact)."""
        raise NotImplementedError

    def run_once(self, runner: Any) -> Any:
        """Return the outputs of an opened model file of this kind on one input (check runs each file alone to name
        the one that does not load or run)."""
        return runner.encode(["a"])

    def tokenize_once(self, runner: Any) -> Any:
        """Return the outputs of an opened tokenizer graph of this kind on one input."""
        return runner.tokenize(["a"])

    def parity(self, target: Any, out: Path, reference: Any, inputs: list[Any], expected: Any,
               known: dict[str, tuple[str, list[str]]]) -> dict[str, Any]:
        """Return the parity figures of ``target``'s files in ``out`` against the reference."""
        raise NotImplementedError


def one_at_a_time(variants: Iterable[Any]) -> Iterator[Any]:
    """Yield each variant, closing its runner before the next one opens.

    An ONNX Runtime session keeps the memory of its largest batch until it goes: a ModernBERT-base-shaped
    export (max_seq_length 512) held its four onnx sessions together and its check reached 22.6 GiB (8.96 GiB closed one at a time).
    """
    for variant in variants:
        try:
            yield variant
        finally:
            variant.close()


def register(cls: type[Kind]) -> type[Kind]:
    """Class decorator: make ``cls`` the kind called ``cls.name``."""
    _KINDS[cls.name] = cls
    return cls


def _load_all() -> None:
    import_submodules(__name__, __path__)


def names() -> list[str]:
    """Return the name of every registered kind."""
    _load_all()
    return sorted(_KINDS)


def get(name: str) -> Kind:
    """Return the kind called ``name`` ("embedding", "reranker", "static")."""
    _load_all()
    return _KINDS[name]()


def st_model_type(path: Path) -> str | None:
    """Return ``config_sentence_transformers.json``'s ``model_type`` (None when the file or the key is missing)."""
    try:
        data = json.loads((path / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("model_type") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def prompt_problems(path: Path, model: str) -> list[str]:
    """Return why the prompts of a ``model`` folder cannot be exported by a kind whose graphs hold none: its default
    prompt, or any non-empty prompt that sentence-transformers' encode_query / encode_document would prepend (an
    export that ignored them would answer otherwise, silently)."""
    try:
        config = json.loads((path / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    config = config if isinstance(config, dict) else {}
    name, prompts = config.get("default_prompt_name"), config.get("prompts")
    named = sorted(key for key, text in prompts.items() if text) if isinstance(prompts, dict) else []
    where = path / "config_sentence_transformers.json"
    return ([f"{where}: default_prompt_name {name!r}: a {model}'s prompt is not exported yet; remove it"]
            if name else []) + ([f"{where}: prompts {named}: a {model}'s prompts are not exported yet "
                                 "(encode_query/encode_document would prepend them); remove them"] if named else [])


def of_folder(path: str | Path | None) -> Kind:
    """Return the kind of the model folder ``path`` (None, the bundled model, and a folder no kind claims: embedding).

    Raises:
        UnsupportedModelError: a model class no kind exports yet (MultiVectorEncoder...).
    """
    _load_all()
    if path is None or not Path(path).is_dir() or model_folder.root_problems(Path(path).resolve()):
        return get("embedding")  # read_model says what is wrong with the folder before reading any of it
    declared = st_model_type(Path(path))
    if declared in NOT_YET:
        raise UnsupportedModelError([f"{path}: config_sentence_transformers.json model_type {declared!r}: "
                                     f"{NOT_YET[declared]}; supported: SentenceTransformer, CrossEncoder, "
                                     "SparseEncoder"])
    return next(cls() for cls in sorted(_KINDS.values(), key=lambda kind: kind.order) if cls.claims(Path(path)))
