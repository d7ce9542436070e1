"""Bisect a mismatch: compare every stage (token ids, token embeddings, pooled, each head) to ST's."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..graphs.encoder import export_encoder, stage_names
from ..errors import UnsupportedModelError
from ..model import read_model
from ..runtime.onnx import OnnxRunner, ort_session
from .reference import ReferenceRunner


@dataclass
class StageDrift:
    stage: str
    max_abs_diff: float
    note: str = ""


def _reference_stages(reference: ReferenceRunner, tokens: dict[str, np.ndarray]) -> list[np.ndarray]:
    features = {name: torch.from_numpy(value) for name, value in tokens.items()}
    outputs = []
    with torch.no_grad():
        for index, module in enumerate(reference.model):
            features = module(features)
            key = "token_embeddings" if index == 0 else "sentence_embedding"
            outputs.append(features[key].detach().cpu().numpy().copy())
    return outputs


def drift_by_stage(model_dir: str | Path | None, texts: Sequence[str], *,
                   export_dir: str | Path | None = None, trust_remote_code: bool = False) -> list[StageDrift]:
    """Return the max abs difference of each stage between our graphs and SentenceTransformer.

    Both sides get the reference tokenizer's ids (the default prompt is not applied), so an
    encoder stage's drift is its own; with ``export_dir`` the in-graph tokenizer's ids are
    compared first.

    Args:
        model_dir: the source model (None: the bundled one).
        texts: the texts to run.
        export_dir: an export whose ``onnx/tokenizer.onnx`` is compared too.
        trust_remote_code: let the model's own modeling code run (as ``export(trust_remote_code=True)``).
    """
    spec = read_model(model_dir, trust_remote_code=trust_remote_code)
    if spec.kind == "static":
        raise UnsupportedModelError(["--stages: a static embedding has no stages to bisect (its table's mean is the "
                                     "embedding); st-export check compares its token ids and embeddings"])
    if spec.truncate_dim is not None:  # one stage per module: the reference's modules' outputs are not truncated
        spec = replace(spec, truncate_dim=None, embedding_dim=spec.source_dim)
    reference = ReferenceRunner(spec.path, trust_remote_code=spec.transformer.trust_remote_code)
    tokens = reference.tokenize(list(texts))
    tokens.setdefault("token_type_ids", np.zeros_like(tokens["input_ids"]))
    rows = []
    if export_dir is not None:
        got = OnnxRunner(Path(export_dir) / "onnx" / "tokenizer.onnx").tokenize(list(texts))
        same = all(got[k].shape == tokens[k].shape and np.array_equal(got[k], tokens[k]) for k in tokens)
        rows.append(StageDrift("token ids", 0.0 if same else float("inf"), "identical" if same else "differ"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "encoder_stages.onnx"
        export_encoder(spec, path, stages=True)
        ours = ort_session(path).run(None, tokens)
    for name, got, expected in zip(stage_names(spec), ours, _reference_stages(reference, tokens), strict=True):
        rows.append(StageDrift(name, float(np.abs(got - expected).max()) if got.size else 0.0))
    return rows
