"""st-exporter: sentence-transformers models → string-in ONNX / TensorFlow / TFLite artifacts.

Python API (mirrors the CLI)::

    import exporter
    model = exporter.load("out")                 # numpy, onnxruntime, onnxruntime-extensions only
    embeddings = model.encode(["Hello world"])   # SentenceTransformer.encode's interface
    result = exporter.export("path/to/model", "out", targets="onnx")   # needs st-exporter[export]
    report = exporter.check("out")
"""
from __future__ import annotations

from .runtime.ortx_runtime import preload as _preload_extensions

# The one import-time side effect, on purpose: the onnxruntime-extensions library must be loaded
# before TensorFlow or its regex ops bind to TensorFlow's RE2 (see exporter/runtime/ortx_runtime.py).
_preload_extensions()

from .errors import ExporterError  # noqa: E402

_API = ("ExportResult", "check", "export")


def __getattr__(name: str):
    # the API imports torch and transformers (seconds): loaded on first use, so that ``st-export``
    # has its signal handlers in place before the heavy imports and ``--help`` answers at once
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "load":  # the light runtime: numpy, onnxruntime and onnxruntime-extensions only
        from .runtime.loaded import load

        return load
    raise AttributeError(f"module 'exporter' has no attribute {name!r}")


__all__ = ["ExporterError", "ExportResult", "check", "export", "load"]
__version__ = "0.1.0"
