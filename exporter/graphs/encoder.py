"""Export the encoder (token ids → sentence_embedding) to ONNX with torch's TorchScript exporter.

The TorchScript exporter (``dynamo=False``) is used because it can target opsets below 18,
which the TensorFlow bridge (onnx-tf) needs, and it gives a plain, inspectable graph.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from ..model import ModelSpec

from . import TOKEN_NAMES
OUTPUT_NAME = "sentence_embedding"
#: onnxruntime 1.31 loads IR version ≤ 13; onnx 1.23 writes 14 by default.
IR_VERSION = 10
DEFAULT_OPSET = 20
#: the name prefix of the transformers model's nodes in the exported encoder (``_Encoder.chain[0].model``)
TRANSFORMER_SCOPE = "/chain.0/model"


#: the encoder's fourth input when one graph serves several prompts (``export_encoder(prompt_input=True)``)
PROMPT_LENGTH = "prompt_length"


class _Encoder(torch.nn.Module):
    def __init__(self, spec: ModelSpec, stages: bool):
        super().__init__()
        self.chain = spec.build_torch()
        self.stages = stages

    def forward(self, input_ids, attention_mask, token_type_ids, prompt_length=None):
        features = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if prompt_length is not None:
            features[PROMPT_LENGTH] = prompt_length
        outputs = []
        for index, module in enumerate(self.chain):
            features = module(features)
            if self.stages:
                outputs.append(features["token_embeddings" if index == 0 else "sentence_embedding"])
        return tuple(outputs) if self.stages else features["sentence_embedding"]


def stage_names(spec: ModelSpec) -> list[str]:
    """Return the debug output names, one per module: ``stage0_Transformer`` ... (the last is the embedding)."""
    return [f"stage{i}_{m.class_name}" for i, m in enumerate(spec.modules)]


def export_encoder(spec: ModelSpec, path: Path, *, opset: int = DEFAULT_OPSET, stages: bool = False,
                   external_data: bool = False, prompt_input: bool = False) -> onnx.ModelProto:
    """Write the encoder graph to ``path`` and return it.

    Args:
        spec: the model read by :func:`exporter.model.read_model`.
        path: where to write the .onnx file.
        opset: ONNX opset of the default domain.
        stages: expose every module's output (``stage<i>_<Module>``) instead of the embedding
            alone, to find where a mismatch starts.
        external_data: write the weights to ``<path>.data`` and return the graph pointing to them (a small
            protobuf however large the model: over 2 GB, the only way); otherwise inline in both.
        prompt_input: a fourth input ``prompt_length`` (int64 []): the tokens pooling skips, so that one graph
            serves every prompt of a model whose Pooling has include_prompt False (the TF targets' signatures).
    """
    module = _Encoder(spec, stages).eval()
    example = torch.ones((2, 8), dtype=torch.int64)
    inputs = (example, example, torch.zeros_like(example), *([torch.tensor(1)] if prompt_input else []))
    names = [*TOKEN_NAMES, *([PROMPT_LENGTH] if prompt_input else [])]
    outputs = stage_names(spec) if stages else [OUTPUT_NAME]
    axes = {name: {0: "batch", 1: "sequence"} for name in TOKEN_NAMES}
    axes.update({name: {0: "batch"} for name in outputs})
    if stages:
        axes[outputs[0]] = {0: "batch", 1: "sequence"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, inputs, str(path), dynamo=False,
            input_names=names, output_names=outputs, dynamic_axes=axes,
            opset_version=opset, do_constant_folding=True,
        )
    model = onnx.load(str(path))
    keep_all_inputs(model)
    if not stages:
        _set_output_shape(model.graph.output[0], spec.embedding_dim)
    model.ir_version = IR_VERSION
    # over 2 GB torch already wrote one file per tensor beside ``path``; they are gathered into one
    onnx.save(model, str(path), save_as_external_data=external_data, all_tensors_to_one_file=True,
              location=f"{Path(path).name}.data", size_threshold=1024)
    return model


def keep_all_inputs(model: onnx.ModelProto) -> None:
    """Re-add inputs the exporter pruned (DistilBERT ignores token_type_ids) so every encoder has all three."""
    present = {i.name for i in model.graph.input}
    for name in TOKEN_NAMES:
        if name not in present:
            model.graph.input.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, ["batch", "sequence"]))
    order = {name: i for i, name in enumerate(TOKEN_NAMES)}
    inputs = sorted(model.graph.input, key=lambda i: order.get(i.name, 99))
    del model.graph.input[:]
    model.graph.input.extend(inputs)


def _set_output_shape(output: onnx.ValueInfoProto, dim: int) -> None:
    """Name the batch axis and fix the embedding size (the exporter leaves a derived symbol)."""
    shape = output.type.tensor_type.shape
    del shape.dim[:]
    shape.dim.add().dim_param = "batch"
    shape.dim.add().dim_value = dim
