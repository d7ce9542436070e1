"""Which ops a SavedModel uses and which library defines each: what a TensorFlow server must link.

Runs in a child process that imports only TensorFlow, so the op registry it reads holds TensorFlow's
own ops; each tensorflow-text op library is then loaded one at a time and the ops it adds are
attributed to it. (In the exporter's process tensorflow-text is already loaded, so its ops and
TensorFlow's cannot be told apart there.)
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from ..errors import ExporterError

#: core ops that call back into Python: no model server can run them
PYTHON_OPS = ("PyFunc", "PyFuncStateless", "EagerPyFunc")

_SCRIPT = r"""
import glob, importlib.util, json, os
import tensorflow as tf
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api

def registered():
    ops = op_def_pb2.OpList()
    ops.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    return {op.name for op in ops.op}

sources = {op: "tensorflow" for op in registered()}
spec = importlib.util.find_spec("tensorflow_text")
if spec is not None:
    folder = os.path.join(os.path.dirname(spec.origin), "python", "ops")
    for library in sorted(glob.glob(os.path.join(folder, "_*.so"))):
        before = set(sources)
        tf.load_op_library(library)
        for op in registered() - before:
            sources[op] = "tensorflow-text:" + os.path.basename(library)
print(json.dumps(sources))
"""


class OpInventoryError(ExporterError):
    code = "op-inventory"


@functools.lru_cache(maxsize=1)
def registered_op_sources() -> dict[str, str]:
    """Return {op: "tensorflow" | "tensorflow-text:<file>.so"} for every op this installation defines."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise OpInventoryError(f"could not list TensorFlow's ops: {result.stderr.strip()[-800:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def savedmodel_ops(saved_model_dir: Path) -> set[str]:
    """Return the op types used by every graph and function of a SavedModel."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    used: set[str] = set()
    for graph in (meta.graph_def for meta in saved.meta_graphs):
        used |= {node.op for node in graph.node}
        used |= {node.op for function in graph.library.function for node in function.node_def}
    return used


def savedmodel_op_sources(saved_model_dir: Path) -> dict[str, str]:
    """Return {op: library} for every op the SavedModel's graph and functions use.

    The library is ``"tensorflow"``, ``"tensorflow-text:<file>.so"`` or ``"unregistered"`` (defined
    by neither, e.g. a custom op library); ops in :data:`PYTHON_OPS` are TensorFlow's but need Python.
    """
    sources = registered_op_sources()
    return {op: sources.get(op, "unregistered") for op in sorted(savedmodel_ops(saved_model_dir))}


def unservable_ops(sources: dict[str, str]) -> list[str]:
    """Return the ops TF Serving's standard build (TensorFlow + tensorflow-text ops) cannot run."""
    return sorted(op for op, source in sources.items()
                  if op in PYTHON_OPS or not (source == "tensorflow" or source.startswith("tensorflow-text:")))
