"""The static kind: a ``SentenceTransformer`` whose first module is a ``StaticEmbedding`` (model2vec), ``text`` [B] in,
``sentence_embedding`` [B, D] out.

sentence-transformers 6.2's ``StaticEmbedding`` runs its ``tokenizer.json`` as a ``tokenizers.Tokenizer`` with
``encode_batch(texts, add_special_tokens=False)`` (the file's truncation kept: model2vec writes 512 pieces; none
written, none done) and takes an ``EmbeddingBag`` mean of the rows of those ids (a text without pieces is the zero
vector); a ``Normalize`` may follow. The graphs run the family's tokenizer framed without special tokens
(``shared.family.pieces_only``), gather the rows and take the masked mean, then normalize.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidModelError, UnsupportedModelError
from ..files import load_state_dict, read_json, weights_file
from ..modules import ModuleConverter, ModuleEntry
from ..tokenizers.shared.family import UNTRUNCATED
from . import prompt_problems, register, st_model_type
from .embedding import Embedding

#: the module chain a static model may have
SUPPORTED_CHAIN = "StaticEmbedding, optionally followed by Normalize"


@dataclass(frozen=True)
class StaticConfig:
    """A ``StaticEmbedding`` as sentence-transformers runs it."""

    folder: Path
    rows: int
    dim: int
    #: pieces kept per text (tokenizer.json ``truncation.max_length``); :data:`UNTRUNCATED` when it has none
    max_seq_length: int
    #: where the weights come from: "embedding.weight" (sentence-transformers) or "embeddings" (model2vec)
    weights_key: str


def _chain(path: Path) -> list[ModuleEntry]:
    from ..model import _entries

    return _entries(path)


def _weights(folder: Path) -> tuple[torch.Tensor, str]:
    """Return (one row per token id, as ``StaticEmbedding.load`` builds it, the key it comes from)."""
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    state = load_state_dict(folder)
    if "embedding.weight" in state:
        return state["embedding.weight"], "embedding.weight"
    if "embeddings" not in state:
        raise InvalidModelError(f"{weights_file(folder)}: neither 'embedding.weight' (sentence-transformers) nor "
                                f"'embeddings' (model2vec) among its tensors {sorted(state)[:5]}")
    return StaticEmbedding._fold_model2vec_weights(state["embeddings"], state.get("mapping"),
                                                   state.get("weights")), "embeddings"


def _truncation(tokenizer_json: Path, problems: list[str]) -> int:
    """Return the pieces the file's truncation keeps (sentence-transformers leaves it on; :data:`UNTRUNCATED` if none)."""
    truncation = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("truncation")
    if not truncation:
        return UNTRUNCATED
    if truncation.get("direction", "Right") != "Right":
        problems.append(f"{tokenizer_json}: truncation direction {truncation.get('direction')!r}; supported: Right")
    return int(truncation.get("max_length") or UNTRUNCATED)


class StaticEmbeddingModule(ModuleConverter):
    """``sentence_transformers.models.StaticEmbedding``: read by the static kind, not by the embedding kind's chain."""

    class_name = "StaticEmbedding"
    stage = "static"

    @classmethod
    def read(cls, entry: ModuleEntry, problems: list[str]) -> StaticConfig | None:
        tokenizer_json = entry.folder / "tokenizer.json"
        if not tokenizer_json.is_file():
            raise InvalidModelError(f"{tokenizer_json}: file not found (a StaticEmbedding's tokenizer)")
        weights, key = _weights(entry.folder)
        if weights.dtype != torch.float32:
            problems.append(f"{weights_file(entry.folder)}: {key} is {str(weights.dtype).removeprefix('torch.')}: "
                            "SentenceTransformer then averages and normalizes in that precision (an empty text "
                            "gives NaN), which no exported graph reproduces; save the model in float32: "
                            "SentenceTransformer(path).float().save(new_path)")
        return StaticConfig(folder=entry.folder, rows=int(weights.shape[0]), dim=int(weights.shape[1]),
                            max_seq_length=_truncation(tokenizer_json, problems), weights_key=key)

    def weights(self) -> torch.Tensor:
        """Return the float32 [rows, D] table, one row per token id."""
        return _weights(self.config.folder)[0].float()

    def output_dim(self, input_dim: int) -> int:
        return self.config.dim

    def build(self) -> torch.nn.Module:
        return _EmbeddingBagMean(self.weights())

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"rows": c.rows, "dim": c.dim, "weights": c.weights_key, "mean": "of the rows of the text's ids",
                "max_seq_length": None if c.max_seq_length == UNTRUNCATED else c.max_seq_length}


class _EmbeddingBagMean(torch.nn.Module):
    """``EmbeddingBag(mode="mean")`` on padded [N, L] ids: the rows of the unmasked ids, averaged (0 for none)."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.weight = torch.nn.Parameter(weights, requires_grad=False)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mask = features["attention_mask"].unsqueeze(-1).to(self.weight.dtype)
        summed = (torch.nn.functional.embedding(features["input_ids"], self.weight) * mask).sum(dim=1)
        features["sentence_embedding"] = summed / mask.sum(dim=1).clamp(min=1.0)
        return features


def _head(entries: list[ModuleEntry], problems: list[str]) -> list[ModuleConverter]:
    """Return the converters after the StaticEmbedding (a Normalize or none)."""
    from .. import modules as module_registry

    names = [e.class_name for e in entries]
    if names[1:] not in ([], ["Normalize"]):
        problems.append(f"module chain {' → '.join(names)}; supported for a static embedding: {SUPPORTED_CHAIN}")
        return []
    head = []
    for entry in entries[1:]:
        cls = module_registry.converter_class(entry.type_name)
        head.append(cls(entry, cls.read(entry, problems)))
    return head


def _reference_tokenizer(folder: Path) -> Any:
    """Return the tokenizer StaticEmbedding runs (its tokenizer.json), wrapped for the family readers."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    try:
        backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:  # tokenizers raises Exception subclasses with its parser's text
        raise InvalidModelError(f"{folder / 'tokenizer.json'}: cannot load it ({exc})") from None
    return PreTrainedTokenizerFast(tokenizer_object=backend)


def read_static_model(path: Path) -> Any:
    """Return the validated ModelSpec of a static embedding folder (every problem listed at once).

    Raises:
        InvalidModelError: tokenizer.json or the weights are missing or unreadable.
        UnsupportedModelError: other modules than Normalize after it, weights in another precision than float32,
            a default prompt, a tokenizer no family reads.
    """
    from .. import tokenizers as tokenizer_registry
    from ..model import ModelSpec, weight_hashes
    from ..modules.transformer import TransformerConfig

    problems: list[str] = []
    entries = _chain(path)
    static = StaticEmbeddingModule(entries[0], StaticEmbeddingModule.read(entries[0], problems))
    converters = [static, *_head(entries, problems)]
    problems += prompt_problems(path, "static embedding")
    config = static.config
    settings = TransformerConfig(folder=config.folder, model_type="StaticEmbedding", hidden_size=config.dim,
                                 max_seq_length=config.max_seq_length, do_lower_case=False, architecture=None,
                                 max_positions=config.max_seq_length, vocab_rows=config.rows, specials=False)
    tokenizer = tokenizer_registry.read_tokenizer(settings, problems, _reference_tokenizer(config.folder))
    if problems:
        raise UnsupportedModelError(problems)
    return ModelSpec(path=path, modules=converters, tokenizer=tokenizer, embedding_dim=config.dim,
                     weight_files=weight_hashes(path, converters), kind="static")


@register
class Static(Embedding):
    name = "static"
    order = 50
    targets = None  # every target: onnx, savedmodel, tflite (its families), triton, tfserving
    no_variants = "a static embedding is a table lookup and a mean: no encoder to optimize or quantize"

    @classmethod
    def claims(cls, path: Path) -> bool:
        if st_model_type(path) not in (None, "SentenceTransformer"):
            return False
        rows = read_json(path / "modules.json", required=False)
        first = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else {}
        return str(first.get("type", "")).rsplit(".", 1)[-1] == "StaticEmbedding"

    def read(self, path: Path, *, trust_remote_code: bool = False) -> Any:
        from ..model import with_stored_truncate_dim

        return with_stored_truncate_dim(read_static_model(path))

    def reference(self, spec: Any) -> Any:
        from ..verify.reference import StaticReferenceRunner

        return StaticReferenceRunner(spec.path, truncate_dim=spec.truncate_dim)
