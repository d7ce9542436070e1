"""The sparse kind: a SPLADE ``SparseEncoder`` folder, ``text`` [B] in, ``indices`` and ``values`` [B, K] out.

Read as sentence-transformers 6.2 loads it: a ``modules.json`` of a masked LM (``MLMTransformer``, or
``Transformer`` with ``transformer_task`` ``fill-mask``) and ``SpladePooling`` (``pooling_strategy`` max or sum,
``activation_function`` relu or log1p_relu); ``config_sentence_transformers.json`` says ``"model_type":
"SparseEncoder"`` and may set ``max_active_dims``. The graph keeps the top-K dimensions of each text
(:mod:`exporter.graphs.splade`). Inference-free (``Router``) models and ``SparseAutoEncoder`` heads are refused by
name.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from ..errors import InvalidModelError, InvalidOptionError, UnsupportedModelError
from ..files import read_json
from ..progress import counted, note
from . import Kind, one_at_a_time, prompt_problems, register, st_model_type

SUPPORTED_CHAIN = ("MLMTransformer (or Transformer with transformer_task \"fill-mask\") → SpladePooling "
                   "(a SPLADE model)")
REFUSED_MODULES = {
    "Router": "inference-free SPLADE (a Router of SparseStaticEmbedding queries and MLM documents) is not exported "
              "yet",
    "SparseStaticEmbedding": "inference-free SPLADE (SparseStaticEmbedding) is not exported yet",
    "SparseAutoEncoder": "SparseAutoEncoder (CSR) heads on a dense model are not exported yet",
}
POOLING = ("max", "sum")
ACTIVATIONS = ("relu", "log1p_relu")


@dataclass(frozen=True)
class SparseHead:
    """What a SparseEncoder adds to its masked LM, and how many dimensions the graph keeps."""

    pooling_strategy: str
    activation_function: str
    #: rows of the masked LM's output (config.json vocab_size)
    vocab_size: int
    #: config_sentence_transformers.json max_active_dims (None: every non-zero dimension)
    max_active_dims: int | None
    #: the reference tokenizer returns token_type_ids (BERT); False: the model is fed zeros (XLM-R, RoBERTa)
    token_type_ids: bool
    model_class: str
    #: K of the graph: --sparse-top-k, else max_active_dims, else 0 (every non-zero dimension of the batch)
    top_k: int = 0
    #: the graph also outputs ``dense`` [B, vocab] (--sparse-dense)
    dense: bool = False

    def describe(self) -> dict[str, Any]:
        return {"pooling_strategy": self.pooling_strategy, "activation_function": self.activation_function,
                "vocab_size": self.vocab_size, "max_active_dims": self.max_active_dims,
                "model_class": self.model_class}


def _entries(path: Path) -> list[Any]:
    from ..model import _entries as model_entries

    return model_entries(path)


def _chain_problems(entries: list[Any]) -> list[str]:
    problems = [f"modules.json entry {e.index} has type {e.type_name!r}: {REFUSED_MODULES[e.class_name]}; "
                f"supported: {SUPPORTED_CHAIN}" for e in entries if e.class_name in REFUSED_MODULES]
    names = [e.class_name for e in entries]
    if not problems and (len(names) != 2 or names[0] not in ("MLMTransformer", "Transformer")
                         or names[1] != "SpladePooling"):
        problems.append(f"SparseEncoder module chain {' → '.join(names) or '(none)'}; supported: {SUPPORTED_CHAIN}")
    return problems


def _task_problems(entry: Any, config: dict[str, Any]) -> list[str]:
    sbert = read_json(entry.folder / "sentence_bert_config.json", required=False) or {}
    default = "fill-mask" if entry.class_name == "MLMTransformer" else "feature-extraction"
    task = sbert.get("transformer_task", default) if isinstance(sbert, dict) else None
    if task != "fill-mask":
        return [f"{entry.folder / 'sentence_bert_config.json'}: transformer_task {task!r}; supported: "
                f"{SUPPORTED_CHAIN}"]
    classes = config.get("architectures") or []
    if classes and not str(classes[0]).endswith("ForMaskedLM"):
        return [f"{entry.folder / 'config.json'}: architectures {classes}; supported: {SUPPORTED_CHAIN}"]
    return []


def _pooling(folder: Path, problems: list[str]) -> tuple[str, str]:
    config = read_json(folder / "config.json", required=False) or {}
    strategy = config.get("pooling_strategy", "max")
    activation = config.get("activation_function", "relu")
    if strategy not in POOLING:
        problems.append(f"{folder / 'config.json'}: pooling_strategy {strategy!r}; supported: {', '.join(POOLING)}")
    if activation not in ACTIVATIONS:
        problems.append(f"{folder / 'config.json'}: activation_function {activation!r}; supported: "
                        f"{', '.join(ACTIVATIONS)}")
    return str(strategy), str(activation)


def _st_config(path: Path) -> dict[str, Any]:
    config = read_json(path / "config_sentence_transformers.json", required=False) or {}
    return config if isinstance(config, dict) else {}


def _max_active_dims(path: Path, problems: list[str]) -> int | None:
    value = _st_config(path).get("max_active_dims")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        problems.append(f"{path / 'config_sentence_transformers.json'}: max_active_dims {value!r} is not a positive "
                        "whole number (SparseEncoder refuses it too)")
        return None
    return value


def read_sparse(path: Path, *, trust_remote_code: bool = False) -> Any:
    """Return the validated ModelSpec of a SparseEncoder folder (every problem listed at once).

    Raises:
        InvalidModelError: a required file is missing or corrupt.
        UnsupportedModelError: a Router (inference-free SPLADE), a SparseAutoEncoder, another module chain, a pooling
            or activation SpladePooling does not have, or what an embedding model is refused for.
    """
    from .. import tokenizers as tokenizer_registry
    from ..model import ModelSpec, weight_hashes
    from ..modules.transformer import Transformer

    entries = [replace(entry, trust_remote_code=trust_remote_code) for entry in _entries(path)]
    problems = _chain_problems(entries)
    if problems:
        raise UnsupportedModelError(problems)
    entry, pooling = entries
    config = read_json(entry.folder / "config.json", required=False)
    if not isinstance(config, dict):
        raise InvalidModelError(f"{entry.folder / 'config.json'}: file not found or not a JSON object (the "
                                "transformer's config)")
    problems += _task_problems(entry, config)
    if problems:
        raise UnsupportedModelError(problems)
    converter = Transformer(entry, Transformer.read(entry, problems))
    problems += prompt_problems(path, "SparseEncoder")
    strategy, activation = _pooling(pooling.folder, problems)
    max_active = _max_active_dims(path, problems)
    tokenizer = tokenizer_registry.read_tokenizer(converter.config, problems) if converter.config else None
    if problems:
        raise UnsupportedModelError(problems)
    fed_types = "token_type_ids" in tokenizer_registry.reference_tokenizer(converter.config).model_input_names
    vocab = int(config.get("vocab_size") or 0)
    head = SparseHead(pooling_strategy=strategy, activation_function=activation, vocab_size=vocab,
                      max_active_dims=max_active, token_type_ids=fed_types,
                      model_class=str((config.get("architectures") or ["?"])[0]), top_k=max_active or 0)
    return ModelSpec(path=path, modules=[converter], tokenizer=tokenizer, embedding_dim=vocab,
                     weight_files=weight_hashes(path, [converter]), kind="sparse", head=head)


def vocabulary(spec: Any) -> list[str | None]:
    """Return the token of each output dimension, as SparseEncoder.decode names it (None past the tokenizer's)."""
    from .. import tokenizers as tokenizer_registry

    reference = tokenizer_registry.reference_tokenizer(spec.transformer)
    known = len(reference)
    tokens = reference.convert_ids_to_tokens(list(range(min(known, spec.head.vocab_size))))
    return [*tokens, *([None] * (spec.head.vocab_size - len(tokens)))]


def _top_k_option(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidOptionError(f"--sparse-top-k {value!r}: expected a whole number ≥ 0 (0: every non-zero "
                                 "dimension)")
    return value


@register
class Sparse(Kind):
    name = "sparse"
    targets = None  # every target: onnx, savedmodel, tflite (its families), triton, tfserving
    no_variants = ("the optimized and int8 onnx files are built for the embedding and reranker graphs; a SPLADE "
                   "graph's top-K would need its own int8 bar (its active dimensions move): not written yet")

    no_tflite_variants = ("TFLite's fp16 and int8 files move a SPLADE model's active dimensions (216 of 264 parity runs "
                          "differ in the int8 file of the tests' model), and no bar on them is calibrated yet")

    def run_once(self, runner: Any) -> Any:
        return runner.encode_sparse(["a"])

    @classmethod
    def claims(cls, path: Path) -> bool:
        return st_model_type(path) == "SparseEncoder"

    def read(self, path: Path, *, trust_remote_code: bool = False) -> Any:
        return read_sparse(path, trust_remote_code=trust_remote_code)

    def configured(self, spec: Any, options: dict[str, Any]) -> Any:
        top_k = options.get("sparse_top_k")
        head = spec.head
        if top_k is not None:
            head = replace(head, top_k=_top_k_option(top_k))
        if options.get("sparse_dense"):
            head = replace(head, dense=True)
        return replace(spec, head=head)

    def recorded_options(self, manifest: dict[str, Any]) -> dict[str, Any]:
        recorded = manifest.get("sparse") or {}
        return {"sparse_top_k": recorded.get("top_k"), "sparse_dense": bool(recorded.get("dense"))}

    def onnx_tokenizer(self, spec: Any, *, opset: int, ir_version: int) -> Any:
        from ..tokenizers.shared.framing_onnx import tokenizer_model

        return tokenizer_model(spec.tokenizer, opset=opset, ir_version=ir_version)

    def export_encoder(self, spec: Any, path: Path, *, opset: int, external_data: bool) -> Any:
        from ..graphs.splade import export_splade

        return export_splade(spec, path, opset=opset, external_data=external_data)

    def compose_onnx(self, tokenizer: Any, encoder: Any, spec: Any) -> Any:
        from ..graphs.compose import compose_string_model
        from ..graphs.splade import output_names

        return compose_string_model(tokenizer, encoder, outputs=output_names(spec.head.dense))

    def manifest_io(self, spec: Any) -> dict[str, Any]:
        from ..graphs.splade import PAD_INDEX

        head = spec.head
        k = head.top_k or "k"
        outputs = {"name": "values", "type": "float32", "shape": ["batch", k],
                   "indices": {"name": "indices", "type": "int64", "shape": ["batch", k]},
                   **({"dense": {"name": "dense", "type": "float32", "shape": ["batch", head.vocab_size]}}
                      if head.dense else {})}
        return {"input": {"name": "text", "type": "string", "shape": ["batch"]}, "output": outputs,
                "head": head.describe(),
                "sparse": {"top_k": head.top_k, "k": f"{head.top_k} (at most the vocabulary)" if head.top_k else
                           "0: every non-zero dimension; K is the largest count of non-zero values of a row in the "
                           "batch", "sorted": "values in descending order", "pad": {"index": PAD_INDEX, "value": 0},
                           "dense": head.dense, "vocabulary": vocabulary(spec)},
                "empty_batch": "a batch of 0 texts returns [0, K] indices and values and [0, 0] token arrays"}

    def corpus(self, source: "str | Path | Sequence[str] | None") -> tuple[list[str], dict[str, Any]]:
        from ..verify.corpus import parity_texts_with

        return parity_texts_with(source)

    def reference(self, spec: Any) -> Any:
        from ..verify.sparse import SparseReferenceRunner

        return SparseReferenceRunner(spec.path, trust_remote_code=spec.transformer.trust_remote_code)

    def expected(self, reference: Any, inputs: list[str]) -> Any:
        return reference.dense(inputs)

    def parity(self, target: Any, out: Path, reference: Any, inputs: list[str], expected: Any,
               known: dict[str, tuple[str, list[str]]]) -> dict[str, Any]:
        from ..verify.parity import compare_tokens
        from ..verify.sparse import compare_sparse

        runners = target.runners(out)
        results: dict[str, Any] = {}
        if "tokenizer" in runners:
            note(f"token ids of {len(inputs)} texts, alone and as one batch")
            results["tokens"] = compare_tokens(reference, runners["tokenizer"], inputs).to_dict()
        note(f"sparse vectors, batches of {'/'.join(str(b or 'all') for b in target.parity_batch_sizes)}")
        results["sparse"] = compare_sparse(expected, runners["model"], inputs,
                                           batch_sizes=target.parity_batch_sizes,
                                           max_abs_diff=target.thresholds.max_abs_diff).to_dict()
        runners.clear()  # closed before the variants open (one_at_a_time says why)
        variants = target.variants(out)
        if variants:
            results["variants"] = {
                v.name: {"file": v.file, "bytes": (out / v.file).stat().st_size,
                         **({"shows": v.shows} if v.shows else {}),
                         **compare_sparse(expected, v.runner, inputs, batch_sizes=v.batch_sizes,
                                          max_abs_diff=v.thresholds.max_abs_diff).to_dict()}
                for v in one_at_a_time(counted(variants, lambda v: f"variant {target.name}:{v.name}"))}
        return results
