"""Typed errors. Every error a user can cause derives from ExporterError.

The CLI prints ``str(error)`` without a traceback and exits with ``exit_code``.
Each error carries a short machine-readable ``code`` for scripts and tests.
"""
from __future__ import annotations


class ExporterError(Exception):
    """Base class of every error the exporter raises on purpose."""

    code = "exporter-error"
    exit_code = 2


class ModelNotFoundError(ExporterError):
    code = "model-not-found"


class InvalidModelError(ExporterError):
    """The directory exists but is not a readable sentence-transformers model."""

    code = "invalid-model"


class UnsupportedModelError(ExporterError):
    """The model is valid but uses something we do not convert. Lists every problem."""

    code = "unsupported"

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"the model cannot be exported ({len(self.problems)} problem(s)):\n{lines}")


class OutputExistsError(ExporterError):
    code = "output-exists"


class OutputNotWritableError(ExporterError):
    code = "output-not-writable"


class UnknownTargetError(ExporterError):
    code = "unknown-target"


class InvalidInputError(ExporterError):
    """Wrong input given to a Runner (e.g. not a list of str)."""

    code = "invalid-input"


class ParityError(ExporterError):
    """An artifact does not embed like the reference model."""

    code = "parity-failed"
    exit_code = 1


class ArtifactNotFoundError(ExporterError):
    """A file an export should hold is missing (a partial copy, a hand-deleted file): re-run st-export."""

    code = "artifact-not-found"


class InvalidOptionError(ExporterError):
    """A target setting (model name, op library path, batch size...) that cannot be used."""

    code = "invalid-option"


class InvalidManifestError(ExporterError):
    """An export's manifest.json is not JSON, or a field it must hold is missing or of the wrong type."""

    code = "invalid-manifest"


class MissingPackageError(ExporterError):
    """A runtime package a target's Runner imports is not installed (the message names the pip install)."""

    code = "missing-package"
