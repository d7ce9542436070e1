"""FLOPs of one workload, counted from the model: every MatMul / Gemm of ``encoder.onnx`` at the real shapes.

ONNX Runtime's profiler records each node's input and output shapes for the batch actually run
(padded to the longest text, as every runner pads), so the count needs no formula per
architecture: a product [.., M, K] × [K, N] is 2·M·K·N FLOPs. Embedding look-ups, LayerNorm,
softmax and pooling are left out (a few percent of the total for a BERT).
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

MATMUL_OPS = {"MatMul", "FusedMatMul", "Gemm", "MatMulInteger", "DynamicQuantizeMatMul"}


def _shape(entry: list[dict[str, list[int]]], index: int) -> list[int]:
    return next(iter(entry[index].values()))


def matmul_flops(encoder: Path, feeds: dict[str, np.ndarray]) -> int:
    """Return the FLOPs of every matrix product in one run of ``encoder`` on ``feeds``."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "flops")
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(str(encoder), options, providers=["CPUExecutionProvider"])
        session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    total = 0
    for event in events:
        args = event.get("args", {})
        if event.get("cat") != "Node" or args.get("op_name") not in MATMUL_OPS or not event["name"].endswith(
                "_kernel_time"):
            continue
        inner = _shape(args["input_type_shape"], 0)[-1]
        total += 2 * math.prod(_shape(args["output_type_shape"], 0)) * inner
    return total
