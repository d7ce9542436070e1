"""Export a CrossEncoder's classifier (token ids → ``logits`` and ``score``) to ONNX with torch's TorchScript exporter.

The transformers ``…ForSequenceClassification`` model, eval mode (dropout off), eager attention, as the
embedding encoder is exported (:mod:`exporter.graphs.encoder`); ``score`` is the model's activation
(CrossEncoder's ``activation_fn``) applied to ``logits`` inside the graph. Both are float32 [batch, num_labels].
"""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from ..model import ModelSpec
from . import TOKEN_NAMES
from .encoder import DEFAULT_OPSET, IR_VERSION, keep_all_inputs
from .hf_head import HeadModel

OUTPUT_NAMES = ("score", "logits")


class _Classifier(HeadModel):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec, "AutoModelForSequenceClassification")
        self.activation = spec.head.activation_module()

    def forward(self, input_ids, attention_mask, token_type_ids):
        logits = self.logits(input_ids, attention_mask, token_type_ids)
        return self.activation(logits), logits


def export_classifier(spec: ModelSpec, path: Path, *, opset: int = DEFAULT_OPSET,
                      external_data: bool = False) -> onnx.ModelProto:
    """Write the classifier graph (ids → ``score``, ``logits``) to ``path`` and return it.

    Args:
        spec: a reranker read by :func:`exporter.model.read_model` (``spec.head`` set).
        path: where to write the .onnx file.
        opset: ONNX opset of the default domain.
        external_data: write the weights to ``<path>.data`` and return the graph pointing to them.
    """
    module = _Classifier(spec).eval()
    example = torch.ones((2, 8), dtype=torch.int64)
    axes = {name: {0: "batch", 1: "sequence"} for name in TOKEN_NAMES}
    axes.update({name: {0: "batch"} for name in OUTPUT_NAMES})
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example, example, torch.zeros_like(example)), str(path), dynamo=False,
            input_names=list(TOKEN_NAMES), output_names=list(OUTPUT_NAMES), dynamic_axes=axes,
            opset_version=opset, do_constant_folding=True,
        )
    model = onnx.load(str(path))
    keep_all_inputs(model)
    for output in model.graph.output:
        shape = output.type.tensor_type.shape
        del shape.dim[:]
        shape.dim.add().dim_param = "batch"
        shape.dim.add().dim_value = spec.head.num_labels
    model.ir_version = IR_VERSION
    onnx.save(model, str(path), save_as_external_data=external_data, all_tensors_to_one_file=True,
              location=f"{Path(path).name}.data", size_threshold=1024)
    return model
