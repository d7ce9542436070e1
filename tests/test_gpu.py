"""GPU paths, run whenever a CUDA GPU is present and skipped with the reason otherwise.

* the reference (``ReferenceRunner(device="cuda")``) against ``model.onnx`` on the CPU;
* ``model.onnx`` on ONNX Runtime's CUDA provider (needs onnxruntime-gpu) against the reference;
* the benchmark's ``--device cuda`` path.

The tiny cased model is used so the test needs no bundled model on a GPU machine.
"""
from __future__ import annotations

import pytest

import exporter
from exporter.verify.parity import Thresholds, compare_embeddings, compare_tokens
from exporter.runtime.onnx import OnnxRunner
from exporter.verify.reference import ReferenceRunner

# GPU kernels (TF32 matmuls, fused attention) round differently from the CPU
GPU_THRESHOLDS = Thresholds(min_cosine=0.9999, max_abs_diff=1e-3)


def _torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.fixture(scope="module")
def cased_gpu_export(tiny_model, tmp_path_factory):
    if not _torch_cuda():
        pytest.skip("no CUDA GPU visible to torch")
    model = tiny_model("gpu_cased", vocab="cased", pooling=("mean", "cls"), dense=((16, "Tanh", True),))
    return model, exporter.export(model, tmp_path_factory.mktemp("gpu") / "out", targets="onnx", check=False)


@pytest.mark.gpu
def test_reference_on_cuda_matches_onnx_on_cpu(cased_gpu_export, corpus):
    model, result = cased_gpu_export
    reference = ReferenceRunner(model, device="cuda")
    onnx_cpu = OnnxRunner(result.out / "onnx/model.onnx")
    assert compare_tokens(reference, OnnxRunner(result.out / "onnx/tokenizer.onnx"), corpus).passed
    report = compare_embeddings(reference, onnx_cpu, corpus, thresholds=GPU_THRESHOLDS)
    assert report.passed, report.failures


@pytest.mark.gpu
def test_model_onnx_on_cuda_provider(cased_gpu_export, corpus):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu)")
    model, result = cased_gpu_export
    onnx_cuda = OnnxRunner(result.out / "onnx/model.onnx", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    report = compare_embeddings(ReferenceRunner(model, device="cpu"), onnx_cuda, corpus, thresholds=GPU_THRESHOLDS)
    assert report.passed, report.failures


@pytest.mark.gpu
def test_benchmark_cuda_path(cased_gpu_export, tmp_path):
    """``--device cuda``: torch fp32 (the reference) and fp16 on the GPU; ORT CUDA / TF GPU run or say why not."""
    import json

    from benchmarks.bench import main

    _, result = cased_gpu_export
    results = tmp_path / "results"
    assert main(["--export", str(result.out), "--device", "cuda", "--batch-sizes", "2", "--lengths", "short",
                 "--min-runs", "2", "--max-seconds", "0.1", "--results", str(results), "--no-plots"]) == 0
    (path,) = results.glob("*.json")
    report = json.loads(path.read_text())
    assert report["device"] == "cuda" and report["machine"]["gpu"]
    (cell,) = report["cells"]
    assert "median_s" in cell["results"]["sentence-transformers"]
    assert all(r["skipped"] or r["label"] in cell["results"] for r in report["runners"])
