"""The table of artifacts: target → file → Runner → the packages it needs.

``exporter.load``, ``st-export check`` (through the targets' ``runners``/``variants``), the tests
and the benchmarks find an export's files and open them here, so a file name is written once.
A row's ``target`` is what ``exporter.load(OUT, target)`` and the manifest call it ("onnx",
"onnx:int8"): the part before ":" is the target that builds it, the part after the variant.
Serving layouts (Triton, TF Serving) are rows too, fed as their servers feed them; ``load``
does not open them (it runs each graph once, as it is, from its target's folder).

Importing this module imports no runtime library: each Runner imports onnxruntime, TensorFlow
or LiteRT when it is opened.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import ArtifactNotFoundError, InvalidInputError, MissingPackageError
from .onnx import OnnxRunner
from .prompts import prompt_file
from .runners import SignatureRunner
from .savedmodel import SavedModelRunner
from .tflite import TFLiteRunner
from .tfserving import TfServingRestRunner
from .triton import TritonRequestRunner

ONNX_RUNTIME = ("onnxruntime", "onnxruntime-extensions")
TENSORFLOW = ("tensorflow", "tensorflow-text")
LITERT = ("ai-edge-litert", "tensorflow-text")


@dataclass(frozen=True)
class Artifact:
    """One file (or folder) an export can hold, and the Runner that runs it."""

    #: what load(OUT, target) and the manifest call it: "<target>" or "<target>:<variant>"
    target: str
    #: relative to OUT; a "*" stands for the served model's name a serving layout chose
    file: str
    #: the Runner class, opened with (path, **options)
    runner: Callable[..., Any]
    #: the pip packages the Runner imports (beyond numpy)
    needs: tuple[str, ...]
    #: keyword arguments the Runner takes
    options: tuple[str, ...] = ()
    #: the file whose Runner (same class) has ``tokenize``, for the targets that have one
    tokenizer: str | None = None
    #: a serving layout's copy of another target's graph: checked, benchmarked, not opened by load
    layout: bool = False
    #: how the file holds a model's other prompts (exporter/runtime/prompts.py): "file" (``model.<key>.onnx``
    #: beside it), "signature" (signature ``<key>``); None: the default prompt only
    prompts: str | None = None

    @property
    def base(self) -> str:
        """Return the target that builds this file ("onnx" for "onnx:int8")."""
        return self.target.split(":", 1)[0]

    @property
    def variant(self) -> str | None:
        """Return the variant's name ("int8" for "onnx:int8"; None for a target's main file)."""
        return self.target.split(":", 1)[1] if ":" in self.target else None

    def path(self, out: Path) -> Path:
        """Return where this file is in the export ``out`` (it may not exist; a pattern's first match)."""
        if "*" in self.file:
            found = sorted(Path(out).glob(self.file))
            if found:
                return found[0]
        return Path(out) / self.file

    def open(self, out: Path, **options: Any) -> Any:
        """Return the Runner of this file in ``out`` (options that are None are left out).

        Raises:
            ArtifactNotFoundError: the export does not hold the file.
            InvalidInputError: an option this Runner does not take.
        """
        return self._opened(self.path(out), options)

    def open_tokenizer(self, out: Path, **options: Any) -> Any:
        """Return the Runner with ``tokenize`` of this target in ``out``.

        Raises:
            ArtifactNotFoundError: the export does not hold the file.
            InvalidInputError: this target has no tokenizer graph, or an option its Runner does not take.
        """
        if self.tokenizer is None:
            raise InvalidInputError(f"{self.target} has no tokenizer graph; targets with one: "
                                    f"{', '.join(row.target for row in ARTIFACTS if row.tokenizer)}")
        return self._opened(Path(out) / self.tokenizer, options)

    def open_prompt(self, out: Path, key: str, opened: Any = None, **options: Any) -> Any:
        """Return the Runner of the prompt graph ``key`` ("": the default prompt's) of this file in ``out``.

        Args:
            opened: this file's Runner when already open (a signature's Runner reuses it).

        Raises:
            ArtifactNotFoundError: the export does not hold the file.
            InvalidInputError: this file holds its model's default prompt only.
        """
        if not key:
            return opened if opened is not None else self.open(out, **options)
        if self.prompts == "signature":
            return SignatureRunner(opened if opened is not None else self.open(out, **options), key)
        if self.prompts == "file":
            return self._opened(Path(out) / prompt_file(self.file, key), options)
        raise InvalidInputError(f"{self.target} holds its model's default prompt only; the other prompts are in "
                                f"{', '.join(row.target for row in ARTIFACTS if row.prompts)}")

    def _opened(self, path: Path, options: dict[str, Any]) -> Any:
        given = {name: value for name, value in options.items() if value is not None}
        refused = sorted(set(given) - set(self.options))
        if refused:
            raise InvalidInputError(f"{self.target}'s runner takes {', '.join(self.options) or 'no options'}; "
                                    f"not {', '.join(refused)}")
        if not path.exists():
            raise ArtifactNotFoundError(f"{path}: not in this export; export it (st-export MODEL -o OUT --add "
                                        f"--targets {self.base}) or load another target")
        try:
            return self.runner(path, **given)
        except ModuleNotFoundError as exc:  # the light install runs onnx only; name what this target needs
            raise MissingPackageError(f"the {self.target} target's runner needs {', '.join(self.needs)}; "
                                      f"{exc.name} is not installed: pip install {' '.join(self.needs)}") from None


#: every file an export can hold that a Runner runs; targets' main files first, in the targets' order
ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("onnx", "onnx/model.onnx", OnnxRunner, ONNX_RUNTIME, ("providers", "threads", "name"),
             tokenizer="onnx/tokenizer.onnx", prompts="file"),
    Artifact("onnx:optimized", "onnx/model_optimized.onnx", OnnxRunner, ONNX_RUNTIME, ("providers", "threads", "name")),
    Artifact("onnx:int8", "onnx/model_int8.onnx", OnnxRunner, ONNX_RUNTIME, ("providers", "threads", "name")),
    Artifact("onnx:int8w", "onnx/model_int8w.onnx", OnnxRunner, ONNX_RUNTIME, ("providers", "threads", "name")),
    Artifact("savedmodel", "savedmodel", SavedModelRunner, TENSORFLOW, ("device",), tokenizer="savedmodel",
             prompts="signature"),
    Artifact("tflite", "tflite/model.tflite", TFLiteRunner, LITERT, ("threads", "name"),
             tokenizer="tflite/model.tflite", prompts="signature"),
    Artifact("tflite:fp16", "tflite/model_fp16.tflite", TFLiteRunner, LITERT, ("threads", "name"), prompts="signature"),
    Artifact("tflite:int8", "tflite/model_int8.tflite", TFLiteRunner, LITERT, ("threads", "name"), prompts="signature"),
    Artifact("triton", "triton/*_onnx", TritonRequestRunner, (*ONNX_RUNTIME, "tritonclient"), layout=True),
    Artifact("triton:tf", "triton/*_tf", TritonRequestRunner, (*TENSORFLOW, "tritonclient"), layout=True),
    Artifact("tfserving", "tfserving", TfServingRestRunner, (*TENSORFLOW, "tensorflow-serving-api"), layout=True,
             prompts="signature"),
)


def artifact(target: str, *, layouts: bool = True) -> Artifact:
    """Return the row of ``target`` ("onnx", "onnx:int8", "savedmodel", ...).

    Args:
        target: a row's target.
        layouts: False leaves the serving layouts' rows out (what ``exporter.load`` opens).

    Raises:
        InvalidInputError: no such row (the message lists the rows looked at).
    """
    rows = [row for row in ARTIFACTS if layouts or not row.layout]
    for row in rows:
        if row.target == target:
            return row
    raise InvalidInputError(f"target {target!r}; available: {', '.join(row.target for row in rows)}")


def variants_of(target: str) -> list[Artifact]:
    """Return the rows of ``target``'s variant files (e.g. onnx:optimized, onnx:int8), in table order."""
    return [row for row in ARTIFACTS if row.base == target and row.variant is not None]


def open_runner(out: str | Path, target: str, **options: Any) -> Any:
    """Return the Runner of ``target``'s file in the export ``out``.

    Args:
        out: a directory written by st-export.
        target: a row of :data:`ARTIFACTS` ("onnx", "onnx:int8", "savedmodel", "tflite:fp16", "triton", ...).
        options: the Runner's keyword arguments (``threads``, ``providers``, ``name``, ``device``: see the
            row's ``options``); None values are left out.

    Raises:
        InvalidInputError: an unknown target or an option its Runner does not take.
        ArtifactNotFoundError: the export does not hold the file.
    """
    return artifact(target).open(Path(out), **options)


def open_tokenizer(out: str | Path, target: str, **options: Any) -> Any:
    """Return the Runner with ``tokenize`` of ``target`` ("onnx": tokenizer.onnx, "savedmodel", "tflite").

    Raises:
        InvalidInputError: an unknown target, one without a tokenizer graph, or an option its Runner
            does not take.
        ArtifactNotFoundError: the export does not hold the file.
    """
    return artifact(target).open_tokenizer(Path(out), **options)
