"""The parity harness itself: retention (Spearman of pair similarities) and variant bars."""
from __future__ import annotations

import numpy as np

from exporter.verify.parity import Thresholds, compare_embeddings, retention


class ArrayRunner:
    """A runner returning fixed embeddings for known texts (the harness's behaviour, not a model's)."""

    def __init__(self, name: str, table: dict[str, np.ndarray]):
        self.name, self.table = name, table

    def encode(self, texts, batch_size=32):
        return np.stack([self.table[t] for t in texts]).astype(np.float32) if texts else np.zeros((0, 8), np.float32)


def _runners(seed: int = 0):
    rng = np.random.default_rng(seed)
    texts = [f"text {i}" for i in range(40)]
    base = rng.normal(size=(40, 8))
    reference = ArrayRunner("reference", dict(zip(texts, base, strict=True)))
    return texts, base, reference, rng


def test_retention_is_one_for_the_same_ranking_and_falls_when_it_is_scrambled():
    texts, base, reference, rng = _runners()
    assert retention(base, base * 3.0) == 1.0  # cosine ignores scale
    noisy = retention(base, base + rng.normal(scale=0.3, size=base.shape))
    shuffled = retention(base, base[rng.permutation(len(base))])
    assert 0.5 < noisy < 0.999 and abs(shuffled) < 0.2
    assert retention(base[:2], base[:2]) is None  # one pair: no ranking


def test_min_retention_is_a_bar_like_min_cosine():
    texts, base, reference, rng = _runners()
    noisy = ArrayRunner("noisy", dict(zip(texts, base + rng.normal(scale=0.3, size=base.shape), strict=True)))
    loose = compare_embeddings(reference, noisy, texts, thresholds=Thresholds(min_cosine=0.0, max_abs_diff=None))
    assert loose.passed and loose.retention is not None and loose.retention < 0.999
    strict = compare_embeddings(reference, noisy, texts,
                                thresholds=Thresholds(min_cosine=0.0, max_abs_diff=None, min_retention=0.999))
    assert not strict.passed and any("retention" in f for f in strict.failures)
    exact = compare_embeddings(reference, reference, texts)
    assert exact.passed and exact.retention == 1.0 and exact.min_cosine > 0.9999999


def test_zero_vectors_match_zero_vectors_and_fail_against_non_zero_ones():
    """A model that embeds texts as the zero vector: the same zero vector is a match (cosine 1, counted in the
    report), a non-zero vector against a zero one is not (cosine 0), and all-zero embeddings keep retention 1."""
    texts = [f"text {i}" for i in range(5)]
    zeros = ArrayRunner("zeros", {t: np.zeros(8) for t in texts})
    same = compare_embeddings(zeros, ArrayRunner("same zeros", {t: np.zeros(8) for t in texts}), texts)
    assert same.passed and same.min_cosine == 1.0 and same.max_abs_diff == 0.0
    assert same.zero_vectors == 5 and same.retention == 1.0
    ones = ArrayRunner("ones", {t: np.ones(8) for t in texts})
    off = compare_embeddings(zeros, ones, texts)
    assert not off.passed and off.min_cosine == 0.0 and "min cosine 0.0000000" in off.failures[0]
    assert compare_embeddings(ones, zeros, texts).min_cosine == 0.0


def test_a_model_with_all_zero_embeddings_exports_and_checks(tiny_model, tmp_path, capsys):
    """The probe's false failure: a model whose Dense weights are all zero embeds every text as 0; the export
    returns the same zeros (max abs diff 0) and must PASS, its table saying how many zero vectors it met."""
    from safetensors.numpy import load_file, save_file

    from exporter.cli import main

    model = tmp_path / "model"
    import shutil

    shutil.copytree(tiny_model("bert_dense_tanh", dense=((8, "Tanh", True),)), model)
    weights = next(model.glob("*_Dense/model.safetensors"))
    save_file({name: np.zeros_like(t) for name, t in load_file(weights).items()}, str(weights))
    code = main([str(model), "-o", str(tmp_path / "out"), "--targets", "onnx"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "zero vectors: 1 if equal" in out and "FAIL" not in out
