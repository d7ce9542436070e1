"""``sentence_transformers.models.Transformer``: an encoder of a registered architecture (exporter/architectures)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .. import architectures
from ..architectures import Architecture, remote
from ..architectures.gte import native_route
from ..errors import InvalidModelError
from ..files import read_json, weights_file, weights_problem
from . import ModuleConverter, ModuleEntry, register


@dataclass(frozen=True)
class TransformerConfig:
    folder: Path
    model_type: str
    hidden_size: int
    max_seq_length: int
    do_lower_case: bool
    architecture: Architecture
    #: tokens one text may have, specials included (the architecture's position limit)
    max_positions: int
    #: rows of the word-embedding matrix (config.json ``vocab_size``; 0 when it does not say)
    vocab_rows: int = 0
    #: how the tokenizer is called to cut a (query, document) pair: ``processing_kwargs["text"]["truncation"]``
    #: where the settings give it, else sentence-transformers' "longest_first"
    pair_truncation: Any = "longest_first"
    #: False where the tokenizer is called with ``add_special_tokens=False`` (a ``StaticEmbedding``'s settings)
    specials: bool = True
    #: the model's own modeling code that runs (``--trust-remote-code``); None: transformers' own class
    remote_code: remote.RemoteCodeFiles | None = None

    @property
    def trust_remote_code(self) -> bool:
        """Return the ``trust_remote_code`` every loader of this transformer passes (True only when its code runs)."""
        return self.remote_code is not None


#: where sentence-transformers reads the Transformer's settings, the first file found (2.x named some per architecture)
SBERT_CONFIG_FILES = ("sentence_bert_config.json", "sentence_roberta_config.json", "sentence_distilbert_config.json",
                      "sentence_camembert_config.json", "sentence_albert_config.json",
                      "sentence_xlm-roberta_config.json", "sentence_xlnet_config.json")


def _sbert_config(folder: Path) -> tuple[Path, dict[str, Any]]:
    """Return (the file, its settings) of the first of :data:`SBERT_CONFIG_FILES` that has any."""
    for name in SBERT_CONFIG_FILES:
        data = read_json(folder / name, required=False)
        if data is not None and not isinstance(data, dict):
            raise InvalidModelError(f"{folder / name}: expected a JSON object of settings; restore the file from "
                                    "the original model")
        if data:
            return folder / name, data
    return folder / SBERT_CONFIG_FILES[0], {}


def _sequence_length_source(folder: Path, sbert_file: Path, sbert: dict[str, Any],
                            config: dict[str, Any]) -> tuple[Any, str, str]:
    """Return (the length sentence-transformers 6 truncates to, where it comes from, the field that sets it),
    as it computes them.

    ``processor_kwargs`` (2.x: ``tokenizer_args``) ``model_max_length`` first, then ``max_seq_length``, both taken
    as written; else the tokenizer's ``model_max_length`` (transformers' 1e30 when unset) capped at config.json
    ``max_position_embeddings``, which counts the padding rows of RoBERTa-style positions too.
    """
    kwargs = sbert["tokenizer_args"] if "tokenizer_args" in sbert else sbert.get("processor_kwargs")
    if isinstance(kwargs, dict) and "model_max_length" in kwargs:
        key = "tokenizer_args" if "tokenizer_args" in sbert else "processor_kwargs"
        return kwargs["model_max_length"], f"{sbert_file}: {key}.model_max_length", f"{key}.model_max_length"
    if sbert.get("max_seq_length") is not None:
        return sbert["max_seq_length"], f"{sbert_file}: max_seq_length", "max_seq_length"
    tokenizer_config = read_json(folder / "tokenizer_config.json", required=False) or {}
    limit = tokenizer_config.get("model_max_length", int(1e30))
    where = f"{folder / 'tokenizer_config.json'}: model_max_length"
    positions = config.get("max_position_embeddings")
    if _is_number(limit) and _is_number(positions) and positions != -1 and limit > positions:
        return positions, f"{where} {limit} capped by sentence-transformers at max_position_embeddings", "max_seq_length"
    return limit, where, "max_seq_length"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _max_seq_length(folder: Path, sbert_file: Path, sbert: dict[str, Any], config: dict[str, Any],
                    arch: Architecture, problems: list[str]) -> int:
    """Return the length SentenceTransformer truncates to, appending a problem when it cannot run with it.

    A length that is not a whole number fails inside the tokenizer, one over the positions inside the model
    (an index or size error on a long text); both are named here, with the file, the field and the fix.
    """
    value, where, field = _sequence_length_source(folder, sbert_file, sbert, config)
    max_positions = arch.max_positions(config)
    fix = (f"set {field} in {sbert_file.name} to a whole number from 1 to {max_positions}, the positions of "
           f"this {arch.model_type} model")
    if arch.position_offset:
        fix += f" (config.json max_position_embeddings less the {arch.position_offset} rows its position ids skip)"
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{where} {value!r} is not a whole number of tokens; {fix}")
    elif value < 1:
        problems.append(f"{where} {value} is not a positive number of tokens; {fix}")
    elif value > max_positions:
        problems.append(f"{where} {value} is over the {max_positions} positions of this {arch.model_type} model; "
                        f"{fix}")
    else:
        return value
    return max_positions


def _pair_truncation(sbert: dict[str, Any]) -> Any:
    """Return the ``truncation`` sentence-transformers calls the tokenizer with for text (its "longest_first" unless
    ``processing_kwargs["text"]`` sets another); the tokenizer framing says whether it can reproduce it."""
    kwargs = sbert.get("processing_kwargs")
    text = kwargs.get("text") if isinstance(kwargs, dict) else None
    return text.get("truncation", "longest_first") if isinstance(text, dict) else "longest_first"


def _tokenizer_path_problem(folder: Path, sbert_file: Path, sbert: dict[str, Any]) -> list[str]:
    """Return a problem when the settings load the tokenizer from elsewhere than the model's folder.

    sentence-transformers never saves the key; a value (a path from the working directory or a hub name)
    makes the reference tokenize with files the exporter does not read.
    """
    other = sbert.get("tokenizer_name_or_path")
    if other is None:
        return []
    return [f"{sbert_file}: tokenizer_name_or_path {other!r}: sentence-transformers would load the tokenizer from "
            f"there, not from the model folder; remove the key and keep the tokenizer's files in {folder}"]


def _architecture(entry: ModuleEntry, config: dict[str, Any],
                  problems: list[str]) -> tuple[Architecture | None, remote.RemoteCodeFiles | None]:
    """Return (the architecture, the model's own code that runs or None), appending why there is none to ``problems``.

    The model's own code (exporter/architectures/remote.py) runs only with ``--trust-remote-code``, and only from the
    model folder; without the flag a model that needs it is refused by the flag's name.
    """
    folder, model_type = entry.folder, config.get("model_type")
    if remote.runs_remote_code(config, trusted=entry.trust_remote_code):
        if not entry.trust_remote_code:
            problems.append(f"modules.json entry {entry.index}: {remote.untrusted_problem(folder, config)}")
        found = remote.reference_problems(folder, config)
        problems.extend(f"modules.json entry {entry.index}: {p}" for p in found)
        if found or not entry.trust_remote_code:
            # a hub code's model_type whose checkpoints a transformers class reads once config.json says so
            problems.extend(f"modules.json entry {entry.index}: {p}" for p in filter(None, [native_route(config)]))
            return None, None
        return remote.RemoteCode(str(model_type)), remote.remote_code_files(folder, config)
    arch = architectures.architecture(model_type)
    if arch is None:
        problems.append(
            f"modules.json entry {entry.index}: transformer architecture {model_type!r} "
            f"(config.json model_type); supported: {', '.join(architectures.supported())}"
        )
        problems.extend(f"modules.json entry {entry.index}: {p}" for p in filter(None, [native_route(config)]))
    return arch, None


@register
class Transformer(ModuleConverter):
    class_name = "Transformer"
    stage = "transformer"

    @classmethod
    def read(cls, entry: ModuleEntry, problems: list[str]) -> TransformerConfig | None:
        folder = entry.folder
        config = read_json(folder / "config.json", required=False)
        if config is None:
            raise InvalidModelError(f"{folder / 'config.json'}: file not found (the transformer's config)")
        model_type = config.get("model_type")
        arch, code = _architecture(entry, config, problems)
        if arch is None:
            return None
        weights = weights_file(folder)
        if weights is None:
            raise InvalidModelError(f"{folder}: no transformer weights (model.safetensors or pytorch_model.bin)")
        problems.extend(filter(None, [weights_problem(weights)]))
        problems.extend(f"modules.json entry {entry.index} ({model_type}): {p}" for p in arch.problems(config))
        sbert_file, sbert = _sbert_config(folder)
        problems.extend(_tokenizer_path_problem(folder, sbert_file, sbert))
        return TransformerConfig(
            folder=folder,
            model_type=model_type,
            hidden_size=arch.hidden_size(config),
            max_seq_length=_max_seq_length(folder, sbert_file, sbert, config, arch, problems),
            do_lower_case=bool(sbert.get("do_lower_case", False)),
            architecture=arch,
            max_positions=arch.max_positions(config),
            vocab_rows=int(config.get("vocab_size") or 0),
            pair_truncation=_pair_truncation(sbert),
            remote_code=code,
        )

    def output_dim(self, input_dim: int) -> int:
        return self.config.hidden_size

    def build(self) -> torch.nn.Module:
        return _TransformerModule(self.config)

    def describe(self) -> dict[str, Any]:
        c = self.config
        return {"architecture": c.model_type, "hidden_size": c.hidden_size, "max_seq_length": c.max_seq_length,
                "max_positions": c.max_positions}


class _TransformerModule(torch.nn.Module):
    def __init__(self, config: TransformerConfig):
        super().__init__()
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        # Eager attention exports to plain MatMul/Softmax at any opset; the folder's own code only with the flag.
        self.model = AutoModel.from_pretrained(
            str(config.folder),
            local_files_only=True,
            trust_remote_code=config.trust_remote_code,
            attn_implementation="eager",
        ).eval()
        self.architecture = config.architecture.for_model(self.model)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        kwargs = self.architecture.call_kwargs(self.model, features["input_ids"], features["attention_mask"],
                                               features["token_type_ids"])
        features["token_embeddings"] = self.model(**kwargs, return_dict=True).last_hidden_state
        return features
