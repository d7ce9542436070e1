"""Export targets, one file per target, registered by name.

A target subclasses :class:`Target`: ``build`` writes its files under ``out/<name>/`` from the
ModelSpec (and may read what earlier targets wrote: targets run in ``requires`` order), and
``runners`` reopens those files as Runners for the parity harness, both at export time and in
``st-export check``. Extra files of the same graph (quantized, optimized) are ``variants``:
each has its own bar (its ``thresholds``) and gets its own parity figures, manifest entry and
row in the summary table. Adding a target is adding a file here, and for each file it writes a row
in the table of artifacts (``exporter/runtime/artifacts.py``) with the Runner that runs it (under
``exporter/runtime/``: a target builds; it runs nothing a user calls at serving time).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from exporter import kinds
from exporter.errors import UnknownTargetError
from exporter.registry import import_submodules
from exporter.verify.parity import BATCH_SIZES, Thresholds

_TARGETS: dict[str, type["Target"]] = {}


@dataclass
class Variant:
    """Another file of a target's graph (fp16, int8, optimized) held to its own bar."""

    name: str  # short, e.g. "int8"; shown as "<target>:<name>"
    file: str  # path relative to the export directory
    #: opens the Runner (with ``encode``); called on first use of ``runner``, so listing variants loads nothing
    load: Callable[[], Any]
    thresholds: Thresholds
    batch_sizes: tuple[int | None, ...] = BATCH_SIZES
    #: what the summary table shows for it when ``file`` alone does not say (a model folder, how it is fed)
    shows: str = ""

    @functools.cached_property
    def runner(self) -> Any:
        return self.load()

    def close(self) -> None:
        """Drop the opened runner (the next use of ``runner`` opens it again)."""
        self.__dict__.pop("runner", None)


@dataclass
class BuildResult:
    """What a target wrote and what the manifest should say about it."""

    files: list[Path]
    details: dict[str, Any] = field(default_factory=dict)


class Target:
    """Base class of a target; the docstring of each subclass is its user-facing description."""

    name: ClassVar[str]
    #: position in the default target list and in the summary table
    order: ClassVar[int] = 100
    requires: ClassVar[tuple[str, ...]] = ()
    thresholds: ClassVar[Thresholds] = Thresholds()
    #: set by serving layouts: the target whose files this one lays out again (hard links), so
    #: the benchmarks time that target once instead of the same file twice
    layout_of: ClassVar[str | None] = None
    #: batch sizes the parity check runs the main file at (None: the whole corpus as one batch)
    parity_batch_sizes: ClassVar[tuple[int | None, ...]] = BATCH_SIZES
    #: the tokenizer graph this target builds ("onnx", "tf", "tflite"; None: it reuses another
    #: target's files): the tokenizer family says before the build whether it can
    tokenizer_graph: ClassVar[str | None] = None

    def build(self, spec: Any, out: Path, *, options: dict[str, Any]) -> BuildResult:
        """Write this target's files under ``out / self.name`` and return what was written.

        ``options`` holds ``variants`` (bool: write the variant files too), ``opset`` when given,
        and whatever else the caller passed in ``export(options=...)``.
        """
        raise NotImplementedError

    def problems(self, spec: Any) -> list[str]:
        """Return why this target cannot convert ``spec`` (empty: it can), checked before anything is built.

        The default asks the model's kind (a reranker is exported to some targets only) and the tokenizer family
        about ``tokenizer_graph``; a target adds its own limits.
        """
        refused = kinds.get(spec.kind).target_problems(self.name)
        if refused:
            return refused
        return spec.tokenizer.problems(self.tokenizer_graph) if self.tokenizer_graph else []

    def check_options(self, spec: Any, options: dict[str, Any]) -> None:
        """Raise InvalidOptionError for a setting in ``options`` this target cannot use (before any build)."""

    def server_problems(self, out: Path) -> list[str]:
        """Return why the stock server this target lays out files for cannot run them as written (empty: it
        can, or the target is for no server); ``st-export check`` fails the target's row on any."""
        return []

    def runners(self, out: Path) -> dict[str, Any]:
        """Return {"model": Runner with encode, "tokenizer": Runner with tokenize (optional)}."""
        raise NotImplementedError

    def variants(self, out: Path) -> list[Variant]:
        """Return the target's variant files that exist in ``out`` as runners with their bars."""
        return []


def register(cls: type[Target]) -> type[Target]:
    """Class decorator: make ``cls`` available as ``--targets <cls.name>``."""
    _TARGETS[cls.name] = cls
    return cls


def _load_all() -> None:
    import_submodules(__name__, __path__)


def available() -> list[str]:
    """Return the names of every implemented target."""
    _load_all()
    return sorted(_TARGETS, key=lambda name: _TARGETS[name].order)


def get(name: str) -> Target:
    """Return the target called ``name`` alone (``resolve`` adds what it requires).

    Raises:
        UnknownTargetError: ``name`` is not an implemented target.
    """
    return next(target for target in resolve([name]) if target.name == name)


def resolve(names: list[str] | str | None, *, with_requirements: bool = True) -> list[Target]:
    """Return target instances for a list or comma-separated string (None: every target), with the targets
    they are built from (``requires``) unless ``with_requirements`` is False.

    Raises:
        UnknownTargetError: a name is not an implemented target.
    """
    _load_all()
    if names is None:
        names = available()
    elif isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in _TARGETS]
    if unknown or not names:
        raise UnknownTargetError(
            f"unknown target(s) {unknown or names!r}; available: {', '.join(available())}")
    chosen: list[str] = []
    for name in names:
        for needed in (*(_TARGETS[name].requires if with_requirements else ()), name):
            if needed not in chosen:
                chosen.append(needed)
    return [_TARGETS[n]() for n in chosen]
