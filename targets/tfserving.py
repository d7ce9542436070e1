"""TF Serving: ``tfserving/<name>/1/`` (the SavedModel, versioned layout) and ``tfserving/models.config``.

REST, as TF Serving's standard model server answers it (its build links tensorflow-text's ops)::

    POST /v1/models/<name>:predict  {"instances": ["Hello world", ...]}      -> {"predictions": [[D floats], ...]}
    POST /v1/models/<name>:predict  {"inputs": {"text": ["Hello world", ...]}} -> {"outputs": [[D floats], ...]}

The signature has one input and one output, so TF Serving also accepts ``{"inputs": [...]}`` and
leaves the output's name out of both responses. A reranker's signature takes ``query`` and ``document`` and
returns ``score`` and ``logits``, so each instance is an object and each prediction one too::

    {"instances": [{"query": "what is a reranker", "document": "A model that ..."}, ...]}
        -> {"predictions": [{"score": [labels floats], "logits": [labels floats]}, ...]}
    {"inputs": {"query": [...], "document": [...]}} -> {"outputs": {"score": [[...], ...], "logits": [[...], ...]}} The runner sends the row-format body through JSON,
the signature and a JSON response, as the server would; the tests also run both bodies in a process
that imports only tensorflow and tensorflow_text.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from exporter.errors import ExporterError
from exporter.layouts import link_tree, model_name, server_path
from exporter.runtime.artifacts import artifact, open_runner
from exporter.runtime.tfserving import CONFIG

from . import BuildResult, Target, register
from .savedmodel import signature_io

FOLDER = artifact("tfserving").file
VERSION = "1"
#: where docs/serving.md's docker command mounts OUT/tfserving
DEFAULT_BASE_PATH = "/models"
EXAMPLE_TEXTS = ["Hello world", "Grüß Gott"]
EXAMPLE_PAIRS = [("what is a reranker", "A model that scores a query and a document together."),
                 ("was ist ein Reranker", "Ein Modell, das Paare aus Anfrage und Dokument bewertet.")]


class UnservableOpsError(ExporterError):
    """The SavedModel uses ops that TF Serving's standard build does not have."""

    code = "unservable-ops"


def tfserving_base_path(options: dict[str, Any]) -> str:
    """Return ``options["tfserving_base_path"]`` (default /models), validated.

    Raises:
        InvalidOptionError: not an absolute path (TF Serving resolves it on the server).
    """
    base = server_path(options.get("tfserving_base_path") or DEFAULT_BASE_PATH, flag="--tfserving-base-path",
                       server="TF Serving")
    return base.rstrip("/") or "/"


def models_config(name: str, base_path: str) -> str:
    """Return a ``--model_config_file`` for TF Serving: its ``ModelServerConfig`` message, printed by protobuf's
    text format (which quotes and escapes every string)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name=name, base_path=f"{base_path.rstrip('/')}/{name}",
                                        model_platform="tensorflow")
    return text_format.MessageToString(config)


def rest_examples(name: str, spec: Any) -> dict[str, Any]:
    """Return the documented REST requests and the shape of their responses (a reranker's: query and document)."""
    url = f"POST http://localhost:8501/v1/models/{name}:predict"
    inputs, outputs = signature_io(spec)
    if spec.kind == "sparse":
        rows = ("one object per text, in request order: {indices: K ints, values: K floats} (K: the batch's, pads "
                "index -1 value 0)")
        return {"row": {"url": url, "body": {"instances": EXAMPLE_TEXTS}, "response": {"predictions": rows}},
                "columnar": {"url": url, "body": {"inputs": {"text": EXAMPLE_TEXTS}},
                             "response": {"outputs": "{indices: [N, K] ints, values: [N, K] floats}"}}}
    if inputs == ["text"]:
        rows = f"one list of {outputs['sentence_embedding']} floats per text, in request order"
        return {"row": {"url": url, "body": {"instances": EXAMPLE_TEXTS}, "response": {"predictions": rows}},
                "columnar": {"url": url, "body": {"inputs": {"text": EXAMPLE_TEXTS}}, "response": {"outputs": rows}}}
    sizes = ", ".join(f"{output}: {size} float(s)" for output, size in outputs.items())
    return {"row": {"url": url, "body": {"instances": [dict(zip(inputs, pair, strict=True)) for pair in EXAMPLE_PAIRS]},
                    "response": {"predictions": f"one object per pair, in request order: {{{sizes}}}"}},
            "columnar": {"url": url, "body": {"inputs": {side: [pair[i] for pair in EXAMPLE_PAIRS]
                                                         for i, side in enumerate(inputs)}},
                         "response": {"outputs": f"{{{sizes} per pair, one list each, in request order}}"}}}


@register
class TfServingTarget(Target):
    """TF Serving: the SavedModel in the versioned layout, models.config and REST examples."""

    name = "tfserving"
    order = 30
    requires = ("savedmodel",)
    # the versioned SavedModel is savedmodel/ (hard links), proven at every batch size; one pass over
    # the corpus checks the layout
    parity_batch_sizes = (None,)
    layout_of = "savedmodel"

    def check_options(self, spec: Any, options: dict[str, Any]) -> None:
        """Raise InvalidOptionError for a bad name or base path (before anything is built)."""
        tfserving_base_path(options)
        model_name(spec, options)

    def build(self, spec: Any, out: Path, *, options: dict[str, Any]) -> BuildResult:
        import tensorflow as tf
        import tensorflow_text

        from exporter.verify.server_ops import TF_SERVING, custom_ops, server_problems
        from exporter.verify.tf_ops import savedmodel_op_sources, unservable_ops

        name = model_name(spec, options)
        base_path = tfserving_base_path(options)
        folder = out / FOLDER
        sources = savedmodel_op_sources(out / "savedmodel")
        bad = unservable_ops(sources)
        ops = custom_ops(out / "savedmodel")
        unlinked = server_problems(ops, TF_SERVING)
        if bad or unlinked:
            raise UnservableOpsError("the SavedModel uses ops TF Serving's standard build cannot run: "
                                     + "; ".join([*(f"{op} (Python or no library)" for op in bad), *unlinked]))
        files = link_tree(out / "savedmodel", folder / name / VERSION)
        (folder / CONFIG).write_text(models_config(name, base_path), encoding="utf-8")
        return BuildResult(files=[folder / CONFIG, *files], details={
            "name": name, "layout": f"{FOLDER}/{name}/{VERSION}/", "model_config_file": f"{FOLDER}/{CONFIG}",
            "base_path": f"{base_path.rstrip('/')}/{name}", "signature": "serving_default",
            "rest": rest_examples(name, spec),
            **({"prompt_signatures": {key: {"url": f"POST http://localhost:8501/v1/models/{name}:predict",
                                            "body": {"signature_name": key, "instances": EXAMPLE_TEXTS}}
                                      for key in spec.prompt_graphs()}} if spec.prompt_graphs() else {}),
            "ops": sources, "unservable_ops": bad, "custom_ops": ops,
            "min_runtime": {"tensorflow_model_server": tf.__version__,
                            "note": f"written with tensorflow {tf.__version__} and tensorflow-text "
                                    f"{tensorflow_text.__version__}; TF Serving links tensorflow-text's ops in "
                                    "its standard build; older releases are untested"},
        })

    def server_problems(self, out: Path) -> list[str]:
        """Return the ops of each versioned SavedModel that stock TF Serving does not link."""
        from exporter.verify.server_ops import TF_SERVING, custom_ops, server_problems

        return [f"{pb.parent.relative_to(out)}: {problem}" for pb in sorted((out / FOLDER).glob("*/*/saved_model.pb"))
                for problem in server_problems(custom_ops(pb.parent), TF_SERVING)]

    def runners(self, out: Path) -> dict[str, Any]:
        return {"model": open_runner(out, self.name)}
