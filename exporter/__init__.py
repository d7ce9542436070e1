"""st-exporter: sentence-transformers models → string-in ONNX / TensorFlow / TFLite artifacts.

Python API (mirrors the CLI)::

    import exporter
    result = exporter.export("path/to/model", "out", targets="onnx")
    report = exporter.check("out")
"""
from __future__ import annotations

from .errors import ExporterError
from .api import ExportResult, check, export

__all__ = ["ExporterError", "ExportResult", "check", "export"]
__version__ = "0.1.0"
