"""Architectures whose position ids start after the padding index (MPNet, XLM-RoBERTa, RoBERTa: ``position_offset`` 2).

Their position ids skip pad tokens, computed from ``input_ids`` inside the model: a short text
padded next to a long one must keep the embedding it has alone.
"""
from __future__ import annotations

import numpy as np
import pytest

from exporter.runtime.onnx import OnnxRunner


@pytest.mark.parametrize("fixture", ["mpnet_export", "xlmr_export", "roberta_export"])
def test_padded_batch_embeds_like_one_text(fixture, request):
    export = request.getfixturevalue(fixture)
    runner = OnnxRunner(export.out / "onnx/model.onnx")
    texts = ["a short text", "a much longer text, ja, viel länger " * 5]
    together = runner.encode(texts)
    alone = np.concatenate([runner.encode([t]) for t in texts])
    assert np.abs(together - alone).max() < 1e-6
