"""GPU paths: the reference on CUDA and model.onnx on ONNX Runtime's CUDA provider, when a GPU is here."""
from __future__ import annotations

import pytest

from exporter.parity import Thresholds, compare_embeddings
from exporter.runners import OnnxRunner


def _cuda_reason() -> str | None:
    import onnxruntime as ort
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    return None


@pytest.mark.gpu
def test_string_model_on_cuda_matches_reference(bundled_export, corpus):
    reason = _cuda_reason()
    if reason:
        pytest.skip(reason)
    from exporter.model import default_model_path
    from exporter.runners import ReferenceRunner

    reference = ReferenceRunner(default_model_path(), device="cuda")
    model = OnnxRunner(bundled_export.out / "onnx/model.onnx",
                       providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    # GPU kernels (TF32, fused attention) round differently: the bar is cosine, at 1e-4 abs
    report = compare_embeddings(reference, model, corpus, thresholds=Thresholds(0.9999, 1e-4))
    assert report.passed, report.failures
