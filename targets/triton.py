"""Triton Inference Server model repository: ``triton/<name>_onnx`` and ``triton/<name>_tf``.

``<name>_onnx`` (platform ``onnxruntime_onnx``, the primary Triton target): ``1/model.onnx`` is
``onnx/model.onnx`` with ``1/model.onnx.data`` holding its tensors (a copy: see ``_onnx_model_copy``).
The graph takes ``text`` as [batch]; a Triton request carries [batch, 1] for ``dims: [1]``, which
``reshape: { shape: [ ] }`` turns into [batch] before the backend sees it. ``config.pbtxt`` declares the
onnxruntime-extensions library in ``model_operations``; the ONNX Runtime backend passes each
``op_library_filename`` to ``OrtApi::RegisterCustomOpsLibrary`` before it creates the session.
A reranker's graphs take ``query`` and ``document`` the same way (two ``TYPE_STRING`` inputs, each ``dims: [1]``
reshaped to ``[]``) and return ``score`` and ``logits``, ``dims: [num_labels]`` each.

``<name>_tf`` (platform ``tensorflow_savedmodel``; Triton's TensorFlow backend is deprecated since
release 25.03), written when the savedmodel target was built: the SavedModel, whose signature takes
``text`` as [batch], so the input is ``dims: [1]`` with ``reshape: { shape: [ ] }``, and
``model_operations`` lists the tensorflow-text op libraries its graph needs.

The runners (``exporter/runtime/triton.py``) read ``config.pbtxt`` with Triton's own schema and feed
each model exactly what Triton would: requests of at most ``max_batch_size`` texts, shaped
``[n] + dims``, reshaped as declared.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import onnx

from exporter.errors import ArtifactNotFoundError, InvalidOptionError
from exporter.graphs.shared_weights import DATA_FILE, SharedWeights
from exporter.layouts import link_tree, model_name, server_path
from exporter.runtime.artifacts import artifact
from exporter.runtime.triton import TritonRequestRunner, model_config_schema
from exporter.verify.parity import Thresholds

from . import BuildResult, Target, Variant, register
from .savedmodel import output_types, signature_io

FOLDER = "triton"
#: where docs/serving.md tells users to mount libortextensions.so in the Triton container
DEFAULT_OP_LIBRARY = "/opt/ortextensions/libortextensions.so"
#: where docs/serving.md tells users to mount tensorflow-text's python/ops folder (the _tf model only)
DEFAULT_TF_OP_DIR = "/opt/tensorflow_text/ops"
DEFAULT_MAX_BATCH_SIZE = 64
TF_DEPRECATION = "Triton's TensorFlow backend is deprecated since release 25.03; prefer <name>_onnx"
#: what the layout holds of a model's other prompts (exporter/runtime/prompts.py)
TRITON_PROMPTS = ("<name>_onnx and <name>_tf serve the default prompt only; the other prompts are onnx/model.<key>.onnx "
                  "and the SavedModel's signatures <key>, not laid out as Triton models yet")


@dataclass(frozen=True)
class TritonSettings:
    """The target's settings, from ``export(options=...)`` / the CLI's ``--triton-*`` flags."""

    op_library: str = DEFAULT_OP_LIBRARY
    tf_op_dir: str = DEFAULT_TF_OP_DIR
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE


def triton_settings(options: dict[str, Any]) -> TritonSettings:
    """Return the validated Triton settings in ``options`` (keys ``triton_op_library``,
    ``triton_tf_op_dir``, ``triton_max_batch_size``).

    Raises:
        InvalidOptionError: a path is not absolute (the server resolves it inside its container)
            or the batch size is not an integer in config.pbtxt's range (0 to 2**31 - 1).
    """
    settings = TritonSettings(
        op_library=options.get("triton_op_library") or DEFAULT_OP_LIBRARY,
        tf_op_dir=options.get("triton_tf_op_dir") or DEFAULT_TF_OP_DIR,
        max_batch_size=options.get("triton_max_batch_size", DEFAULT_MAX_BATCH_SIZE))
    for flag, path in (("--triton-op-library", settings.op_library), ("--triton-tf-op-dir", settings.tf_op_dir)):
        server_path(path, flag=flag, server="the Triton server (inside its container)")
    problem = max_batch_size_problem(settings.max_batch_size)
    if problem:
        raise InvalidOptionError(f"--triton-max-batch-size (options['triton_max_batch_size']) {problem}")
    return settings


#: config.pbtxt's max_batch_size is an int32 (Triton's model_config.proto); 0 turns batching off
MAX_BATCH_SIZE = 2**31 - 1


def max_batch_size_problem(size: Any) -> str | None:
    """Return why ``size`` cannot be config.pbtxt's max_batch_size, or None."""
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_BATCH_SIZE:
        return (f"{size!r}: give an integer from 0 (batching off) to {MAX_BATCH_SIZE} (config.pbtxt's "
                "max_batch_size is an int32)")
    return None


def _onnx_model_copy(source: Path, version: Path) -> list[Path]:
    """Write ``source/model.onnx`` into ``version`` with a data file of its own tensors; return both paths.

    Not hard links: the onnx library (1.19+) refuses to read external data from a file with more than
    one link ("potential hardlink attack"), so linking would stop ``onnx.load`` on ``onnx/model.onnx``
    too. The copy holds only model.onnx's tensors, not the variants' share of ``onnx/model.onnx.data``.
    """
    version.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(source / "model.onnx"), load_external_data=False)
    weights = SharedWeights(version / DATA_FILE)
    return [weights.save(weights.externalize(model, base_dir=source), version / "model.onnx"), weights.path]


def model_config(*, name: str, platform: str, max_batch_size: int, inputs: Sequence[str], input_dims: Sequence[int],
                 input_reshape: Sequence[int] | None, outputs: dict[str, Sequence[int]], op_libraries: Sequence[str],
                 comment: str, int64_outputs: Sequence[str] = ()) -> str:
    """Return a ``config.pbtxt``: Triton's ``ModelConfig`` message, printed by protobuf's text format (which
    quotes and escapes every string), under a comment line.

    Args:
        inputs: the string inputs ("text"; a reranker's "query" and "document"), each ``input_dims`` reshaped to
            ``input_reshape`` (None: no reshape).
        outputs: {name: dims} of the outputs, FP32 but ``int64_outputs`` (a sparse model's ``indices``).
    """
    from google.protobuf import text_format

    schema = model_config_schema()
    config = schema.ModelConfig(name=name, platform=platform, max_batch_size=max_batch_size)
    for input_name in inputs:
        string = config.input.add(name=input_name, data_type=schema.TYPE_STRING, dims=list(input_dims))
        if input_reshape is not None:
            string.reshape.SetInParent()  # an empty shape is meaningful: [1] per request becomes a scalar per row
            string.reshape.shape.extend(input_reshape)
    for output_name, dims in outputs.items():
        data_type = schema.TYPE_INT64 if output_name in int64_outputs else schema.TYPE_FP32
        config.output.add(name=output_name, data_type=data_type, dims=list(dims))
    if max_batch_size > 0:
        config.dynamic_batching.SetInParent()
    config.model_operations.op_library_filename.extend(op_libraries)
    return f"# {comment}\n" + text_format.MessageToString(config)


def _served_io(spec: Any, batching: bool) -> dict[str, Any]:
    """Return ``model_config``'s inputs and outputs for the model's signature (batching: Triton adds the batch axis)."""
    inputs = signature_io(spec)[0]
    # a sparse model's K depends on the batch (-1); its indices are int64
    outputs = {name: size if isinstance(size, int) else -1 for name, (_, size) in output_types(spec).items()}
    return {"inputs": inputs, "input_dims": [1] if batching else [-1], "input_reshape": [] if batching else None,
            "outputs": {name: [size] if batching else [-1, size] for name, size in outputs.items()},
            "int64_outputs": [name for name, (kind, _) in output_types(spec).items() if kind == "int64"]}


def http_example(name: str, spec: Any) -> dict[str, Any]:
    """Return the documented KServe v2 request of two rows and the shape of its response."""
    inputs = signature_io(spec)[0]
    rows = {"text": ["Hello world", "Grüß Gott"], "query": ["what is a reranker", "was ist ein Reranker"],
            "document": ["A model that scores a query and a document together.", "Ein Modell, das Paare bewertet."]}
    return {"url": f"POST /v2/models/{name}_onnx/infer",
            "body": {"inputs": [{"name": input_name, "shape": [2, 1], "datatype": "BYTES", "data": rows[input_name]}
                                for input_name in inputs]},
            "response": {"outputs": [{"name": output_name, "datatype": kind.upper().replace("FLOAT", "FP"),
                                      "shape": [2, size], "data": f"[2 × {size} values, row-major]"}
                                     for output_name, (kind, size) in output_types(spec).items()]}}


def model_folders(out: Path) -> dict[str, Path]:
    """Return {"onnx": folder, "tf": folder} for the Triton models present under ``out``."""
    found = {}
    for kind, target in (("onnx", "triton"), ("tf", "triton:tf")):
        folder = artifact(target).path(out)
        if (folder / "config.pbtxt").is_file():
            found[kind] = folder
    return found


@register
class TritonTarget(Target):
    """Triton Inference Server: a model repository (ONNX Runtime backend; TensorFlow backend too)."""

    name = "triton"
    order = 20  # after savedmodel, whose files the _tf model reuses
    requires = ("onnx",)
    # the layout's files are the proven onnx/savedmodel files (hard links); one pass over the corpus
    # checks what the layout adds: request shapes, reshapes, batches split at max_batch_size
    parity_batch_sizes = (None,)
    layout_of = "onnx"

    def check_options(self, spec: Any, options: dict[str, Any]) -> None:
        """Raise InvalidOptionError for a bad name or Triton setting (before anything is built)."""
        triton_settings(options)
        model_name(spec, options)

    def build(self, spec: Any, out: Path, *, options: dict[str, Any]) -> BuildResult:
        settings = triton_settings(options)
        name = model_name(spec, options)
        batching = settings.max_batch_size > 0
        folder = out / FOLDER / f"{name}_onnx"
        (folder / "1").mkdir(parents=True, exist_ok=True)
        files = _onnx_model_copy(out / "onnx", folder / "1")
        strings = " and ".join(signature_io(spec)[0])
        (folder / "config.pbtxt").write_text(model_config(
            name=folder.name, platform="onnxruntime_onnx", max_batch_size=settings.max_batch_size,
            **_served_io(spec, batching), op_libraries=[settings.op_library],
            comment=f"written by st-exporter; {strings}: one string per row, [batch, 1]"), encoding="utf-8")
        files.insert(0, folder / "config.pbtxt")
        models = {folder.name: {"platform": "onnxruntime_onnx", "files": f"{FOLDER}/{folder.name}/",
                                "op_library_filename": settings.op_library,
                                "request_shape": ["n", 1] if batching else ["n"]}}
        if (out / "savedmodel" / "saved_model.pb").is_file():
            tf_files, tf_details = self._build_tf(out, name, settings, spec)
            files += tf_files
            models[f"{name}_tf"] = tf_details
        return BuildResult(files=files, details={
            "name": name, "max_batch_size": settings.max_batch_size, "dynamic_batching": batching,
            "models": models,
            "http_example": http_example(name, spec),
            "custom_op_library": "libortextensions.so of onnxruntime-extensions (see docs/serving.md)",
            "deprecations": [TF_DEPRECATION] if f"{name}_tf" in models else [],
            **({"prompts": TRITON_PROMPTS} if spec.prompt_graphs() else {}),
        })

    def _build_tf(self, out: Path, name: str, settings: TritonSettings, spec: Any) -> tuple[list[Path], dict]:
        from exporter.verify.server_ops import custom_ops

        folder = out / FOLDER / f"{name}_tf"
        files = link_tree(out / "savedmodel", folder / "1" / "model.savedmodel")
        ops = custom_ops(out / "savedmodel")
        libraries = sorted({entry["library"] for entry in ops if entry["library"] != "unregistered"})
        batching = settings.max_batch_size > 0
        (folder / "config.pbtxt").write_text(model_config(
            name=folder.name, platform="tensorflow_savedmodel", max_batch_size=settings.max_batch_size,
            **_served_io(spec, batching),
            op_libraries=[f"{settings.tf_op_dir.rstrip('/')}/{lib}" for lib in libraries],
            comment=f"written by st-exporter; {TF_DEPRECATION}"), encoding="utf-8")
        return [folder / "config.pbtxt", *files], {
            "platform": "tensorflow_savedmodel", "files": f"{FOLDER}/{folder.name}/", "deprecated": TF_DEPRECATION,
            "request_shape": ["n", 1] if batching else ["n"],
            "op_library_filename": [f"{settings.tf_op_dir.rstrip('/')}/{lib}" for lib in libraries],
            "custom_ops": ops}

    def server_problems(self, out: Path) -> list[str]:
        """Return the ops of ``<name>_tf`` that Triton's TensorFlow backend neither links nor loads from its config."""
        from exporter.runtime.triton import read_model_config
        from exporter.verify.server_ops import TRITON_TF, custom_ops, server_problems

        folder = model_folders(out).get("tf")
        if folder is None:
            return []
        loaded = tuple(read_model_config(folder / "config.pbtxt").model_operations.op_library_filename)
        return [f"{folder.relative_to(out)}: {problem}" for problem in
                server_problems(custom_ops(folder / "1" / "model.savedmodel"), TRITON_TF, loaded=loaded)]

    def runners(self, out: Path) -> dict[str, Any]:
        folders = model_folders(out)
        if "onnx" not in folders:
            raise ArtifactNotFoundError(f"{out / FOLDER}: no <name>_onnx/config.pbtxt; re-run st-export")
        return {"model": TritonRequestRunner(folders["onnx"])}

    def variants(self, out: Path) -> list[Variant]:
        folders = model_folders(out)
        if "tf" not in folders:
            return []
        pb = folders["tf"] / "1" / "model.savedmodel" / "saved_model.pb"
        return [Variant(name="tf", file=str(pb.relative_to(out)),
                        load=functools.partial(TritonRequestRunner, folders["tf"]),
                        thresholds=Thresholds(), batch_sizes=self.parity_batch_sizes,
                        shows=f"{folders['tf'].relative_to(out)}/ (TensorFlow backend, fed as Triton feeds it)")]
