"""TFLite: the SavedModel's graph (tokenizer included) as ``.tflite`` files, fp32, fp16 and int8.

``model.tflite`` is converted from ``savedmodel/`` with TFLite builtins and tensorflow-text's
TFLite kernels only (no Flex / select TF ops: the tokenizer works on code points, see
exporter/tokenizers/wordpiece/emit_tf.py). Signatures ``serving_default(text) -> sentence_embedding``
and ``tokenize(text) -> input_ids, attention_mask, token_type_ids`` (a reranker's: ``serving_default(query,
document) -> score, logits`` and ``tokenize(query, document)``; its fp16 and int8 files' |Δscore| is measured and
recorded, not held to a bar). ``model_fp16.tflite`` stores
the weights as float16; ``model_int8.tflite`` is dynamic-range quantized (int8 weights,
activations quantized on the fly). Runs in LiteRT (``ai-edge-litert``) with tensorflow-text's
op registrar; TensorFlow's own ``tf.lite`` interpreter is never used to run them (see
:func:`exporter.runtime.tflite.open_interpreter`).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from exporter import kinds
from exporter.verify.parity import Thresholds
from exporter.progress import counted, note
from exporter.runtime.artifacts import artifact, open_runner, variants_of
from exporter.runtime.tflite import TFLiteConversionError, TFLiteRunner

from . import BuildResult, Target, Variant, register
from .savedmodel import signatures_described

FOLDER = "tflite"
SIGNATURES = ("serving_default", "tokenize")
#: what each file's quantization means
MEANINGS = {
    None: "float32 weights and activations",
    "fp16": "float16 weights, dequantized to float32 at load; float32 activations",
    "int8": "dynamic-range: int8 weights, activations quantized per inference",
}
#: file name → (quantization, what it means); the first is the main artifact (names from the table of artifacts)
FILES = {Path(row.file).name: (row.variant, MEANINGS[row.variant])
         for row in (artifact(FOLDER), *variants_of(FOLDER))}
VARIANT_BARS = {
    "fp16": Thresholds(min_cosine=0.999, max_abs_diff=None),
    "int8": Thresholds(min_cosine=0.98, max_abs_diff=None),
}
#: fp32 bar of issue 4: XNNPACK's kernels round differently from torch's
FP32_BAR = Thresholds(min_cosine=0.9999, max_abs_diff=1e-4)
APP_RUNTIME = ("LiteRT (TensorFlow Lite) runtime + tensorflow-text's TFLite ops: register "
               "tensorflow_text's TFLite kernels with the interpreter's op resolver; no Flex (select TF ops) "
               "delegate is needed")


def convert(saved_model: Path, quantization: str | None, *, signatures: tuple[str, ...] = SIGNATURES) -> bytes:
    """Return the TFLite flatbuffer of the SavedModel's ``signatures`` (builtins + tf-text kernels only).

    Raises:
        TFLiteConversionError: an op has neither a TFLite builtin nor a tf-text kernel.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=list(signatures))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True  # tensorflow-text's kernels are custom ops
    if quantization:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as exc:  # the converter raises ConverterError with MLIR text
        raise TFLiteConversionError(f"TFLite conversion of {saved_model} failed: {str(exc)[-1500:]}") from None


def describe(data: bytes) -> dict[str, Any]:
    """Return the ops of a flatbuffer by kind and its constant bytes by element type.

    Read through the flatbuffer accessors, not the object API (``ModelT``), which copies every
    weight buffer into Python lists: seconds per file for a 250k-piece vocabulary.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    type_names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    builtin_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graphs = [model.Subgraphs(i) for i in range(model.SubgraphsLength())]
    used = {graph.Operators(j).OpcodeIndex() for graph in graphs for j in range(graph.OperatorsLength())}
    ops: dict[str, set[str]] = {"builtin": set(), "tensorflow-text": set(), "flex": set()}
    for index in used:
        code = model.OperatorCodes(index)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin != schema.BuiltinOperator.CUSTOM:
            ops["builtin"].add(builtin_names[builtin])
        else:
            name = code.CustomCode().decode()
            ops["flex" if name.startswith("Flex") else "tensorflow-text"].add(name)
    constants: dict[str, int] = {}
    for graph in graphs:
        for k in range(graph.TensorsLength()):
            tensor = graph.Tensors(k)
            size = model.Buffers(tensor.Buffer()).DataLength() if tensor.Buffer() else 0
            if size:
                name = type_names[tensor.Type()]
                constants[name] = constants.get(name, 0) + size
    return {"ops": {kind: sorted(names) for kind, names in ops.items()}, "constant_bytes": constants}


def _smoke_run(path: Path, spec: Any) -> str:
    """Run both signatures once; return the runtime's name.

    Raises:
        TFLiteConversionError: an op has no kernel in the runtime (it is named in the message).
    """
    runner = TFLiteRunner(path)
    try:
        if spec.kind == "reranker":
            runner.score_and_logits(["", "Hello"], ["world", ""])
            runner.tokenize_pairs(["", "Hello"], ["world", ""])
        elif spec.kind == "sparse":
            runner.encode_sparse(["", "Hello world"])
            runner.tokenize(["", "Hello world"])
        else:
            runner.encode(["", "Hello world"])
            runner.tokenize(["", "Hello world"])
            for key in spec.prompt_graphs():
                runner.encode(["", "Hello world"], signature=key)
    except RuntimeError as exc:
        raise TFLiteConversionError(f"{path.name} does not run in {runner.runtime}: {exc}") from None
    return runner.runtime


@register
class TFLiteTarget(Target):
    """Mobile and edge (Android, iOS, Linux): the string-in graph as .tflite, fp32, fp16 and int8."""

    name = "tflite"
    order = 15
    requires = ("savedmodel",)
    thresholds = FP32_BAR
    tokenizer_graph = "tflite"

    def build(self, spec: Any, out: Path, *, options: dict[str, Any]) -> BuildResult:
        folder = out / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        no_variants = kinds.get(spec.kind).no_tflite_variants
        if no_variants and options.get("variants", True):
            note(f"no fp16/int8 files: {no_variants}")
        names = list(FILES) if options.get("variants", True) and not no_variants else ["model.tflite"]
        files, details = [], {}
        for file_name in counted(names, lambda name: f"converting {name}"):
            quantization, meaning = FILES[file_name]
            data = convert(out / "savedmodel", quantization, signatures=(*SIGNATURES, *spec.prompt_graphs()))
            (folder / file_name).write_bytes(data)
            files.append(folder / file_name)
            details[file_name] = {"quantization": meaning, **describe(data)}
        flex = sorted({op for d in details.values() for op in d["ops"]["flex"]})
        if flex:
            raise TFLiteConversionError(f"the TFLite graph needs Flex ops {flex}; nothing else may need them")
        runtime = ""
        note("running each file once")
        for path in files:
            runtime = _smoke_run(path, spec)
        return BuildResult(files=files, details={
            "converted_from": "savedmodel/ (signatures serving_default, tokenize)",
            "signatures": signatures_described(spec, rows="N"),
            "graphs": details, "runtime": runtime, "app_needs": APP_RUNTIME,
            "prompt": {"text": spec.prompt, "in": "serving_default"} if spec.prompt else None,
            **({"no_variants": no_variants} if no_variants else {}),
        })

    def runners(self, out: Path) -> dict[str, Any]:
        runner = open_runner(out, self.name)
        return {"model": runner, "tokenizer": runner}

    def variants(self, out: Path) -> list[Variant]:
        return [Variant(row.variant, row.file, partial(row.open, out), VARIANT_BARS[row.variant])
                for row in variants_of(self.name) if row.path(out).is_file()]
