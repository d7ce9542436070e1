"""ONNX external data shared by several graphs: each distinct tensor stored once, in one file.

``model.onnx``, ``encoder.onnx``, ``model_optimized.onnx`` and ``model_int8.onnx`` hold the same
embedding matrix and most of the same layer weights. ``onnx.save(..., save_as_external_data=True)``
gives each graph its own data file; here every large initializer is written to one file beside the
graphs the first time its bytes are seen, and every graph that holds the same bytes points to the same
offset (ONNX external data: ``location``, ``offset``, ``length``). The graphs stay small protobufs, so
a model over protobuf's 2 GB limit can be composed, checked and saved like a small one.

ONNX Runtime, Triton's ONNX Runtime backend and the onnx library resolve ``location`` relative to the
graph file's folder: a graph needs its data file beside it (Triton's copy gets a data file of its own).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import onnx
from onnx import TensorProto, numpy_helper

DATA_FILE = "model.onnx.data"
#: smaller initializers (shapes, scales, axes) stay inside the graph, where tools show them
MIN_EXTERNAL_BYTES = 1024
#: offsets aligned to a page, so that ONNX Runtime can map the tensors instead of copying them
ALIGNMENT = 4096


class SharedWeights:
    """One external-data file that graphs move their large initializers into, each distinct tensor once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.touch()
        self._offsets: dict[str, tuple[int, int]] = {}

    def _stored(self, data: bytes) -> tuple[int, int]:
        """Return (offset, length) of ``data`` in the file, appending it unless the same bytes are there."""
        key = hashlib.sha256(data).hexdigest()
        if key not in self._offsets:
            with open(self.path, "ab") as f:
                end = f.seek(0, os.SEEK_END)
                f.write(b"\0" * (-end % ALIGNMENT))
                self._offsets[key] = (f.tell(), len(data))
                f.write(data)
        return self._offsets[key]

    def externalize(self, model: onnx.ModelProto, *, base_dir: Path | None = None) -> onnx.ModelProto:
        """Move ``model``'s large initializers into the file (in place) and return ``model``.

        Args:
            model: a graph whose initializers are inline, or external in another file (``base_dir``).
            base_dir: the folder ``model``'s own external data locations are relative to, if any.
        """
        here = base_dir is None or Path(base_dir).resolve() == self.path.parent.resolve()
        for tensor in model.graph.initializer:
            if tensor.data_type == TensorProto.STRING or (here and _already_here(tensor, self.path.name)):
                continue
            data = tensor_bytes(tensor, Path(base_dir or "."))
            if len(data) < MIN_EXTERNAL_BYTES:
                continue
            offset, length = self._stored(data)
            for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
                tensor.ClearField(field)
            del tensor.external_data[:]
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", self.path.name), ("offset", offset), ("length", length)):
                tensor.external_data.add(key=key, value=str(value))
        return model

    def resolvable(self) -> contextlib.chdir:
        """Return a context in which in-memory graphs pointing into the file can be checked and merged.

        ``onnx.checker.check_model`` (which ``onnx.compose.merge_models`` calls) resolves an in-memory
        graph's external data against the working directory; the file's folder is made that, for the block.
        """
        return contextlib.chdir(self.path.parent)

    def save(self, model: onnx.ModelProto, path: Path) -> Path:
        """Write ``model`` to ``path`` (in this file's folder) with its large initializers in the shared file."""
        if Path(path).parent.resolve() != self.path.parent.resolve():
            raise ValueError(f"{path}: a graph must lie beside its external data ({self.path.parent})")
        onnx.save(self.externalize(model), str(path))
        return Path(path)


def tensor_bytes(tensor: TensorProto, base_dir: Path) -> bytes:
    """Return the tensor's data as stored (little-endian), read from its external file when it has one.

    Read here, not through ``numpy_helper``: the onnx library refuses a data file with more than one hard
    link, which is what ``st-export --add`` gives the previous export's files while the new one is built.
    """
    if tensor.data_location != TensorProto.EXTERNAL:
        return numpy_helper.to_array(tensor).tobytes()
    info = {e.key: e.value for e in tensor.external_data}
    location = Path(info["location"])
    if location.is_absolute() or ".." in location.parts:
        raise ValueError(f"{tensor.name}: external data {location} is outside {base_dir}")
    with open(base_dir / location, "rb") as f:
        f.seek(int(info.get("offset", 0)))
        data = f.read(int(info["length"])) if "length" in info else f.read()
    return data


def _already_here(tensor: TensorProto, name: str) -> bool:
    return tensor.data_location == TensorProto.EXTERNAL and any(
        e.key == "location" and e.value == name for e in tensor.external_data)
