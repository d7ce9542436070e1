"""Make onnx-tf 1.10.0 (2022, the last release) import on today's stack. Every workaround lives here.

What breaks and what we do (tests/test_onnx_tf_compat.py fails loudly when a library upgrade
changes any of it):

1. ``onnx.mapping`` was removed in onnx 1.15; onnx-tf reads four of its tables (``onnx.mapping``
   and ``onnx.helper.mapping``). We rebuild those tables from ``onnx.helper``'s functions.
2. onnx-tf imports ``tensorflow_addons`` (Hardmax) and ``tensorflow_probability`` (Bernoulli) when
   its handlers load. tensorflow-addons is dead and fails under Keras 3; neither op appears in a
   BERT/DistilBERT encoder. When they are not importable we put inert stand-ins in
   ``sys.modules`` that raise a clear error if a handler ever calls into them.
3. onnx-tf's handlers stop at opset 16 and lack opset-13 forms of some ops, and it cannot see
   ``ai.onnx.contrib`` nodes: callers give it only the encoder, exported at ``ONNX_TF_OPSET``.
4. onnx-tf turns every initializer into ``tf.constant(numpy_array.flatten().tolist())``: a Python
   float object per weight (about 20 GB of objects for a 560 M-parameter model), and a SavedModel
   whose weights are graph constants inside ``saved_model.pb``, which protobuf caps at 2 GB. We make
   initializers of ``VARIABLE_MIN_ELEMENTS`` or more elements non-trainable ``tf.Variable``s built
   from the array (saved in ``variables/``, read once at load), and the rest constants from the array.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from typing import Any

from ..errors import ExporterError

#: the opset the encoder is exported at for onnx-tf (SDPA attention needs 14, so attention is eager)
ONNX_TF_OPSET = 12
STUBBED = ("tensorflow_addons", "tensorflow_probability")
#: initializers this large are weights (a variable each); smaller ones (shapes, axes) stay constants, which
#: onnx-tf's handlers read statically
VARIABLE_MIN_ELEMENTS = 4096


class OnnxTfUnavailableError(ExporterError):
    code = "onnx-tf-unavailable"


def _mapping_module() -> types.ModuleType:
    import onnx
    from onnx import helper

    module = types.ModuleType("onnx.mapping")
    tensor_types = [t for t in onnx.TensorProto.DataType.values() if t != onnx.TensorProto.UNDEFINED]

    def table(function, keys) -> dict:
        out = {}
        for key in keys:
            try:
                out[key] = function(key)
            except (KeyError, ValueError, TypeError):
                continue
        return out

    module.TENSOR_TYPE_TO_NP_TYPE = table(helper.tensor_dtype_to_np_dtype, tensor_types)
    module.NP_TYPE_TO_TENSOR_TYPE = {v: k for k, v in reversed(list(module.TENSOR_TYPE_TO_NP_TYPE.items()))}
    module.TENSOR_TYPE_TO_STORAGE_TENSOR_TYPE = table(helper.tensor_dtype_to_storage_tensor_dtype, tensor_types)
    module.STORAGE_TENSOR_TYPE_TO_FIELD = table(helper.tensor_dtype_to_field,
                                                set(module.TENSOR_TYPE_TO_STORAGE_TENSOR_TYPE.values()))
    return module


class _Inert(types.ModuleType):
    """A stand-in module: any attribute is another stand-in; calling one raises."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Inert(f"{self.__name__}.{name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise OnnxTfUnavailableError(
            f"the ONNX graph needs {self.__name__}, which onnx-tf imports but this stack cannot provide")


def _importable(name: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tensorflow-addons warns about its end of life first
            importlib.import_module(name)
        return True
    except Exception:  # noqa: BLE001 - tensorflow_addons raises arbitrary errors under Keras 3
        return False


def install_shims() -> list[str]:
    """Install the workarounds (idempotent); return the names of the modules that were stubbed."""
    import onnx
    import onnx.helper

    if not hasattr(onnx, "mapping"):
        mapping = _mapping_module()
        onnx.mapping = mapping
        sys.modules["onnx.mapping"] = mapping
    if not hasattr(onnx.helper, "mapping"):
        onnx.helper.mapping = onnx.mapping
    stubbed = []
    for name in STUBBED:
        if isinstance(sys.modules.get(name), _Inert):
            stubbed.append(name)
        elif name not in sys.modules and not _importable(name):
            sys.modules[name] = _Inert(name)
            stubbed.append(name)
    return stubbed


def _initializers_from_arrays(cls: Any, initializer: Any, training_mode: bool = False) -> list[tuple[str, Any]]:
    """onnx-tf's ``Backend._onnx_initializer_to_input_dict_items``, fed from arrays, weights as variables."""
    import numpy as np
    import tensorflow as tf
    from onnx import numpy_helper

    items = []
    for init in initializer:
        array = numpy_helper.to_array(init)
        name = init.name.replace(":", "_tf_").lstrip("_") or "initializer"
        if array.size >= VARIABLE_MIN_ELEMENTS and np.issubdtype(array.dtype, np.floating):
            items.append((init.name, tf.Variable(array, trainable=False, name=name)))
        else:
            items.append((init.name, tf.constant(array, name=name)))
        del array
    return items


def onnx_tf_backend() -> Any:
    """Return ``onnx_tf.backend`` imported through the shims.

    Raises:
        OnnxTfUnavailableError: onnx-tf is not installed or still fails to import.
    """
    if importlib.util.find_spec("onnx_tf") is None:
        raise OnnxTfUnavailableError("the savedmodel target needs onnx-tf: pip install onnx-tf==1.10.0")
    install_shims()
    try:
        backend = importlib.import_module("onnx_tf.backend")
        backend.TensorflowBackend._onnx_initializer_to_input_dict_items = classmethod(_initializers_from_arrays)
        return backend
    except Exception as exc:  # noqa: BLE001 - report any import failure with its cause
        raise OnnxTfUnavailableError(f"onnx-tf failed to import on this stack ({type(exc).__name__}: {exc}); "
                                     "see exporter/graphs/onnx_tf_compat.py") from None
