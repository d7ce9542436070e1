"""Export a SPLADE SparseEncoder (token ids → ``indices``, ``values`` [, ``dense``]) to ONNX.

The masked LM (transformers ``…ForMaskedLM``, eager attention, eval mode) and ``SpladePooling`` are traced by
torch's TorchScript exporter as the embedding encoder is (:mod:`exporter.graphs.encoder`): logits × attention mask,
ReLU, log1p (twice for ``log1p_relu``), then max or sum over the tokens, in sentence-transformers 6.2's order.
The top-K selection is appended as ONNX nodes (``TopK``) because K may depend on the batch:

* K = the head's ``top_k`` (``max_active_dims`` or ``--sparse-top-k``), at most the vocabulary;
* K = 0 (the default): every non-zero dimension, i.e. K = the largest count of non-zero values of a row in the
  batch; shorter rows are padded.

``values`` are sorted in descending order; a pad (or a zero value inside a fixed K) has value 0 and index
:data:`PAD_INDEX`. onnx-tf turns the nodes into ``tf.math.top_k`` for the SavedModel and TFLite targets.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from onnx import TensorProto, helper

from ..model import ModelSpec
from ..runtime.runners import SPARSE_PAD_INDEX as PAD_INDEX
from . import TOKEN_NAMES
from .encoder import DEFAULT_OPSET, IR_VERSION, keep_all_inputs
from .hf_head import HeadModel
from .onnx_builder import GraphBuilder

DENSE = "dense"


class _Splade(HeadModel):
    def __init__(self, spec: ModelSpec):
        super().__init__(spec, "AutoModelForMaskedLM")
        self.head = spec.head

    def forward(self, input_ids, attention_mask, token_type_ids):
        logits = self.logits(input_ids, attention_mask, token_type_ids)
        # SpladePooling.forward's order: mask, relu, log1p (and again for log1p_relu), then pool over the tokens
        scores = torch.log1p(torch.relu(logits * attention_mask.unsqueeze(-1).to(logits.dtype)))
        if self.head.activation_function == "log1p_relu":
            scores = torch.log1p(scores)
        return scores.amax(dim=1) if self.head.pooling_strategy == "max" else scores.sum(dim=1)


def _top_k_nodes(model: onnx.ModelProto, top_k: int, vocab: int, dense: bool, opset: int) -> None:
    """Append TopK over the graph's ``dense`` output: ``indices`` int64 and ``values`` float32 [batch, K]."""
    b = GraphBuilder("sparse")
    if top_k:
        k = b.const([min(top_k, vocab)], "k")
    else:
        active = b.op("Cast", [b.op("Greater", [DENSE, b.const(0.0, dtype="float32")])], to=TensorProto.INT64)
        counts = b.op("ReduceSum", [active, b.const([1])], keepdims=0) if opset >= 13 else \
            b.op("ReduceSum", [active], axes=[1], keepdims=0)
        # ReduceMax of an empty batch is -inf-like for ints: the Max with [0] keeps K ≥ 0
        k = b.op("Max", [b.op("Reshape", [b.op("ReduceMax", [counts], keepdims=1), b.const([1])]), b.const([0])])
    values, indices = b.op("TopK", [DENSE, k], outputs=2, axis=-1, largest=1, sorted=1)
    kept = b.op("Greater", [values, b.const(0.0, dtype="float32")])
    b.op("Where", [kept, indices, b.const(PAD_INDEX)])
    b.nodes[-1].output[:] = ["indices"]
    b.rename(values, "values")
    model.graph.node.extend(b.nodes)
    model.graph.initializer.extend(b.initializers)
    outputs = [helper.make_tensor_value_info("indices", TensorProto.INT64, ["batch", "k"]),
               helper.make_tensor_value_info("values", TensorProto.FLOAT, ["batch", "k"])]
    dense_row = model.graph.output[0]
    shape = dense_row.type.tensor_type.shape
    del shape.dim[:]
    shape.dim.add().dim_param = "batch"
    shape.dim.add().dim_value = vocab
    del model.graph.output[:]
    model.graph.output.extend(outputs + ([dense_row] if dense else []))


def output_names(dense: bool) -> tuple[str, ...]:
    """Return the graph's outputs: ``indices``, ``values`` and, when asked, ``dense``."""
    return ("indices", "values", DENSE) if dense else ("indices", "values")


def export_splade(spec: ModelSpec, path: Path, *, opset: int = DEFAULT_OPSET,
                  external_data: bool = False) -> onnx.ModelProto:
    """Write the SPLADE graph (ids → ``indices``, ``values`` [, ``dense``]) to ``path`` and return it.

    Args:
        spec: a sparse model read by :func:`exporter.model.read_model` (``spec.head`` a SparseHead).
        path: where to write the .onnx file.
        opset: ONNX opset of the default domain.
        external_data: write the weights to ``<path>.data`` and return the graph pointing to them.
    """
    module = _Splade(spec).eval()
    example = torch.ones((2, 8), dtype=torch.int64)
    axes = {name: {0: "batch", 1: "sequence"} for name in TOKEN_NAMES}
    axes[DENSE] = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module, (example, example, torch.zeros_like(example)), str(path), dynamo=False,
            input_names=list(TOKEN_NAMES), output_names=[DENSE], dynamic_axes=axes,
            opset_version=opset, do_constant_folding=True,
        )
    model = onnx.load(str(path))
    keep_all_inputs(model)
    _top_k_nodes(model, spec.head.top_k, spec.head.vocab_size, spec.head.dense, opset)
    model.ir_version = IR_VERSION
    onnx.save(model, str(path), save_as_external_data=external_data, all_tensors_to_one_file=True,
              location=f"{Path(path).name}.data", size_threshold=1024)
    return model
