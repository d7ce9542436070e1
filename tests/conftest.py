"""Shared fixtures: the bundled model's export (once per session) and tiny models built offline.

``make test`` runs the suite on two pytest-xdist workers (one file per worker at a time, but for the parts
:func:`pytest_collection_modifyitems` splits off; each worker on its share of the cores). What a session
fixture builds (a tiny model, an export of minutes) is built once per run, by the first worker that asks,
in a folder both workers see (:func:`once_per_run`), inside the controller's temp folder, which pytest removes
after a passing run with the workers' own.
"""
from __future__ import annotations

import os
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from filelock import FileLock

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))


def _threads_per_worker() -> int | None:
    """Return each xdist worker's share of the cores (None outside xdist, or with one worker).

    torch, TensorFlow and ONNX Runtime each default to a thread per core: two workers on two cores ran four
    threads that preempt each other (ONNX Runtime's spin while they wait), for tiny models a thread pool does not
    speed up anyway.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None


def _limit_threads(threads: int) -> None:
    """Run torch (OpenMP), TensorFlow and ONNX Runtime sessions made without a thread count on ``threads`` threads;
    subprocesses inherit the environment."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(name, str(threads))
    import onnxruntime as ort

    create = ort.InferenceSession.__init__

    def init(self, path_or_bytes, sess_options=None, *args, **kwargs):
        options = sess_options if sess_options is not None else ort.SessionOptions()
        if not options.intra_op_num_threads:  # 0: ONNX Runtime's default, a thread per core; a count given stays
            options.intra_op_num_threads = threads
        create(self, path_or_bytes, options, *args, **kwargs)

    ort.InferenceSession.__init__ = init


if _threads_per_worker():
    _limit_threads(_threads_per_worker())

import exporter  # noqa: E402
from exporter.verify.corpus import parity_texts  # noqa: E402
from exporter.model import default_model_path  # noqa: E402
from exporter.runtime.runners import DEFAULT_BATCH_SIZE  # noqa: E402
from exporter.verify.reference import ReferenceRunner  # noqa: E402


SHARED = "shared-by-workers"


def _shared_root(tmp_path_factory) -> Path | None:
    """Return the folder every xdist worker of this run sees (None when the suite runs in one process)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    root = tmp_path_factory.getbasetemp().parent / SHARED  # the controller's basetemp: workers' are inside it
    root.mkdir(exist_ok=True)
    return root


def once_per_run(tmp_path_factory, name: str, build: Callable[[Path], Any]) -> Any:
    """Return ``build(folder)`` computed once in this test run, whichever worker asks first; the others wait
    for it and read its result (pickled) instead of building it again."""
    root = _shared_root(tmp_path_factory)
    if root is None:
        return build(tmp_path_factory.mktemp(name))
    with FileLock(str(root / f"{name}.lock")):
        done = root / f"{name}.pickle"
        if done.exists():
            return pickle.loads(done.read_bytes())
        folder = root / name
        shutil.rmtree(folder, ignore_errors=True)  # a worker that failed building it left it half-written
        folder.mkdir()
        result = build(folder)
        done.write_bytes(pickle.dumps(result))
        return result


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return parity_texts()


@pytest.fixture(scope="session")
def bundled_export(tmp_path_factory) -> exporter.ExportResult:
    return once_per_run(tmp_path_factory, "bundled",
                        lambda folder: exporter.export(None, folder / "export"))  # every target, as `make export` does


def encoding_once(runner: ReferenceRunner) -> ReferenceRunner:
    """Return ``runner`` with ``encode`` computed once per (texts, batch_size) in this process and copied out after.

    SentenceTransformer.encode on the CPU gives the same floats for the same batches: six files compare their
    artifacts with the bundled model's embeddings of the same corpus, eight times, ~9 s of CPU each.
    """
    encode, done = runner.encode, {}

    def encode_once(texts, batch_size=DEFAULT_BATCH_SIZE):
        if not (isinstance(texts, list) and all(isinstance(text, str) for text in texts)):
            return encode(texts, batch_size)  # what encode refuses is refused each time
        key = (tuple(texts), batch_size)
        if key not in done:
            done[key] = encode(texts, batch_size)
        return done[key].copy()

    runner.encode = encode_once
    return runner


@pytest.fixture(scope="session")
def bundled_reference() -> ReferenceRunner:
    return encoding_once(ReferenceRunner(default_model_path()))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Return build(name, **options) → model dir, building each distinct model once."""
    from model_factory import build_model

    built: dict[str, Path] = {}

    def build(name: str, **options) -> Path:
        if name not in built:
            built[name] = once_per_run(tmp_path_factory, f"tiny-{name}",
                                       lambda folder: build_model(folder / name, **options))
        return built[name]

    return build


@pytest.fixture(scope="session")
def mpnet_export(tiny_model, tmp_path_factory) -> exporter.ExportResult:
    """A tiny MPNet (all-mpnet-base-v2's tokenizer layout, tokenizer.json with its fixed 128 padding)
    exported to every target with every variant, as ``st-export MPNET_DIR -o OUT`` does."""
    model = tiny_model("mpnet_v6", arch="mpnet", tokenizer_json_limits=128)
    return once_per_run(tmp_path_factory, "mpnet", lambda folder: exporter.export(model, folder / "export"))


#: the tiny XLM-R of tests/test_xlmr.py and tests/test_tiny_models.py: CLS and mean pooling, Dense, Normalize
XLMR_OPTIONS = dict(arch="xlm-roberta", pooling=("cls", "mean"), dense=((16, "Tanh", True),))


@pytest.fixture(scope="session")
def xlmr_export(tiny_model, tmp_path_factory) -> exporter.ExportResult:
    """A tiny XLM-RoBERTa (random weights, multilingual-e5-small's real 250,002-piece SentencePiece Unigram
    tokenizer) exported to every target with every variant, as ``st-export XLMR_DIR -o OUT`` does."""
    model = tiny_model("xlmr_cls_mean_dense_norm", **XLMR_OPTIONS)
    return once_per_run(tmp_path_factory, "xlmr", lambda folder: exporter.export(model, folder / "export"))


#: the tiny RoBERTa of tests/test_roberta.py and tests/test_tiny_models.py: mean pooling and Normalize, as
#: all-distilroberta-v1
ROBERTA_OPTIONS = dict(arch="roberta", pooling=("mean",))
#: the tiny ModernBERT of tests/test_modernbert.py and tests/test_tiny_models.py: CLS and mean pooling, Normalize
MODERNBERT_OPTIONS = dict(arch="modernbert", pooling=("cls", "mean"))
#: the tiny gte-multilingual of tests/test_gte.py and tests/test_tiny_models.py: XLM-R's Unigram, CLS, Normalize
GTE_OPTIONS = dict(arch="gte", pooling=("cls",))


@pytest.fixture(scope="session")
def roberta_export(tiny_model, tmp_path_factory) -> exporter.ExportResult:
    """A tiny RoBERTa (random weights, a byte-level BPE trained here) exported as ``st-export ROBERTA_DIR -o OUT``
    does: every target this tokenizer runs on (TFLite is left out and named), every variant."""
    model = tiny_model("roberta_mean_norm", **ROBERTA_OPTIONS)
    return once_per_run(tmp_path_factory, "roberta", lambda folder: exporter.export(model, folder / "export"))


#: the tiny EmbeddingGemma of tests/test_gemma.py and tests/test_tiny_models.py: EmbeddingGemma-300m's modules
#: (mean pooling, Dense up 4x and back down, identity, no bias, Normalize) and its named prompts
GEMMA_OPTIONS = dict(arch="gemma3_text", pooling=("mean",), dense=((128, "Identity", False), (32, "Identity", False)),
                     prompts={"query": "task: search result | query: ", "document": "title: none | text: "})


@pytest.fixture(scope="session")
def gemma_export(tiny_model, tmp_path_factory) -> exporter.ExportResult:
    """A tiny EmbeddingGemma (random weights, a SentencePiece BPE with byte fallback trained here) exported to the
    targets that build its graphs themselves (TFLite is refused by name; Triton and TF Serving package these same
    graphs: tests/test_roberta.py proves them on the same kernels), with every variant."""
    model = tiny_model("gemma3_text_mean_dense_norm", **GEMMA_OPTIONS)
    return once_per_run(tmp_path_factory, "gemma",
                        lambda folder: exporter.export(model, folder / "export", targets="onnx,savedmodel"))
#: Qwen3-Embedding-0.6B's query instruction (its config_sentence_transformers.json "prompts"; no default prompt)
QWEN3_QUERY_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
#: the tiny Qwen3 decoder of tests/test_qwen3.py and tests/test_tiny_models.py, laid out as Qwen3-Embedding: last-token
#: pooling, Normalize, the tokenizer padding on the left, a "query" prompt and an empty "document" one; the bundled
#: WordPiece vocabulary (Qwen2's BPE is the bpe family's), so that every target, TFLite included, runs it
QWEN3_OPTIONS = dict(arch="qwen3", pooling=("lasttoken",), padding_side="left",
                     prompts={"query": QWEN3_QUERY_PROMPT, "document": ""})


@pytest.fixture(scope="session")
def qwen3_export(tiny_model, tmp_path_factory) -> exporter.ExportResult:
    """The tiny Qwen3 exported to every target with every variant, as ``st-export QWEN3_DIR -o OUT`` does."""
    model = tiny_model("qwen3_lasttoken_left_padded_prompts", **QWEN3_OPTIONS)
    return once_per_run(tmp_path_factory, "qwen3", lambda folder: exporter.export(model, folder / "export"))


#: the tiny CrossEncoders of tests/test_reranker.py and tests/test_reranker_serving.py, one per vocabulary (the
#: bundled MiniLM WordPiece, multilingual-e5-small's Unigram, the trained byte-level BPE): family → (architecture,
#: labels, how it is saved, activation_fn recorded): one label (rank) and three (predict only), both layouts; the
#: plain folder of bpe records Tanh in config.json, as CrossEncoders before 5 did
RERANKER_FAMILIES = {"wordpiece": ("bert", 1, "v6", None), "unigram": ("xlm-roberta", 3, "hf", None),
                     "bpe": ("roberta", 1, "hf", "torch.nn.modules.activation.Tanh")}
#: the served model name of the reranker exports' triton and tfserving layouts
RERANKER_NAME = "reranker"


@pytest.fixture(scope="session")
def reranker_exports(tmp_path_factory):
    """Return export(family) → (family, model folder, ExportResult): a tiny CrossEncoder exported once per run with
    the default targets (every target the family can hold; RoBERTa/BPE has no TFLite kernel), no variants."""
    from model_factory import build_cross_encoder

    done = {}

    def build(family: str, folder: Path):
        arch, labels, fmt, activation = RERANKER_FAMILIES[family]
        model = build_cross_encoder(folder / "model", arch=arch, num_labels=labels, fmt=fmt, activation=activation)
        return family, model, exporter.export(model, folder / "export", variants=False,
                                              options={"name": RERANKER_NAME})

    def export(family: str):
        if family not in done:
            done[family] = once_per_run(tmp_path_factory, f"reranker-{family}",
                                        lambda folder: build(family, folder))
        return done[family]

    return export


@pytest.fixture
def copy_of(tiny_model, tmp_path):
    """Return make(name, **options) → a fresh copy of a tiny model in ``tmp_path / "model"``, to damage."""
    def make(name="bert_uncased_mean_norm", **options):
        target = tmp_path / "model"
        shutil.copytree(tiny_model(name, **options), target)
        return target
    return make



#: test functions whose cases are independent exports (what they share is built once per run, :func:`once_per_run`):
#: each case is a work unit of its own
SPLIT_BY_CASE = {"tests/test_tiny_models.py::test_tiny_model_parity",
                 "tests/test_qwen3.py::test_qwen3_embedding_as_shipped_with_its_own_tokenizer_passes_on_onnx"}
#: files whose module-scoped fixture is parametrized by model, the first part of each test's id: a work unit per
#: model, so the fixture is still set up once per model, on the worker that runs that model's tests
SPLIT_BY_MODEL = {"tests/test_bpe_variants.py", "tests/test_reranker_serving.py"}


def work_unit(nodeid: str) -> str:
    """Return the work unit of a test: its file (as ``--dist loadfile``), or a part of it (SPLIT_BY_*)."""
    path, _, name = nodeid.partition("::")
    function, _, params = name.partition("[")
    if f"{path}::{function}" in SPLIT_BY_CASE:
        return nodeid
    if path in SPLIT_BY_MODEL and params:
        return f"{path}::{params.rstrip(']').split('-')[0]}"
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Return ``make test``'s scheduler for ``--dist loadfile``: a file is one work unit, as loadfile's (its module
    fixtures are set up once), but for the parts :func:`work_unit` splits off, so that the minute-long cases of
    one file run on both workers. xdist hands out the units with the most tests first: the single cases fill the
    end of the run on whichever worker is free. (``--dist loadgroup`` cannot group here: xdist 3.8 renames a
    test to group it, which pytest 9's ids no longer allow.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return WorkUnits(config, log)
