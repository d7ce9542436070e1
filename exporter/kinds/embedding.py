"""The embedding kind: a ``SentenceTransformer`` folder, ``text`` [B] in, ``sentence_embedding`` [B, D] out."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..progress import counted, note
from ..runtime.artifacts import ARTIFACTS, artifact
from ..runtime.prompts import graph_keys, prompt_file
from ..verify.corpus import parity_texts_with
from ..verify.parity import compare_embeddings, compare_tokens
from ..verify.reference import ReferenceRunner
from . import Kind, one_at_a_time, register


def prompts_described(spec: Any) -> dict[str, Any]:
    """Return the manifest's ``prompts``: the default prompt's name and, for each prompt, its text, the key of the graph
    that holds it ("" for the main one: model.onnx, serving_default) and the first token pooling takes."""
    keys = graph_keys(spec.prompts, spec.prompt)
    return {"default_prompt_name": spec.default_prompt_name,
            "prompts": {name: {"text": text, "key": keys[name], "pooled_from_token": spec.with_prompt(text).pooled_from_token}
                        for name, text in spec.prompts.items()}}


@register
class Embedding(Kind):
    name = "embedding"
    order = 100

    @classmethod
    def claims(cls, path: Path) -> bool:
        return True

    def read(self, path: Path, *, trust_remote_code: bool = False) -> Any:
        from ..model import read_embedding_model, with_stored_truncate_dim

        return with_stored_truncate_dim(read_embedding_model(path, trust_remote_code=trust_remote_code))

    def onnx_tokenizer(self, spec: Any, *, opset: int, ir_version: int) -> Any:
        from ..tokenizers.shared.framing_onnx import tokenizer_model

        return tokenizer_model(spec.tokenizer, opset=opset, ir_version=ir_version)

    def export_encoder(self, spec: Any, path: Path, *, opset: int, external_data: bool,
                       prompt_input: bool = False) -> Any:
        from ..graphs.encoder import export_encoder

        return export_encoder(spec, path, opset=opset, external_data=external_data, prompt_input=prompt_input)

    def compose_onnx(self, tokenizer: Any, encoder: Any, spec: Any) -> Any:
        from ..graphs.compose import compose_string_model

        return compose_string_model(tokenizer, encoder, prompt=spec.prompt)

    def manifest_io(self, spec: Any) -> dict[str, Any]:
        return {"input": {"name": "text", "type": "string", "shape": ["batch"]},
                "output": {"name": "sentence_embedding", "type": "float32", "shape": ["batch", spec.embedding_dim]},
                "empty_batch": "a batch of 0 texts returns a [0, D] embedding and [0, 0] token arrays",
                "prompts": prompts_described(spec)}

    def corpus(self, source: "str | Path | Sequence[str] | None") -> tuple[list[str], dict[str, Any]]:
        return parity_texts_with(source)

    def reference(self, spec: Any) -> ReferenceRunner:
        return ReferenceRunner(spec.path, truncate_dim=spec.truncate_dim,
                               trust_remote_code=spec.transformer.trust_remote_code)

    def expected(self, reference: ReferenceRunner, inputs: list[str]) -> Any:
        return reference.encode(inputs)

    def parity(self, target: Any, out: Path, reference: Any, inputs: list[str], expected: Any,
               known: dict[str, tuple[str, list[str]]]) -> dict[str, Any]:
        texts = inputs
        runners = target.runners(out)
        results: dict[str, Any] = {}
        if "tokenizer" in runners:
            note(f"token ids of {len(texts)} texts, alone and as one batch")
            results["tokens"] = compare_tokens(reference, runners["tokenizer"], texts).to_dict()
            if known:  # recorded, not failed: classes a kernel decides otherwise (kernel_decided: why, what fixes them)
                results["tokens"]["kernel_decided"] = {
                    name: {"why": why, "texts": len(sweep),
                           "mismatches": compare_tokens(reference, runners["tokenizer"], sweep, alone=False).count}
                    for name, (why, sweep) in known.items()}
        note(f"embeddings, batches of {'/'.join(str(b or 'all') for b in target.parity_batch_sizes)}")
        results["embeddings"] = compare_embeddings(reference, runners["model"], texts, thresholds=target.thresholds,
                                                   batch_sizes=target.parity_batch_sizes,
                                                   reference_embeddings=expected).to_dict()
        prompts = self._prompt_parity(artifact(target.name), out, reference, texts, runners,
                                      thresholds=target.thresholds, batch_sizes=target.parity_batch_sizes)
        runners.clear()  # closed before the variants open (one_at_a_time says why)
        variants = target.variants(out)
        if variants:
            results["variants"] = {v.name: self._variant_parity(target, v, out, reference, texts, expected)
                                   for v in one_at_a_time(counted(variants, lambda v: f"variant {target.name}:{v.name}"))}
        if prompts:
            results["prompts"] = prompts
        return results

    def _variant_parity(self, target: Any, variant: Any, out: Path, reference: Any, texts: list[str],
                        expected: Any) -> dict[str, Any]:
        """Return a variant's figures, with its prompt graphs' where it holds the other prompts (TFLite's)."""
        report = {"file": variant.file, "bytes": (out / variant.file).stat().st_size,
                  **({"shows": variant.shows} if variant.shows else {}),
                  **compare_embeddings(reference, variant.runner, texts, thresholds=variant.thresholds,
                                       batch_sizes=variant.batch_sizes, reference_embeddings=expected).to_dict()}
        row = next((row for row in ARTIFACTS if row.target == f"{target.name}:{variant.name}"), None)
        prompts = self._prompt_parity(row, out, reference, texts, {"model": variant.runner},
                                      thresholds=variant.thresholds, batch_sizes=variant.batch_sizes) if row else {}
        if prompts:
            report["prompts"] = prompts
            report["failures"] += [f"prompt {name!r}: {failure}" for name, prompt in prompts.items()
                                   for failure in prompt["failures"]]  # a variant has no tokenizer of its own
            report["passed"] = not report["failures"]
        return report

    def _prompt_parity(self, row: Any, out: Path, reference: Any, texts: list[str], runners: dict[str, Any], *,
                       thresholds: Any, batch_sizes: Any) -> dict[str, Any]:
        """Return {prompt name: its graph's figures} for each prompt graph besides the default one that the file of
        ``row`` (a row of the table of artifacts) holds: the token ids of prompt + text where ``runners`` has a
        tokenizer, and the embeddings, against ``encode(prompt_name=...)``."""
        model = reference.model
        default = model.prompts.get(model.default_prompt_name, "") if model.default_prompt_name else ""
        keys = graph_keys(model.prompts, default)
        first = {key: name for name, key in reversed(keys.items()) if key}
        if not first or not row.prompts:
            return {}
        results = {}
        for key, name in counted(sorted(first.items()), lambda item: f"prompt {item[1]!r} of {row.target}"):
            runner = row.open_prompt(out, key, opened=runners["model"])
            graph = prompt_file(row.file, key) if row.prompts == "file" else key
            results[name] = {"graph": graph, **({"bytes": (out / graph).stat().st_size} if row.prompts == "file" else {}),
                             **compare_embeddings(reference.prompted(name), runner, texts, thresholds=thresholds,
                                                  batch_sizes=batch_sizes,
                                                  reference_embeddings=_prompted_expected(reference, name, texts))
                             .to_dict()}
            if "tokenizer" in runners:
                tokens = compare_tokens(reference, runners["tokenizer"], [model.prompts[name] + text for text in texts])
                results[name]["tokens"] = tokens.to_dict()
            results[name]["passed"] = not results[name]["failures"] and results[name].get("tokens", {}).get("passed", True)
        return results


def _prompted_expected(reference: Any, name: str, texts: list[str]) -> Any:
    """Return ``encode(texts, prompt_name=name)`` of the reference, computed once per export or check."""
    cache = reference.__dict__.setdefault("prompted_expected", {})
    key = (name, hash(tuple(texts)))
    if key not in cache:
        cache[key] = reference.prompted(name).encode(texts)
    return cache[key]
