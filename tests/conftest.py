"""Shared fixtures: the bundled model's export (once per session) and tiny models built offline."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

import exporter  # noqa: E402
from exporter.verify.corpus import parity_texts  # noqa: E402
from exporter.model import default_model_path  # noqa: E402
from exporter.verify.reference import ReferenceRunner  # noqa: E402


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return parity_texts()


@pytest.fixture(scope="session")
def bundled_export(tmp_path_factory) -> exporter.ExportResult:
    out = tmp_path_factory.mktemp("bundled") / "export"
    return exporter.export(None, out)  # every target, as `make export` does


@pytest.fixture(scope="session")
def bundled_reference() -> ReferenceRunner:
    return ReferenceRunner(default_model_path())


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Return build(name, **options) → model dir, building each distinct model once."""
    from model_factory import build_model

    built: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("tiny")

    def build(name: str, **options) -> Path:
        if name not in built:
            built[name] = build_model(root / name, **options)
        return built[name]

    return build


@pytest.fixture(scope="session")
def mpnet_export(tiny_model, tmp_path_factory) -> exporter.ExportResult:
    """A tiny MPNet (all-mpnet-base-v2's tokenizer layout, tokenizer.json with its fixed 128 padding)
    exported to every target with every variant, as ``st-export MPNET_DIR -o OUT`` does."""
    model = tiny_model("mpnet_v6", arch="mpnet", tokenizer_json_limits=128)
    return exporter.export(model, tmp_path_factory.mktemp("mpnet") / "export")


#: the tiny XLM-R of tests/test_xlmr.py and tests/test_tiny_models.py: CLS and mean pooling, Dense, Normalize
XLMR_OPTIONS = dict(arch="xlm-roberta", pooling=("cls", "mean"), dense=((16, "Tanh", True),))


@pytest.fixture(scope="session")
def xlmr_export(tiny_model, tmp_path_factory) -> exporter.ExportResult:
    """A tiny XLM-RoBERTa (random weights, multilingual-e5-small's real 250,002-piece SentencePiece Unigram
    tokenizer) exported to every target with every variant, as ``st-export XLMR_DIR -o OUT`` does."""
    model = tiny_model("xlmr_cls_mean_dense_norm", **XLMR_OPTIONS)
    return exporter.export(model, tmp_path_factory.mktemp("xlmr") / "export")


#: the tiny RoBERTa of tests/test_roberta.py and tests/test_tiny_models.py: mean pooling and Normalize, as
#: all-distilroberta-v1
ROBERTA_OPTIONS = dict(arch="roberta", pooling=("mean",))


@pytest.fixture(scope="session")
def roberta_export(tiny_model, tmp_path_factory) -> exporter.ExportResult:
    """A tiny RoBERTa (random weights, a byte-level BPE trained here) exported as ``st-export ROBERTA_DIR -o OUT``
    does: every target this tokenizer runs on (TFLite is left out and named), every variant."""
    model = tiny_model("roberta_mean_norm", **ROBERTA_OPTIONS)
    return exporter.export(model, tmp_path_factory.mktemp("roberta") / "export")


@pytest.fixture
def copy_of(tiny_model, tmp_path):
    """Return make(name, **options) → a fresh copy of a tiny model in ``tmp_path / "model"``, to damage."""
    def make(name="bert_uncased_mean_norm", **options):
        target = tmp_path / "model"
        shutil.copytree(tiny_model(name, **options), target)
        return target
    return make
