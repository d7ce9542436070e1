"""TF Serving's layout (``tfserving/models.config`` and ``tfserving/<name>/<version>/``) called with REST bodies.

The runner finds the served SavedModel through ``models.config`` (read with TF Serving's own schema)
and sends each batch as a ``:predict`` JSON body through the signature, reading the JSON response as a
client would. TensorFlow is imported when a runner is opened, never when this module is.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ArtifactNotFoundError, InvalidInputError
from .runners import DEFAULT_BATCH_SIZE, PairScoring, SparseEncoding, in_batches

#: the model server's ``--model_config_file``, in the layout's folder
CONFIG = "models.config"


def read_models_config(path: Path) -> Any:
    """Return ``models.config`` parsed with TF Serving's own schema (unknown fields raise)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    return text_format.Parse(Path(path).read_text(encoding="utf-8"), model_server_config_pb2.ModelServerConfig())


def predict_inputs(body: dict[str, Any], input_names: Sequence[str]) -> tuple[dict[str, list], bool]:
    """Return ({input name: values}, row_format) for a ``:predict`` body, read as TF Serving reads it.

    Row format (``instances``) is a list with one entry per example: a bare value when the signature
    has one input, else an object by input name. Columnar (``inputs``) is an object by input name,
    or a bare list when there is one input.
    """
    if ("instances" in body) == ("inputs" in body):
        raise ValueError('a predict body has exactly one of "instances" and "inputs"')
    if "instances" in body:
        rows = body["instances"]
        if len(input_names) == 1 and not (rows and isinstance(rows[0], dict)):
            return {input_names[0]: list(rows)}, True
        return {name: [row[name] for row in rows] for name in input_names}, True
    columns = body["inputs"]
    if not isinstance(columns, dict):
        return {input_names[0]: list(columns)}, False
    return {name: list(columns[name]) for name in input_names}, False


def predict_response(outputs: dict[str, np.ndarray], row_format: bool) -> dict[str, Any]:
    """Return the JSON TF Serving sends back; a lone output is sent without its name."""
    if len(outputs) == 1:
        (value,) = outputs.values()
        return {"predictions" if row_format else "outputs": value.tolist()}
    if row_format:
        size = len(next(iter(outputs.values())))
        return {"predictions": [{k: v[i].tolist() for k, v in outputs.items()} for i in range(size)]}
    return {"outputs": {k: v.tolist() for k, v in outputs.items()}}


class TfServingRestRunner(PairScoring, SparseEncoding):
    """``tfserving/<name>/<version>`` found through ``models.config``, called with REST JSON bodies (a reranker's
    pairs as ``{"instances": [{"query": …, "document": …}]}``)."""

    def __init__(self, folder: Path):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401 - registers the tf-text ops the graph uses

        config = read_models_config(Path(folder) / CONFIG)
        (entry,) = config.model_config_list.config
        versions = sorted((Path(folder) / entry.name).glob("[0-9]*"), key=lambda p: int(p.name))
        if not versions:
            raise ArtifactNotFoundError(f"{folder / entry.name}: no numbered version folder; re-run st-export")
        self.model = tf.saved_model.load(str(versions[-1]))
        self.signature = self.model.signatures["serving_default"]
        self.input_names = list(self.signature.structured_input_signature[1])
        self.name = f"tf serving {entry.name}/{versions[-1].name} (REST JSON)"

    def predict(self, body: dict[str, Any]) -> dict[str, Any]:
        """Return the response TF Serving gives to a ``:predict`` JSON body (both through JSON text)."""
        import tensorflow as tf

        body = json.loads(json.dumps(body))
        inputs, row_format = predict_inputs(body, self.input_names)
        tensors = {name: tf.constant(values, dtype=tf.string, shape=[len(values)]) for name, values in inputs.items()}
        name = body.get("signature_name", "serving_default")  # a prompt's signature (exporter/runtime/prompts.py)
        if name not in self.model.signatures:
            raise InvalidInputError(f"signature_name {name!r}: the model has {', '.join(self.model.signatures)}")
        outputs = {name: value.numpy() for name, value in self.model.signatures[name](**tensors).items()}
        return json.loads(json.dumps(predict_response(outputs, row_format)))

    def encode(self, texts: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE,
               signature: str = "serving_default") -> np.ndarray:
        """Return the embeddings of ``texts`` through ``signature`` (sent as the body's ``signature_name``)."""
        return in_batches(lambda chunk: self._predict(chunk, signature), texts, batch_size)

    def _predict(self, texts: list[str], signature: str = "serving_default") -> np.ndarray:
        body = {"instances": texts, **({"signature_name": signature} if signature != "serving_default" else {})}
        response = self.predict(body)
        return np.array(response["predictions"], dtype=np.float32).reshape(len(texts), -1)

    def _pair_outputs(self, queries: list[str], documents: list[str]) -> dict[str, np.ndarray]:
        response = self.predict({"instances": [{"query": q, "document": d} for q, d in zip(queries, documents,
                                                                                            strict=True)]})
        rows = response["predictions"]
        return {name: np.array([row[name] for row in rows], dtype=np.float32).reshape(len(queries), -1)
                for name in ("score", "logits")}

    def _sparse_outputs(self, texts: list[str]) -> dict[str, np.ndarray]:
        rows = self.predict({"instances": texts})["predictions"]
        if not rows:
            return {"indices": np.zeros((0, 0), np.int64), "values": np.zeros((0, 0), np.float32)}
        types = {"indices": np.int64, "values": np.float32, "dense": np.float32}
        return {name: np.array([row[name] for row in rows], dtype=kind).reshape(len(texts), -1)
                for name, kind in types.items() if name in rows[0]}
