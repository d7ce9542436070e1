"""A Triton model folder (``triton/<name>_onnx`` or ``<name>_tf``) fed exactly as Triton feeds its backend.

The runner reads ``config.pbtxt`` with Triton's own schema (from tritonclient, loaded by file path)
and sends requests of at most ``max_batch_size`` texts, shaped ``[n] + dims``, reshaped as declared.
ONNX Runtime or TensorFlow is imported when a runner is opened, per the folder's platform.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ParityError
from .onnx import ort_session
from .runners import DEFAULT_BATCH_SIZE, in_batches


@functools.lru_cache(maxsize=1)
def model_config_schema() -> Any:
    """Return Triton's ``model_config_pb2`` module, loaded from tritonclient by file path.

    ``import tritonclient.grpc`` needs the grpc extra, which pins protobuf < 7; the schema file
    itself loads with the protobuf TensorFlow brought.
    """
    spec = importlib.util.find_spec("tritonclient")
    if spec is None or not spec.submodule_search_locations:
        raise ParityError("tritonclient is not installed (pip install tritonclient): it holds Triton's config schema")
    path = Path(list(spec.submodule_search_locations)[0]) / "grpc" / "model_config_pb2.py"
    module_spec = importlib.util.spec_from_file_location("st_exporter_triton_model_config_pb2", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def read_model_config(path: Path) -> Any:
    """Return ``config.pbtxt`` parsed as Triton's ``inference.ModelConfig`` (unknown fields raise)."""
    from google.protobuf import text_format

    return text_format.Parse(Path(path).read_text(encoding="utf-8"), model_config_schema().ModelConfig())


class TritonRequestRunner:
    """A Triton model folder fed as Triton feeds its backend, after reading its ``config.pbtxt``.

    Texts go out in requests of at most ``max_batch_size``, each a string tensor of shape
    ``[n] + dims`` (``dims`` with -1 replaced by n when batching is off), reshaped per the config.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.config = read_model_config(self.folder / "config.pbtxt")
        (self.input,) = self.config.input
        (self.output,) = self.config.output
        if self.config.platform == "onnxruntime_onnx":
            self.session = ort_session(self.folder / "1" / (self.config.default_model_filename or "model.onnx"))
            self.name = f"triton {self.folder.name} (onnxruntime, reshaped strings)"
        elif self.config.platform == "tensorflow_savedmodel":
            import tensorflow as tf
            import tensorflow_text  # noqa: F401 - registers the tf-text ops the graph uses

            loaded = tf.saved_model.load(str(self.folder / "1" / (self.config.default_model_filename or
                                                                    "model.savedmodel")))
            self.signature = loaded.signatures["serving_default"]
            self._keep = loaded
            self.name = f"triton {self.folder.name} (tensorflow, reshaped strings)"
        else:
            raise ParityError(f"{self.folder}: unexpected platform {self.config.platform!r}")

    def _full_shape(self, dims: Sequence[int], n: int) -> list[int]:
        if self.config.max_batch_size > 0:
            return [n] + list(dims)
        return [n if d == -1 else d for d in dims]

    def request_shape(self, n: int) -> list[int]:
        """Return the shape of the ``text`` tensor a request of ``n`` texts carries."""
        return self._full_shape(self.input.dims, n)

    def _backend_input(self, batch: np.ndarray) -> np.ndarray:
        if not self.input.HasField("reshape"):
            return batch
        lead = [batch.shape[0]] if self.config.max_batch_size > 0 else []
        return batch.reshape(lead + list(self.input.reshape.shape))

    def _run(self, texts: list[str]) -> np.ndarray:
        batch = self._backend_input(np.array(texts, dtype=object).reshape(self.request_shape(len(texts))))
        if hasattr(self, "session"):
            (out,) = self.session.run(["sentence_embedding"], {"text": batch})
        else:
            import tensorflow as tf

            out = self.signature(text=tf.constant(batch.tolist(), dtype=tf.string,
                                                  shape=batch.shape))["sentence_embedding"].numpy()
        expected = self._full_shape(self.output.dims, len(texts))
        if list(out.shape) != expected:
            raise ParityError(f"{self.folder.name}: output shape {list(out.shape)}, config promises {expected}")
        return out

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Return the embeddings, in requests of at most ``batch_size`` texts and the config's max_batch_size."""
        step = min(batch_size, self.config.max_batch_size) if self.config.max_batch_size else batch_size
        return in_batches(self._run, texts, step)
