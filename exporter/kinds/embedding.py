"""The embedding kind: a ``SentenceTransformer`` folder, ``text`` [B] in, ``sentence_embedding`` [B, D] out."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..progress import counted, note
from ..verify.corpus import parity_texts_with
from ..verify.parity import compare_embeddings, compare_tokens
from ..verify.reference import ReferenceRunner
from . import Kind, register


@register
class Embedding(Kind):
    name = "embedding"
    order = 100

    @classmethod
    def claims(cls, path: Path) -> bool:
        return True

    def read(self, path: Path) -> Any:
        from ..model import read_embedding_model, with_stored_truncate_dim

        return with_stored_truncate_dim(read_embedding_model(path))

    def onnx_tokenizer(self, spec: Any, *, opset: int, ir_version: int) -> Any:
        from ..tokenizers.shared.framing_onnx import tokenizer_model

        return tokenizer_model(spec.tokenizer, opset=opset, ir_version=ir_version)

    def export_encoder(self, spec: Any, path: Path, *, opset: int, external_data: bool) -> Any:
        from ..graphs.encoder import export_encoder

        return export_encoder(spec, path, opset=opset, external_data=external_data)

    def compose_onnx(self, tokenizer: Any, encoder: Any, spec: Any) -> Any:
        from ..graphs.compose import compose_string_model

        return compose_string_model(tokenizer, encoder, prompt=spec.prompt)

    def manifest_io(self, spec: Any) -> dict[str, Any]:
        return {"input": {"name": "text", "type": "string", "shape": ["batch"]},
                "output": {"name": "sentence_embedding", "type": "float32", "shape": ["batch", spec.embedding_dim]},
                "empty_batch": "a batch of 0 texts returns a [0, D] embedding and [0, 0] token arrays"}

    def corpus(self, source: "str | Path | Sequence[str] | None") -> tuple[list[str], dict[str, Any]]:
        return parity_texts_with(source)

    def reference(self, spec: Any) -> ReferenceRunner:
        return ReferenceRunner(spec.path, truncate_dim=spec.truncate_dim)

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
        variants = target.variants(out)
        if variants:
            results["variants"] = {
                v.name: {"file": v.file, "bytes": (out / v.file).stat().st_size,
                         **({"shows": v.shows} if v.shows else {}),
                         **compare_embeddings(reference, v.runner, texts, thresholds=v.thresholds,
                                              batch_sizes=v.batch_sizes, reference_embeddings=expected).to_dict()}
                for v in counted(variants, lambda v: f"variant {target.name}:{v.name}")}
        return results
