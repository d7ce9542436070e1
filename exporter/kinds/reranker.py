"""The reranker kind: a ``CrossEncoder`` folder, ``query`` [B] and ``document`` [B] in, ``score`` and ``logits`` out.

Read as sentence-transformers 6.2 loads it: a ``modules.json`` of one ``Transformer`` whose
``transformer_task`` is ``sequence-classification`` (``config_sentence_transformers.json`` says
``"model_type": "CrossEncoder"``), or a plain transformers folder of a ``…ForSequenceClassification``
model as CrossEncoders saved before sentence-transformers 5 are. The activation is CrossEncoder's
``activation_fn``: ``config_sentence_transformers.json``, else ``config.json``'s
``sentence_transformers.activation_fn``, else Sigmoid for one label and Identity for more.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from .. import model_folder
from ..errors import InvalidModelError, UnsupportedModelError
from ..files import read_json
from ..modules import ModuleEntry
from ..progress import counted, note
from . import Kind, one_at_a_time, register, st_model_type

#: CrossEncoder activation_fn paths the graphs hold, by class name (torch.nn.<name> and its full module path)
ACTIVATIONS = ("Sigmoid", "Identity", "Tanh", "Softmax", "ReLU", "GELU", "LogSoftmax")
SUPPORTED_CHAIN = "one Transformer with transformer_task \"sequence-classification\" (a …ForSequenceClassification model)"
LLM_REFUSAL = ("LLM rerankers (a causal LM scored by its yes/no logits, sentence-transformers' LogitScore) are not "
               "exported yet (a later issue)")


@dataclass(frozen=True)
class ClassifierHead:
    """What a CrossEncoder adds to its transformer: the labels and the activation ``predict`` applies."""

    num_labels: int
    #: the activation's torch path as CrossEncoder saves it, e.g. "torch.nn.modules.activation.Sigmoid"
    activation: str
    #: where the activation was read ("default for 1 label" when no file says)
    activation_from: str
    #: the reference tokenizer returns token_type_ids (BERT); False: the model is fed zeros (XLM-R, RoBERTa)
    token_type_ids: bool
    model_class: str

    @property
    def activation_name(self) -> str:
        return self.activation.rsplit(".", 1)[-1]

    def activation_module(self) -> Any:
        """Return the activation as a torch module (Softmax over the labels, as CrossEncoder applies it to 2-D logits)."""
        import torch

        return torch.nn.Softmax(dim=-1) if self.activation_name == "Softmax" else (
            torch.nn.LogSoftmax(dim=-1) if self.activation_name == "LogSoftmax" else
            getattr(torch.nn, self.activation_name)())

    def describe(self) -> dict[str, Any]:
        return {"num_labels": self.num_labels, "activation": self.activation, "activation_from": self.activation_from,
                "model_class": self.model_class}


def _declared_activation(path: Path, config: dict[str, Any]) -> tuple[str | None, str]:
    """Return (the activation path CrossEncoder reads, the file and key it comes from) or (None, "")."""
    st_config = read_json(path / "config_sentence_transformers.json", required=False) or {}
    if isinstance(st_config, dict) and st_config.get("activation_fn"):
        return st_config["activation_fn"], "config_sentence_transformers.json activation_fn"
    nested = config.get("sentence_transformers")
    if isinstance(nested, dict) and nested.get("activation_fn"):
        return nested["activation_fn"], "config.json sentence_transformers.activation_fn"
    if config.get("sbert_ce_default_activation_function"):
        return config["sbert_ce_default_activation_function"], "config.json sbert_ce_default_activation_function"
    return None, ""


def _activation(path: Path, config: dict[str, Any], num_labels: int, problems: list[str]) -> tuple[str, str]:
    declared, where = _declared_activation(path, config)
    if declared is None:
        name = "Sigmoid" if num_labels == 1 else "Identity"
        module = "linear" if name == "Identity" else "activation"
        return f"torch.nn.modules.{module}.{name}", f"default for {num_labels} label(s)"
    if not isinstance(declared, str) or not declared.startswith("torch.nn.") or \
            declared.rsplit(".", 1)[-1] not in ACTIVATIONS:
        problems.append(f"{where} {declared!r}: an activation the graphs cannot hold (CrossEncoder loads a path "
                        f"outside torch only with trust_remote_code=True); supported: torch.nn "
                        f"{', '.join(ACTIVATIONS)}")
    return str(declared), where


def _entry(path: Path, problems: list[str]) -> ModuleEntry:
    """Return the one Transformer entry of a CrossEncoder (the folder itself for a plain transformers folder)."""
    rows = read_json(path / "modules.json", required=False)
    if rows is None:
        return ModuleEntry(index=0, name="0", folder=path, type_name="sentence_transformers.base.modules.Transformer")
    if not isinstance(rows, list) or not all(isinstance(row, dict) and "type" in row for row in rows):
        raise InvalidModelError(f"{path / 'modules.json'}: expected a list of objects with 'type' and 'path'")
    outside = model_folder.module_problems(path, [row.get("path", "") for row in rows])
    if outside:
        raise InvalidModelError(model_folder.refusal(path, outside))
    entries = [ModuleEntry(index=i, name=str(row.get("name", i)), folder=path / str(row.get("path", "")),
                           type_name=str(row["type"])) for i, row in enumerate(rows)]
    for entry in entries:
        if entry.class_name == "LogitScore":
            problems.append(f"modules.json entry {entry.index} has type {entry.type_name!r}: {LLM_REFUSAL}; "
                            f"supported: {SUPPORTED_CHAIN}")
    if not problems and [e.class_name for e in entries] != ["Transformer"]:
        problems.append(f"CrossEncoder module chain {' → '.join(e.class_name for e in entries) or '(none)'}; "
                        f"supported: {SUPPORTED_CHAIN}")
    return entries[0] if entries else ModuleEntry(0, "0", path, "")


def _task_problems(folder: Path, config: dict[str, Any]) -> list[str]:
    """Return why the transformer is not a sequence classifier (an LLM reranker named as such)."""
    sbert = read_json(folder / "sentence_bert_config.json", required=False) or {}
    task = sbert.get("transformer_task", "sequence-classification") if isinstance(sbert, dict) else None
    classes = config.get("architectures") or []
    if task == "text-generation" or any(str(c).endswith("ForCausalLM") for c in classes):
        return [f"{folder}: {LLM_REFUSAL}; supported: {SUPPORTED_CHAIN}"]
    if task != "sequence-classification":
        return [f"{folder / 'sentence_bert_config.json'}: transformer_task {task!r}; supported: {SUPPORTED_CHAIN}"]
    if classes and not str(classes[0]).endswith("ForSequenceClassification"):
        return [f"{folder / 'config.json'}: architectures {classes}; supported: {SUPPORTED_CHAIN}"]
    return []


def _num_labels(folder: Path, *, trust_remote_code: bool) -> int:
    """Return the labels transformers gives the model (``id2label``'s size; 2 when config.json says nothing)."""
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(str(folder), local_files_only=True,
                                          trust_remote_code=trust_remote_code).num_labels)


def _pair_problems(tokenizer: Any, where: Path) -> list[str]:
    framing = tokenizer.framing
    return [] if framing.pairs else [f"{where}: the tokenizer cannot frame (query, document) pairs: "
                                     f"{framing.pair_problem}"]


def _prompt_problems(path: Path) -> list[str]:
    config = read_json(path / "config_sentence_transformers.json", required=False) or {}
    name = config.get("default_prompt_name") if isinstance(config, dict) else None
    return [f"{path / 'config_sentence_transformers.json'}: default_prompt_name {name!r}: a CrossEncoder's prompt "
            "is not exported yet; remove it"] if name else []


def read_reranker(path: Path, *, trust_remote_code: bool = False) -> Any:
    """Return the validated ModelSpec of a CrossEncoder folder (every problem listed at once).

    Raises:
        InvalidModelError: a required file is missing or corrupt.
        UnsupportedModelError: an LLM reranker (LogitScore), another module chain, an activation the graphs
            cannot hold, a tokenizer without a pair template, or what an embedding model is refused for.
    """
    from .. import tokenizers as tokenizer_registry
    from ..model import ModelSpec, weight_hashes
    from ..modules.transformer import Transformer

    problems: list[str] = []
    entry = replace(_entry(path, problems), trust_remote_code=trust_remote_code)
    if problems:
        raise UnsupportedModelError(problems)
    config = read_json(entry.folder / "config.json", required=False)
    if not isinstance(config, dict):
        raise InvalidModelError(f"{entry.folder / 'config.json'}: file not found or not a JSON object (the "
                                "transformer's config)")
    problems += _task_problems(entry.folder, config)
    if problems:
        raise UnsupportedModelError(problems)
    converter = Transformer(entry, Transformer.read(entry, problems))
    problems += _prompt_problems(path)
    if converter.config is None:  # transformers could not load its config either (an architecture refused)
        raise UnsupportedModelError(problems)
    tokenizer = tokenizer_registry.read_tokenizer(converter.config, problems)
    if tokenizer is not None:
        problems += _pair_problems(tokenizer, entry.folder)
    num_labels = _num_labels(entry.folder, trust_remote_code=converter.config.trust_remote_code)
    activation, where = _activation(path, config, num_labels, problems)
    if problems:
        raise UnsupportedModelError(problems)
    fed_types = "token_type_ids" in tokenizer_registry.reference_tokenizer(converter.config).model_input_names
    head = ClassifierHead(num_labels=num_labels, activation=activation, activation_from=where,
                          token_type_ids=fed_types, model_class=str((config.get("architectures") or ["?"])[0]))
    return ModelSpec(path=path, modules=[converter], tokenizer=tokenizer, embedding_dim=num_labels,
                     weight_files=weight_hashes(path, [converter]), kind="reranker", head=head)


def _score_bars(target: str, variant: Any) -> dict[str, Any]:
    """Return compare_scores' bars for a variant: the onnx int8 variants' is RERANKER_INT8_MAX_SCORE_DIFF on the scores
    (its embedding bars, cosine and retention, do not apply to scores); else the variant's |Δ| bar on both."""
    from targets.onnx_variants import INT8_VARIANTS, RERANKER_INT8_MAX_SCORE_DIFF

    if target == "onnx" and variant.name in INT8_VARIANTS:
        return {"max_abs_diff": RERANKER_INT8_MAX_SCORE_DIFF, "logits_required": False}
    return {"max_abs_diff": variant.thresholds.max_abs_diff}


@register
class Reranker(Kind):
    name = "reranker"
    targets = None  # every target: onnx, savedmodel, tflite (its families), triton, tfserving

    def run_once(self, runner: Any) -> Any:
        return runner.score_and_logits(["a"], ["b"])

    def tokenize_once(self, runner: Any) -> Any:
        return runner.tokenize_pairs(["a"], ["b"])

    def variants_problem(self, spec: Any) -> str:
        from ..graphs.encoder_fused import classifier_fusion_problem

        return classifier_fusion_problem(spec)

    @classmethod
    def claims(cls, path: Path) -> bool:
        if st_model_type(path) == "CrossEncoder":
            return True
        if (path / "modules.json").exists():
            return False
        config = read_json(path / "config.json", required=False)
        classes = config.get("architectures") or [] if isinstance(config, dict) else []
        return any(str(c).endswith(("ForSequenceClassification", "ForCausalLM")) for c in classes) or (
            isinstance(config, dict) and isinstance(config.get("sentence_transformers"), dict))

    def read(self, path: Path, *, trust_remote_code: bool = False) -> Any:
        return read_reranker(path, trust_remote_code=trust_remote_code)

    def onnx_tokenizer(self, spec: Any, *, opset: int, ir_version: int) -> Any:
        from ..tokenizers.shared.framing_onnx import pair_tokenizer_model

        return pair_tokenizer_model(spec.tokenizer, opset=opset, ir_version=ir_version)

    def export_encoder(self, spec: Any, path: Path, *, opset: int, external_data: bool) -> Any:
        from ..graphs.classifier import export_classifier

        return export_classifier(spec, path, opset=opset, external_data=external_data)

    def compose_onnx(self, tokenizer: Any, encoder: Any, spec: Any) -> Any:
        from ..graphs.compose import compose_pair_model

        return compose_pair_model(tokenizer, encoder)

    def manifest_io(self, spec: Any) -> dict[str, Any]:
        labels = spec.head.num_labels
        return {"input": [{"name": "query", "type": "string", "shape": ["batch"]},
                          {"name": "document", "type": "string", "shape": ["batch"]}],
                "output": {"name": "score", "type": "float32", "shape": ["batch", labels],
                           "activation": spec.head.activation, "activation_from": spec.head.activation_from,
                           "logits": {"name": "logits", "type": "float32", "shape": ["batch", labels]}},
                "head": spec.head.describe(), "pair_framing": spec.tokenizer.framing.describe_pairs(),
                "empty_batch": "a batch of 0 pairs returns [0, num_labels] score and logits and [0, 0] token arrays"}

    def corpus(self, source: "str | Path | Sequence[Any] | None") -> tuple[list[Any], dict[str, Any]]:
        from ..verify.corpus.pairs import pair_corpus_with

        return pair_corpus_with(source)

    def reference(self, spec: Any) -> Any:
        from ..verify.reference import CrossEncoderRunner

        return CrossEncoderRunner(spec.path, trust_remote_code=spec.transformer.trust_remote_code)

    def expected(self, reference: Any, inputs: list[Any]) -> Any:
        return reference.score_and_logits([q for q, _ in inputs], [d for _, d in inputs])

    def parity(self, target: Any, out: Path, reference: Any, inputs: list[Any], expected: Any,
               known: dict[str, tuple[str, list[str]]]) -> dict[str, Any]:
        from ..verify.scores import PairTokenizer, compare_scores
        from ..verify.parity import compare_tokens

        runners = target.runners(out)
        results: dict[str, Any] = {}
        if "tokenizer" in runners:
            note(f"token ids of {len(inputs)} pairs, alone and as one batch")
            results["tokens"] = compare_tokens(PairTokenizer(reference), PairTokenizer(runners["tokenizer"]),
                                               inputs).to_dict()
        note(f"scores, batches of {'/'.join(str(b or 'all') for b in target.parity_batch_sizes)}")
        results["scores"] = compare_scores(expected, runners["model"], inputs, batch_sizes=target.parity_batch_sizes,
                                           max_abs_diff=target.thresholds.max_abs_diff).to_dict()
        runners.clear()  # closed before the variants open (one_at_a_time says why)
        variants = target.variants(out)  # onnx/tflite int8, Triton's _tf model: each held to its own |Δscore| bar
        if variants:
            results["variants"] = {
                v.name: {"file": v.file, "bytes": (out / v.file).stat().st_size,
                         **({"shows": v.shows} if v.shows else {}),
                         **compare_scores(expected, v.runner, inputs, batch_sizes=v.batch_sizes,
                                          **_score_bars(target.name, v)).to_dict()}
                for v in one_at_a_time(counted(variants, lambda v: f"variant {target.name}:{v.name}"))}
        return results
