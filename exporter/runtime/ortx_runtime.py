"""Load onnxruntime-extensions so that it works beside TensorFlow, and prove it does.

TensorFlow loads its libraries with RTLD_GLOBAL. When the extensions' shared library is loaded
after that, its RE2 calls bind to TensorFlow's RE2 and its regex ops silently return wrong
results (every word of a text became [UNK] in our measurement). Loading the library first,
with every symbol bound at once, avoids that; a canary graph with known answers detects a
process where it is too late, and the error says what to do.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
from pathlib import Path

import numpy as np

from ..errors import ExporterError

CANARY_TEXTS = ["Grüße, wörld! 東京 ok", "a\u00e9b"]
#: what StringRegexSplitWithOffsets / StringRegexReplace must return for CANARY_TEXTS
CANARY_SPLIT = ["Grüße", ",", "wörld", "!", "東京", "ok", "a\u00e9b"]
CANARY_REPLACED = ["Grüße, wörld! 東京 ok", "a_b"]


class ExtensionsRuntimeError(ExporterError):
    code = "extensions-runtime"


def library_path() -> str:
    """Return the extensions' custom-op library without importing the package (which imports torch)."""
    spec = importlib.util.find_spec("onnxruntime_extensions")
    if spec is None or spec.origin is None:
        raise ExtensionsRuntimeError("onnxruntime-extensions is not installed: pip install onnxruntime-extensions")
    found = sorted(Path(spec.origin).parent.glob("_extensions_pydll*"))
    if found:
        return str(found[0])
    from onnxruntime_extensions import get_library_path

    return get_library_path()


@functools.lru_cache(maxsize=1)
def preload() -> str:
    """Load the extensions library with RTLD_NOW | RTLD_LOCAL before anything else can; return its path."""
    path = library_path()
    ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
    return path


#: the canary graph, serialized: StringRegexSplitWithOffsets(text, "(\\s+|[,!])", keep "[,!]") and
#: StringRegexReplace(text, "\\x{E9}", "_"); stored so that running an export needs no ``onnx`` package
#: (tests/test_light_runtime.py rebuilds it with onnx.helper and compares)
CANARY_MODEL = """
CAoSEnN0LWV4cG9ydGVyIGNhbmFyeTrXAgpXCgR0ZXh0CgdwYXR0ZXJuCgRrZWVwEgZ0b2tlbnMSAWISAWUSBHJvd3MiG1N0cmlu
Z1JlZ2V4U3BsaXRXaXRoT2Zmc2V0czoPYWkub25ueC5jb250cmliCmAKBHRleHQKBmFjY2VudAoKdW5kZXJzY29yZRIIcmVwbGFj
ZWQiElN0cmluZ1JlZ2V4UmVwbGFjZSoVCg5nbG9iYWxfcmVwbGFjZRgBoAECOg9haS5vbm54LmNvbnRyaWISBmNhbmFyeSoZCAEQ
CDIKKFxzK3xbLCFdKUIHcGF0dGVybioQCAEQCDIEWywhXUIEa2VlcCoUCAEQCDIGXHh7RTl9QgZhY2NlbnQqEwgBEAgyAV9CCnVu
ZGVyc2NvcmVaEAoEdGV4dBIICgYICBICCgBiEgoGdG9rZW5zEggKBggIEgIKAGIUCghyZXBsYWNlZBIICgYICBICCgBCBAoAEBFC
EwoPYWkub25ueC5jb250cmliEAE=
"""


def _canary_session(path: str):
    import base64

    import onnxruntime as ort

    options = ort.SessionOptions()
    options.register_custom_ops_library(path)
    return ort.InferenceSession(base64.b64decode(CANARY_MODEL), options, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=1)
def verified_library() -> str:
    """Return the extensions library path after proving its string ops work in this process.

    Raises:
        ExtensionsRuntimeError: the regex ops give wrong answers (TensorFlow was loaded first).
    """
    path = preload()
    tokens, replaced = _canary_session(path).run(None, {"text": np.array(CANARY_TEXTS, dtype=object)})
    if tokens.tolist() != CANARY_SPLIT or replaced.tolist() != CANARY_REPLACED:
        raise ExtensionsRuntimeError(
            "onnxruntime-extensions' regex ops give wrong results in this process: TensorFlow was imported "
            "before the extensions library was loaded and its RE2 took over. Import exporter (or call "
            "exporter.runtime.ortx_runtime.preload()) before importing tensorflow, or use separate processes.")
    return path
