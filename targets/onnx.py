"""The ONNX bridge: string-in ``model.onnx``, ``tokenizer.onnx`` and the custom-op-free ``encoder.onnx``."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import onnx

from exporter import kinds
from exporter.graphs.encoder import DEFAULT_OPSET, IR_VERSION
from exporter.graphs.shared_weights import DATA_FILE, SharedWeights
from exporter.progress import note
from exporter.runtime.artifacts import open_runner, open_tokenizer
from exporter.runtime.prompts import prompt_file
from exporter.tokenizers.shared.framing_onnx import DOMAINS

from . import BuildResult, Target, Variant, register
from .onnx_variants import build_variants, existing_variants, weight_only_variant

PROTOBUF_LIMIT = 2**31
#: oldest onnxruntime release that implements each default-domain opset
MIN_ONNXRUNTIME = {12: "1.6", 13: "1.7", 14: "1.8", 15: "1.10", 16: "1.11", 17: "1.12", 18: "1.14",
                   19: "1.16", 20: "1.17", 21: "1.20"}


def _io(model: onnx.ModelProto) -> dict[str, Any]:
    def rows(values):
        return [{"name": v.name, "type": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
                 if v.type.tensor_type.elem_type != onnx.TensorProto.STRING else "string",
                 "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]} for v in values]
    return {"inputs": rows(model.graph.input), "outputs": rows(model.graph.output)}


def _too_large_for_variants(weights: Path) -> str:
    """Return why the variants cannot be built for weights this large ("" when they can)."""
    size = weights.stat().st_size
    if size < PROTOBUF_LIMIT:
        return ""
    return (f"the weights take {size / 2**30:.1f} GiB: the optimized and int8 builders hold the fp32 encoder as "
            "one protobuf, which cannot pass 2 GiB; model.onnx and encoder.onnx are written and checked, and int8w "
            "(weight-only, from encoder.onnx one weight at a time)")


def _variants(spec: Any, folder: Path, tokenizer: onnx.ModelProto, *, opset: int, weights: SharedWeights,
              wanted: bool, too_large: str) -> dict[str, Any]:
    """Return the manifest entries of the variants written: all of them, or past 2 GiB the weight-only one only
    (built from encoder.onnx, whose weights are read from the data file one at a time)."""
    if not wanted:
        return {}
    if not too_large:
        return build_variants(spec, folder, tokenizer, opset=opset, weights=weights)
    if kinds.get(spec.kind).variants_problem(spec):
        return {}
    encoder = onnx.load(str(folder / "encoder.onnx"), load_external_data=False)
    return {"int8w": weight_only_variant(spec, folder, tokenizer, encoder, weights=weights, base_dir=folder)}


def _prompt_graphs(spec: Any, out: Path, tokenizer: onnx.ModelProto, encoder: onnx.ModelProto,
                   weights: SharedWeights, *, opset: int) -> dict[str, str]:
    """Write ``model.<key>.onnx`` for each prompt besides the default one and return {key: its file name}.

    Each is the default graph with its own prompt prepended; where pooling skips the prompt (include_prompt False)
    its encoder is exported again with that prompt's length. Every tensor is stored once, in ``weights``.
    """
    kind = kinds.get(spec.kind)
    files = {}
    for key, text in spec.prompt_graphs().items():
        note(f"the graph of prompt {key!r}")
        prompted = spec.with_prompt(text)
        own = encoder
        if prompted.pooled_from_token != spec.pooled_from_token:
            with tempfile.TemporaryDirectory(dir=out) as tmp:
                own = weights.externalize(kind.export_encoder(prompted, Path(tmp) / "encoder.onnx", opset=opset,
                                                              external_data=True), base_dir=Path(tmp))
        with weights.resolvable():
            graph = kind.compose_onnx(tokenizer, own, prompted)
        files[key] = prompt_file("model.onnx", key)
        weights.save(graph, weights.path.parent / files[key])
        onnx.checker.check_model(str(weights.path.parent / files[key]))
    return files


@register
class OnnxTarget(Target):
    """ONNX Runtime (Python, Java, C, C#), Triton: needs onnxruntime-extensions' custom-op library."""

    name = "onnx"
    order = 0
    tokenizer_graph = "onnx"

    def build(self, spec: Any, out: Path, *, options: dict[str, Any]) -> BuildResult:
        folder = out / self.name
        folder.mkdir(parents=True, exist_ok=True)
        opset = int(options.get("opset", DEFAULT_OPSET))
        kind = kinds.get(spec.kind)
        note("the tokenizer graph")
        tokenizer = kind.onnx_tokenizer(spec, opset=opset, ir_version=IR_VERSION)
        onnx.checker.check_model(tokenizer)
        onnx.save(tokenizer, str(folder / "tokenizer.onnx"))
        note("the encoder (torch.onnx.export)")
        weights = SharedWeights(folder / DATA_FILE)
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            encoder = weights.externalize(kind.export_encoder(spec, Path(tmp) / "encoder.onnx", opset=opset,
                                                              external_data=True), base_dir=Path(tmp))
        with weights.resolvable():
            model = kind.compose_onnx(tokenizer, encoder, spec)
        weights.save(model, folder / "model.onnx")
        prompt_files = _prompt_graphs(spec, out, tokenizer, encoder, weights, opset=opset)
        weights.save(encoder, folder / "encoder.onnx")
        onnx.checker.check_model(str(folder / "model.onnx"))
        too_large = (kind.variants_problem(spec) or _too_large_for_variants(folder / DATA_FILE)) \
            if options.get("variants", True) else ""
        if too_large:
            note(f"no variants: {too_large}")
        variants = _variants(spec, folder, tokenizer, opset=opset, weights=weights, wanted=options.get("variants", True),
                             too_large=too_large)
        files = [folder / n for n in ("model.onnx", *prompt_files.values(), "tokenizer.onnx", "encoder.onnx", DATA_FILE)]
        return BuildResult(files=files, details={
            "weights": {"file": DATA_FILE, "bytes": (folder / DATA_FILE).stat().st_size,
                        "note": "ONNX external data shared by every .onnx file here (each tensor stored once): "
                                "keep it beside them"},
            "opset": opset, "ir_version": IR_VERSION, "custom_domains": DOMAINS,
            "min_onnxruntime": MIN_ONNXRUNTIME.get(opset, "unknown"),
            "custom_op_library": "onnxruntime_extensions.get_library_path()",
            "prompt": {"text": spec.prompt, "in": "model.onnx", "pooled_from_token": spec.prompt_length
                       if spec.prompt_length and not spec.modules[1].config.include_prompt else 0,
                       "note": "tokenizer.onnx tokenizes the text alone; encoder.onnx expects ids of prompt + text"}
            if spec.prompt else None,
            **({"prompt_graphs": {key: f"{self.name}/{file}" for key, file in prompt_files.items()}}
               if prompt_files else {}),
            "graphs": {"model.onnx": _io(model), "tokenizer.onnx": _io(tokenizer), "encoder.onnx": _io(encoder)},
            **({"variants": variants} if variants else {}),
            **({"variants_skipped": too_large} if too_large else {}),
        })

    def runners(self, out: Path) -> dict[str, Any]:
        return {"model": open_runner(out, self.name, name="onnx model.onnx"),
                "tokenizer": open_tokenizer(out, self.name, name="onnx tokenizer.onnx")}

    def variants(self, out: Path) -> list[Variant]:
        return existing_variants(out)
