"""Progress inside long steps: the API's ``progress`` callback, reachable from deep code.

:func:`exporter.export` and :func:`exporter.check` report each step (reading, building a
target, checking its parity) through the callback they are given; a step that takes long
(onnx-tf's conversion, three TFLite conversions, the variants' parity) reports its parts with
:func:`note` without the callback being threaded through every signature.
"""
from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import Callable, Iterator, Sequence, TypeVar

Progress = Callable[[str], None]
T = TypeVar("T")

_current: ContextVar[Progress | None] = ContextVar("st_export_progress", default=None)


@contextlib.contextmanager
def reporting(progress: Progress | None) -> Iterator[None]:
    """Send :func:`note` to ``progress`` (None: nowhere) inside the block."""
    token = _current.set(progress)
    try:
        yield
    finally:
        _current.reset(token)


def note(label: str) -> None:
    """Report a part of the current step ("  · label")."""
    progress = _current.get()
    if progress is not None:
        progress(f"  · {label}")


def counted(items: Sequence[T], label: Callable[[T], str]) -> Iterator[T]:
    """Yield ``items``, noting "label (i/n)" before each."""
    for i, item in enumerate(items, start=1):
        note(f"{label(item)} ({i}/{len(items)})")
        yield item
