"""The int8 routes of issue 26 on one model: quality against sentence-transformers, speed against it in the same run.

    python -m benchmarks.int8_routes --export OUT [--model MODEL_DIR] [--reps 12]

OUT is an onnx export (its tokenizer.onnx and encoder.onnx are used). Each route is an encoder graph
(ids → embedding) built here; a call is tokenizer.onnx + the route, timed in turns with
``SentenceTransformer.encode`` at b1 short and b32 medium texts (benchmarks/workloads.py). Quality is the
min cosine and retention on the parity corpus at batch 32. Writes
``benchmarks/results/int8-routes-<machine>-<date>.json`` with the machine (ISA flags, ORT version) and the
load average. A script, not a test: it needs minutes.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from . import machine
from .bench import RESULTS
from .workloads import Cell, WorkloadBuilder

#: (bits, block size, graph) of the MatMulNBits routes measured
NBITS_ROUTES = ((8, 32, "optimized"), (8, 128, "optimized"), (4, 32, "optimized"), (4, 128, "optimized"),
                (8, 32, "plain"), (4, 32, "plain"))


def _graphs(spec: Any, feeds: list[dict[str, np.ndarray]], folder: Path) -> dict[str, Path]:
    """Return route name → the route's encoder file (written into ``folder``)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from exporter.graphs import quantize_int8 as q8
    from exporter.graphs import quantize_nbits as qn
    from exporter.graphs.encoder_fused import fused_encoder

    def saved(model: onnx.ModelProto, name: str) -> Path:
        onnx.save(model, str(folder / f"{name}.onnx"))
        return folder / f"{name}.onnx"

    optimized, _ = fused_encoder(spec, opset=20)
    plain, _ = fused_encoder(spec, opset=20, attention=False, skip_layer_norm=False)
    attention, _ = fused_encoder(spec, opset=20, attention=True, skip_layer_norm=False)
    routes = {"fp32 optimized": saved(optimized, "optimized")}
    int8 = q8.quantize_int8(plain, q8.quantizable(plain, skip_prefix="head/"), feeds, target_cosine=0.992)
    routes["int8 (model_int8.onnx: per-token DynamicQuantizeMatMul)"] = saved(int8.model, "int8")
    fused = q8.quantize_int8(attention, q8.quantizable(attention, skip_prefix="head/"), feeds, target_cosine=0.992)
    routes["a1 fused Attention (fp32 QKV) + per-token int8 on the other MatMuls"] = saved(fused.model, "int8_attention")
    quantize_dynamic(str(routes["fp32 optimized"]), str(folder / "optimized_qd.onnx"), weight_type=QuantType.QInt8,
                     per_channel=True, reduce_range=True, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    routes["a2 optimized, then ORT quantize_dynamic (per-tensor activations, QAttention)"] = folder / "optimized_qd.onnx"
    for bits, block, graph_name in NBITS_ROUTES:
        graph = optimized if graph_name == "optimized" else plain
        result = qn.quantize_nbits(graph, qn.quantizable(graph, skip_prefix="head/"), bits=bits, block_size=block)
        routes[f"b MatMulNBits {bits}-bit block {block} acc4 on {graph_name}"] = saved(
            result.model, f"nbits{bits}_{block}_{graph_name}")
    return routes


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as ort
    from transformers import AutoTokenizer

    from exporter.model import read_model
    from exporter.runtime.onnx import OnnxRunner
    from exporter.verify.corpus import calibration_texts, parity_texts
    from exporter.verify.parity import retention
    from exporter.verify.reference import ReferenceRunner

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", required=True)
    parser.add_argument("--model", default=None, help="default: the bundled all-MiniLM-L6-v2")
    parser.add_argument("--reps", type=int, default=12, help="timed turns per cell")
    args = parser.parse_args(argv)
    spec = read_model(args.model)
    tokenizer = OnnxRunner(Path(args.export) / "onnx" / "tokenizer.onnx")
    calibration = calibration_texts()
    feeds = [tokenizer.tokenize(calibration[i:i + 16]) for i in range(0, len(calibration), 16)]
    reference = ReferenceRunner(spec.path)
    texts = parity_texts()
    want = reference.encode(texts)
    hf = AutoTokenizer.from_pretrained(str(spec.path))
    workloads = WorkloadBuilder(lambda batch: [len(ids) for ids in hf(batch)["input_ids"]], 256)
    with tempfile.TemporaryDirectory() as tmp:
        routes = {"fp32 encoder.onnx": Path(args.export) / "onnx" / "encoder.onnx", **_graphs(spec, feeds, Path(tmp))}
        options = ort.SessionOptions()
        options.log_severity_level = 3
        sessions = {name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    for name, path in routes.items()}

    def run(session: Any, batch: list[str]) -> np.ndarray:
        names = {i.name for i in session.get_inputs()}
        return session.run(None, {k: v for k, v in tokenizer.tokenize(batch).items() if k in names})[0]

    results: dict[str, dict[str, Any]] = {}
    for name, session in sessions.items():
        got = np.concatenate([run(session, texts[i:i + 32]) for i in range(0, len(texts), 32)])
        a, b = got.astype(np.float64), want.astype(np.float64)
        cosines = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        results[name] = {"min_cosine": float(cosines.min()), "retention": retention(want, got)}
        print(f"{name}: min cosine {cosines.min():.5f}, retention {results[name]['retention']:.5f}", flush=True)
    loads = []
    for cell in (Cell("short", 1), Cell("medium", 32)):
        batch = workloads.texts(cell)
        times: dict[str, list[float]] = {"reference": [], **{name: [] for name in sessions}}
        for turn in range(args.reps + 2):
            for name, call in [("reference", reference.encode)] + [(n, lambda t, s=s: run(s, t))
                                                                     for n, s in sessions.items()]:
                start = time.perf_counter()
                call(batch)
                if turn >= 2:  # two warm-up turns
                    times[name].append(time.perf_counter() - start)
        loads.append(os.getloadavg())
        reference_s = float(np.median(times["reference"]))
        for name in sessions:
            results[name][f"b{cell.batch} {cell.length}"] = {"median_ms": round(1e3 * float(np.median(times[name])), 2),
                                                             "ratio": round(reference_s / np.median(times[name]), 3)}
        print(f"b{cell.batch} {cell.length}: reference {1e3 * reference_s:.1f} ms, load {loads[-1]}", flush=True)
    info = machine.describe()
    out = RESULTS / f"int8-routes-{machine.slug(info, 'cpu')}-{datetime.date.today().isoformat()}.json"
    out.write_text(json.dumps({"machine": info, "load_averages": loads, "routes": results}, indent=1) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
