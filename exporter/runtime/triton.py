"""A Triton model folder (``triton/<name>_onnx`` or ``<name>_tf``) fed exactly as Triton feeds its backend.

The runner reads ``config.pbtxt`` with Triton's own schema (from tritonclient, loaded by file path)
and sends requests of at most ``max_batch_size`` texts (or pairs, for a reranker), each input shaped
``[n] + dims``, reshaped as declared.
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
from .runners import DEFAULT_BATCH_SIZE, PairScoring, SparseEncoding, checked_batch_size, in_batches


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


class TritonRequestRunner(PairScoring, SparseEncoding):
    """A Triton model folder fed as Triton feeds its backend, after reading its ``config.pbtxt``.

    Texts (a reranker's pairs: ``query`` and ``document``, one tensor each) go out in requests of at most
    ``max_batch_size`` rows, each input a string tensor of shape ``[n] + dims`` (``dims`` with -1 replaced by n when
    batching is off), reshaped per the config; every output the config declares is read and its shape checked.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.config = read_model_config(self.folder / "config.pbtxt")
        self.inputs = {row.name: row for row in self.config.input}
        self.output_names = [row.name for row in self.config.output]
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

    def request_shape(self, n: int, input_name: str | None = None) -> list[int]:
        """Return the shape of the string tensor (``input_name``, default the first input) a request of ``n`` rows
        carries."""
        return self._full_shape(self.inputs[input_name or next(iter(self.inputs))].dims, n)

    def _backend_input(self, name: str, values: list[str]) -> np.ndarray:
        """Return the tensor the backend gets for one input: the request's [n] + dims, reshaped as declared."""
        declared = self.inputs[name]
        batch = np.array(values, dtype=object).reshape(self._full_shape(declared.dims, len(values)))
        if not declared.HasField("reshape"):
            return batch
        lead = [batch.shape[0]] if self.config.max_batch_size > 0 else []
        return batch.reshape(lead + list(declared.reshape.shape))

    def _request(self, columns: dict[str, list[str]]) -> dict[str, np.ndarray]:
        """Return every declared output of one request (``columns``: the rows of each input), shapes checked."""
        if sorted(columns) != sorted(self.inputs):
            raise ParityError(f"{self.folder.name} takes {', '.join(self.inputs)}; the request has "
                              f"{', '.join(columns)}")
        batches = {name: self._backend_input(name, values) for name, values in columns.items()}
        if hasattr(self, "session"):
            outputs = dict(zip(self.output_names, self.session.run(self.output_names, batches), strict=True))
        else:
            import tensorflow as tf

            called = self.signature(**{name: tf.constant(batch.tolist(), dtype=tf.string, shape=batch.shape)
                                       for name, batch in batches.items()})
            outputs = {name: called[name].numpy() for name in self.output_names}
        rows = len(next(iter(columns.values())))
        for declared in self.config.output:
            expected = self._full_shape(declared.dims, rows)
            got = list(outputs[declared.name].shape)
            if len(got) != len(expected) or any(e not in (-1, g) for e, g in zip(expected, got, strict=True)):
                raise ParityError(f"{self.folder.name}: output {declared.name} shape "
                                  f"{list(outputs[declared.name].shape)}, config promises {expected}")
        return outputs

    def _step(self, batch_size: int) -> int:
        return min(batch_size, self.config.max_batch_size) if self.config.max_batch_size else batch_size

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Return the embeddings, in requests of at most ``batch_size`` texts and the config's max_batch_size."""
        return in_batches(lambda chunk: self._request({"text": chunk})["sentence_embedding"], texts,
                          self._step(checked_batch_size(batch_size)))

    def score_and_logits(self, queries: Sequence[str], documents: Sequence[str],
                         batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """Return a reranker's (score, logits), in requests of at most ``batch_size`` pairs and max_batch_size."""
        return super().score_and_logits(queries, documents, self._step(checked_batch_size(batch_size)))

    def _pair_outputs(self, queries: list[str], documents: list[str]) -> dict[str, np.ndarray]:
        return self._request({"query": queries, "document": documents})

    def encode_sparse(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """Return a sparse model's (indices, values), in requests of at most ``batch_size`` texts and max_batch_size."""
        return super().encode_sparse(texts, self._step(checked_batch_size(batch_size)))

    def _sparse_outputs(self, texts: list[str]) -> dict[str, np.ndarray]:
        return self._request({"text": texts})
