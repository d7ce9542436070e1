"""Weight-only int8 / int4 for any graph: each MatMul with a constant 2-D weight becomes ``MatMulNBits``.

``MatMulNBits`` (ONNX Runtime, domain ``com.microsoft``) holds the weight in blocks of
``block_size`` values along K, each block with its own fp32 scale, and dequantizes nothing up
front: with ``accuracy_level=4`` the kernel quantizes the activations to int8 per block of
``block_size`` inside the call (a scale per row and block, finer than per token) and runs an
int8 × int8 dot product. So no separate ops compute activation scales (the per-token ops around
``DynamicQuantizeMatMul`` in ``quantize_int8.py``), and no calibration is needed: the weights
alone decide the graph.

The pass is architecture-agnostic: it looks only for ``MatMul`` nodes whose second input is a
2-D fp32 initializer, so an encoder's and a decoder's projections are rewritten alike. A graph
past 2 GB (its weights in ``model.onnx.data``) is passed loaded without its external data
(``onnx.load(path, load_external_data=False)``) with ``base_dir``, its folder: each weight is
read from the data file as it is quantized, the other tensors keep pointing into the file, and
the whole model is never held in memory. A weight whose data is external with no ``base_dir``
is refused by name (:class:`WeightsNotLoaded`).

Weights are symmetric per block (no zero points: the kernel's default zero point is
``2**(bits-1)``): 4 bits in [-8, 7] with the scale mapping the block's largest magnitude to -8
or 7 as its sign says, 8 bits in [-127, 127].
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .quantize_int8 import MICROSOFT, with_nodes_replaced

#: MatMulNBits's accuracy level 4: int8 activations (quantized per block inside the kernel), int32 accumulation
INT8_ACTIVATIONS = 4


class WeightsNotLoaded(ValueError):
    """A MatMul weight's data lives in an external file that was not loaded with the model."""


@dataclass(frozen=True)
class NBitsResult:
    """The rewritten graph and how it was made (recorded in the manifest)."""

    model: onnx.ModelProto
    quantized: list[str]
    bits: int
    block_size: int
    accuracy_level: int

    def describe(self) -> dict[str, object]:
        return {"recipe": f"weight-only {self.bits}-bit (MatMulNBits, symmetric, block {self.block_size} along K, "
                          f"accuracy_level {self.accuracy_level}: int8 activations quantized per block in the kernel)",
                "quantized_matmuls": len(self.quantized)}


def blockwise(w: np.ndarray, *, bits: int, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (packed uint8 blob [N, blocks, block_size * bits / 8], fp32 scales [N, blocks]) of ``w`` [K, N].

    The packing is MatMulNBits's: the weight transposed to [N, K], K padded with zeros to whole blocks,
    values stored as ``q + 2**(bits-1)``; at 4 bits the even k is the low nibble.
    """
    k, n = w.shape
    blocks = -(-k // block_size)
    padded = np.zeros((n, blocks * block_size), np.float32)
    padded[:, :k] = w.T
    grouped = padded.reshape(n, blocks, block_size)
    if bits == 4:
        # the signed extreme of each block maps to -8: the whole [-8, 7] range is used
        extreme = np.take_along_axis(grouped, np.abs(grouped).argmax(axis=2)[..., None], axis=2)[..., 0]
        scales = extreme / -8.0
        low, high = -8, 7
    else:
        scales = np.abs(grouped).max(axis=2) / 127.0
        low, high = -127, 127
    scales[scales == 0] = 1.0
    q = np.clip(np.round(grouped / scales[..., None]), low, high).astype(np.int32) + 2 ** (bits - 1)
    q = q.astype(np.uint8)
    if bits == 4:
        q = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    return q, scales.astype(np.float32)


def dequantized(blob: np.ndarray, scales: np.ndarray, *, bits: int, k: int) -> np.ndarray:
    """Return the [K, N] fp32 weight ``blob`` and ``scales`` stand for (the inverse of :func:`blockwise`)."""
    if bits == 4:
        blob = np.stack([blob & 0x0F, blob >> 4], axis=-1).reshape(*blob.shape[:2], -1)
    values = (blob.astype(np.float32) - 2 ** (bits - 1)) * scales[..., None]
    return values.reshape(values.shape[0], -1)[:, :k].T


def _constant_weights(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {i.name: i for i in model.graph.initializer if len(i.dims) == 2 and i.data_type == onnx.TensorProto.FLOAT}


def quantizable(model: onnx.ModelProto, *, skip_prefix: str = "") -> list[str]:
    """Return the names of MatMul nodes with a constant 2-D fp32 weight (graph order), any architecture."""
    weights = _constant_weights(model)
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights
            and not (skip_prefix and n.name.startswith(skip_prefix))]


def _weight(tensor: onnx.TensorProto, node: str, base_dir: Path | None) -> np.ndarray:
    from .shared_weights import tensor_bytes

    if tensor.data_location != onnx.TensorProto.EXTERNAL:
        return numpy_helper.to_array(tensor).astype(np.float32)
    if base_dir is None:
        raise WeightsNotLoaded(f"MatMul {node!r}: its weight {tensor.name!r} is in external data that was not "
                               "loaded; pass base_dir (the folder of the .data file) or load the model with it")
    return np.frombuffer(tensor_bytes(tensor, base_dir), np.float32).reshape(tuple(tensor.dims))


def quantize_nbits(model: onnx.ModelProto, nodes: list[str], *, bits: int, block_size: int,
                   accuracy_level: int = INT8_ACTIVATIONS, base_dir: Path | None = None) -> NBitsResult:
    """Return ``model`` with each of ``nodes`` (MatMuls with a constant weight) as ``MatMulNBits``.

    Args:
        model: any fp32 graph; external data must be loaded (see the module's docstring).
        nodes: MatMul node names (see :func:`quantizable`).
        bits: 4 or 8.
        block_size: values per block along K (a power of 2, ≥ 16).
        accuracy_level: MatMulNBits's ``accuracy_level`` (4: int8 activations).
        base_dir: the folder of the model's external data, when it was loaded without it.

    Raises:
        ValueError: bits or block_size the kernel does not take.
        WeightsNotLoaded: a weight's external data is absent.
    """
    if bits not in (4, 8):
        raise ValueError(f"bits {bits}: MatMulNBits here takes 4 or 8")
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"block_size {block_size}: a power of 2, at least 16")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    weights = _constant_weights(out)
    chosen = set(nodes)
    rewritten, added = [], []
    for node in graph.node:
        if node.name not in chosen:
            rewritten.append(node)
            continue
        w = _weight(weights[node.input[1]], node.name, base_dir)
        blob, scales = blockwise(w, bits=bits, block_size=block_size)
        prefix = f"nbits/{node.name.strip('/').replace('/', '_')}"
        added += [numpy_helper.from_array(blob, f"{prefix}/weight"), numpy_helper.from_array(scales, f"{prefix}/scale")]
        rewritten.append(helper.make_node("MatMulNBits", [node.input[0], f"{prefix}/weight", f"{prefix}/scale"],
                                          list(node.output), name=f"{prefix}/matmul", domain=MICROSOFT,
                                          K=w.shape[0], N=w.shape[1], bits=bits, block_size=block_size,
                                          accuracy_level=accuracy_level))
    with_nodes_replaced(out, rewritten, added)
    return NBitsResult(out, list(nodes), bits, block_size, accuracy_level)
