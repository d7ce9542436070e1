"""An encoder graph for ONNX Runtime only: the transformer as ORT's fused contrib kernels.

``encoder.onnx`` stays portable (standard ops). This graph is the same model rewritten by
``onnxruntime.transformers.optimizer`` into ``EmbedLayerNormalization``, ``Attention``,
``SkipLayerNormalization`` and ``BiasGelu`` (domain ``com.microsoft``), which cuts the node
count of a 6-layer BERT from ~490 to ~50 and runs attention in one kernel per layer.

Two things in the exported graph stop ORT's pattern matcher, so the transformer is exported
for it separately (same weights, same arithmetic):

* transformers 5 builds its attention mask with index arithmetic the optimizer does not match;
  here the mask is the SDPA-style ``Where(Cast(1 - Expand(mask[:, None, None, :])), min, 0)``,
  which it does (a ``Mul``-based mask would collide with the score-scaling ``Mul``: the matcher
  takes the first ``Mul`` parent);
* ``SkipLayerNormalization`` fusion needs symbolic shape inference, which fails on opset-18+
  ``ReduceL2`` (its axes are an input) in Normalize; so only the transformer is optimized and
  the head (pooling, Dense, Normalize) is exported on its own and joined after.
"""
from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import onnx
import torch
from onnx import compose, helper

from . import TOKEN_NAMES
from .encoder import IR_VERSION, OUTPUT_NAME, keep_all_inputs, _set_output_shape
from ..model import ModelSpec

TOKENS = "token_embeddings"
MICROSOFT = "com.microsoft"


class _FusableTransformer(torch.nn.Module):
    """The source transformer with an attention mask ORT's optimizer recognises."""

    def __init__(self, model: torch.nn.Module, architecture: Any, *, token_type_ids: bool = True):
        super().__init__()
        self.model = model
        self.architecture = architecture
        #: False: the model is fed zeros (a reranker whose reference tokenizer returns no token_type_ids)
        self.token_type_ids = token_type_ids

    def forward(self, input_ids, attention_mask, token_type_ids):
        if not self.token_type_ids:
            token_type_ids = torch.zeros_like(input_ids)
        if not self.architecture.ort_optimizer_type:  # nothing to fuse: the model called as the plain encoder
            kwargs = self.architecture.call_kwargs(self.model, input_ids, attention_mask, token_type_ids)
            return self.model(**kwargs, return_dict=True).last_hidden_state
        hidden = self.architecture.embeddings(self.model, input_ids, token_type_ids)
        rows, length = attention_mask.shape
        expanded = attention_mask[:, None, None, :].expand(rows, 1, length, length)
        additive = torch.where((1 - expanded).bool(), torch.finfo(hidden.dtype).min, 0.0)
        return self.architecture.layers(self.model)(hidden, attention_mask=additive)[0]


class _Head(torch.nn.Module):
    """Pooling, Dense and Normalize: token embeddings + mask → sentence embedding."""

    def __init__(self, modules: list[torch.nn.Module]):
        super().__init__()
        self.chain = torch.nn.Sequential(*modules)

    def forward(self, token_embeddings, attention_mask):
        features = {TOKENS: token_embeddings, "attention_mask": attention_mask}
        for module in self.chain:
            features = module(features)
        return features[OUTPUT_NAME]


class _ClassifierHead(torch.nn.Module):
    """A ``…ForSequenceClassification`` model's head: token embeddings → (``score``, ``logits``)."""

    def __init__(self, classifier: Any):
        super().__init__()
        pooler = getattr(classifier.model.base_model, "pooler", None)  # BERT: classifier(pooler(h)); RoBERTa: none
        self.pooler = pooler if pooler is not None else torch.nn.Identity()
        self.classifier = classifier.model.classifier
        self.activation = classifier.activation

    def forward(self, token_embeddings, attention_mask):
        logits = self.classifier(self.pooler(token_embeddings))
        return self.activation(logits), logits


def _exported(module: torch.nn.Module, example: tuple, *, inputs: list[str], outputs: list[str], axes: dict,
              opset: int) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "graph.onnx"
        torch.onnx.export(module.eval(), example, str(path), dynamo=False, input_names=inputs,
                          output_names=outputs, dynamic_axes=axes, opset_version=opset, do_constant_folding=True)
        return onnx.load(str(path))


def _optimized(body: onnx.ModelProto, *, model_type: str, num_heads: int, hidden_size: int, attention: bool,
               skip_layer_norm: bool) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Return the transformer rewritten with ORT's fused operators and the count of each."""
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    quiet = logging.getLogger("onnxruntime.transformers")
    for name in ("fusion_base", "onnx_model", "onnx_model_bert", "fusion_utils", "fusion_attention",
                 "fusion_skiplayernorm", "fusion_embedlayer"):
        logging.getLogger(name).setLevel(logging.ERROR)
    quiet.setLevel(logging.ERROR)
    options = FusionOptions(model_type)
    options.enable_attention = attention
    options.enable_skip_layer_norm = skip_layer_norm
    # opt_level=0: only the Python fusions; ORT applies its own (hardware-specific) ones at load
    model = optimizer.optimize_model(body, model_type=model_type, num_heads=num_heads, hidden_size=hidden_size,
                                     optimization_options=options, opt_level=0, use_gpu=False)
    counts = {op: n for op, n in model.get_fused_operator_statistics().items() if n}
    return model.model, counts


def _joined(body: onnx.ModelProto, head: onnx.ModelProto, outputs: Sequence[str] = (OUTPUT_NAME,)) -> onnx.ModelProto:
    """Return body ∘ head; the head reads the body's token embeddings and the graph's attention mask (a
    classifier's head reads only the first token's: its graph has no mask input)."""
    io_map = [(TOKENS, f"head/{TOKENS}")]
    if any(i.name == "attention_mask" for i in head.graph.input):
        body.graph.node.append(helper.make_node("Identity", ["attention_mask"], ["attention_mask_for_head"]))
        body.graph.output.append(helper.make_tensor_value_info("attention_mask_for_head", onnx.TensorProto.INT64,
                                                               ["batch", "sequence"]))
        io_map.append(("attention_mask_for_head", "head/attention_mask"))
    head = compose.add_prefix(head, "head/")
    body.opset_import.append(helper.make_opsetid(MICROSOFT, 1))  # the optimizer's nodes use it undeclared
    for model in (body, head):
        model.ir_version = IR_VERSION
    merged = compose.merge_models(body, head, io_map=io_map,
                                  outputs=[f"head/{name}" for name in outputs])
    imports = {i.domain: i.version for i in merged.opset_import}  # merge_models repeats shared domains
    del merged.opset_import[:]
    merged.opset_import.extend(helper.make_opsetid(d, v) for d, v in imports.items())
    for name in outputs:
        _rename_output(merged, f"head/{name}", name)
    return merged


def fused_encoder(spec: ModelSpec, *, opset: int, attention: bool = True,
                  skip_layer_norm: bool = True) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Return the encoder (ids → ``sentence_embedding``) with ORT's fused kernels, and the fused-op counts.

    Inputs and output are named like ``encoder.onnx``'s. The graph needs ONNX Runtime (contrib
    ops of domain ``com.microsoft``); its numbers differ from ``encoder.onnx`` by float rounding.
    An architecture without an ORT optimizer type (``Architecture.ort_optimizer_type`` None) gets
    no fused kernels: the counts are empty and the graph is the plain encoder, split the same way.
    ``attention=False`` leaves attention as MatMul / Softmax, so that its query, key and value
    products stay MatMuls a quantizer can rewrite; ``skip_layer_norm=False`` keeps Add +
    LayerNormalization (in onnxruntime 1.31.1 the SkipLayerNormalization CPU kernel took 4.3 ms
    where Add + LayerNormalization took 1.35 ms, [32, 60, 384], one thread).
    """
    chain = list(spec.build_torch())
    example = torch.ones((2, 8), dtype=torch.int64)
    dynamic = {0: "batch", 1: "sequence"}
    hidden = torch.zeros((2, 8, spec.transformer.hidden_size))
    head = _exported(_Head(chain[1:]), (hidden, example), inputs=[TOKENS, "attention_mask"], outputs=[OUTPUT_NAME],
                     axes={TOKENS: dynamic, "attention_mask": dynamic, OUTPUT_NAME: {0: "batch"}}, opset=opset)
    body, counts = _fused_body(_FusableTransformer(chain[0].model, chain[0].architecture), spec,
                               attention=attention, skip_layer_norm=skip_layer_norm, opset=opset)
    model = _joined(body, head)
    _set_output_shape(model.graph.output[0], spec.embedding_dim)
    model.graph.name = "st_exporter_fused_encoder"
    model.ir_version = IR_VERSION
    return model, counts


def _fused_body(transformer: _FusableTransformer, spec: ModelSpec, *, attention: bool, skip_layer_norm: bool,
                opset: int) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Return the transformer (ids → token embeddings) exported and rewritten by ORT's optimizer, and its counts."""
    example = torch.ones((2, 8), dtype=torch.int64)
    dynamic = {0: "batch", 1: "sequence"}
    body = _exported(transformer, (example, example, torch.zeros_like(example)), inputs=list(TOKEN_NAMES),
                     outputs=[TOKENS], axes={**{n: dynamic for n in TOKEN_NAMES}, TOKENS: dynamic}, opset=opset)
    keep_all_inputs(body)
    config, optimizer_type = transformer.model.config, spec.transformer.architecture.ort_optimizer_type
    counts: dict[str, int] = {}
    if optimizer_type:
        body, counts = _optimized(body, model_type=optimizer_type, num_heads=int(config.num_attention_heads),
                                  hidden_size=int(config.hidden_size), attention=attention,
                                  skip_layer_norm=skip_layer_norm)
        keep_all_inputs(body)  # the optimizer drops inputs no node reads (DistilBERT's token_type_ids)
    return body, counts


#: ``…ForSequenceClassification`` classes whose head is ``classifier(pooler(h))`` (BERT) or ``classifier(h)``
#: (RoBERTa, XLM-R: the classifier takes the first token itself)
FUSABLE_CLASSIFIERS = ("BertForSequenceClassification", "RobertaForSequenceClassification",
                       "XLMRobertaForSequenceClassification")


def classifier_fusion_problem(spec: ModelSpec) -> str:
    """Return why a reranker's classifier cannot be split for the fused variants ("" when it can)."""
    if spec.head.model_class in FUSABLE_CLASSIFIERS:
        return ""
    return (f"the optimized and int8 variants split the classifier into transformer and head, known for "
            f"{', '.join(FUSABLE_CLASSIFIERS)}; not {spec.head.model_class}")


def fused_classifier(spec: ModelSpec, *, opset: int, attention: bool = True,
                     skip_layer_norm: bool = True) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Return a reranker's classifier (ids → ``score``, ``logits``) with ORT's fused kernels, and the counts.

    As :func:`fused_encoder`, for a model :func:`classifier_fusion_problem` accepts: the transformer
    is fused, the head (BERT's pooler, the classifier, the activation) is exported on its own and joined.
    """
    from .classifier import OUTPUT_NAMES, _Classifier

    classifier = _Classifier(spec).eval()
    base = classifier.model.base_model
    example = torch.ones((2, 8), dtype=torch.int64)
    dynamic = {0: "batch", 1: "sequence"}
    hidden = torch.zeros((2, 8, int(base.config.hidden_size)))
    head = _exported(_ClassifierHead(classifier), (hidden, example), inputs=[TOKENS, "attention_mask"],
                     outputs=list(OUTPUT_NAMES), axes={TOKENS: dynamic, "attention_mask": dynamic,
                                                       **{n: {0: "batch"} for n in OUTPUT_NAMES}}, opset=opset)
    transformer = _FusableTransformer(base, classifier.architecture, token_type_ids=classifier.token_type_ids)
    body, counts = _fused_body(transformer, spec, attention=attention, skip_layer_norm=skip_layer_norm, opset=opset)
    model = _joined(body, head, OUTPUT_NAMES)
    for output in model.graph.output:
        _set_output_shape(output, spec.head.num_labels)
    model.graph.name = "st_exporter_fused_classifier"
    model.ir_version = IR_VERSION
    return model, counts


def _rename_output(model: onnx.ModelProto, old: str, new: str) -> None:
    for node in model.graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
        node.input[:] = [new if name == old else name for name in node.input]
    for output in model.graph.output:
        if output.name == old:
            output.name = new


def describe_fusion(spec: ModelSpec, counts: dict[str, Any]) -> str:
    """Return a one-line summary such as 'Attention×6, SkipLayerNormalization×12' (or why there is none)."""
    architecture = spec.transformer.architecture
    if not architecture.ort_optimizer_type:
        return f"none ({architecture.model_type}): {architecture.no_fusion_reason}"
    return ", ".join(f"{op}×{n}" for op, n in counts.items()) or "no fusion matched"
