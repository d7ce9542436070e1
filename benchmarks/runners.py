"""Which runners a benchmark run has, and how a worker process builds one.

Discovery is generic: the reference, then for every target in the export's manifest its
``runners(out)["model"]``, its ``"tokenizer"`` (timed alone for the tokenizer's share) and every
``variants(out)``. Runners that exist only here: ``encoder.onnx`` with the HF tokenizer outside
(what the in-graph tokenizer costs) and, with ``--device cuda``, torch fp16, ONNX Runtime's CUDA
provider (fp32, fp16) and TensorFlow on the GPU. A runner that cannot run carries its reason.

A reranker export (manifest kind "reranker") gets the same discovery with ``CrossEncoder.predict`` as
the reference; its runners take [query, document] pairs (roles "score" and "tokenize-pairs").
"""
from __future__ import annotations

import gc
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from exporter.runtime.runners import DEFAULT_BATCH_SIZE, in_batches

REFERENCE = "sentence-transformers"
#: the reference of a reranker export (manifest kind "reranker")
RERANK_REFERENCE = "CrossEncoder.predict"


@dataclass
class RunnerSpec:
    """A runner a worker process can build from plain data."""

    label: str
    kind: str  # reference | model | variant | tokenizer | encoder+hf | ort-cuda | savedmodel-cuda | peer
    #: encode | tokenize (texts); score | tokenize-pairs (a reranker's [query, document] pairs)
    role: str = "encode"
    device: str = "cpu"
    precision: str = "fp32"
    target: str | None = None
    variant: str | None = None
    file: str | None = None
    #: the tokenizer runner whose time is this runner's tokenizer share
    tokenizer: str | None = None
    thresholds: dict[str, Any] | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _precision(name: str) -> str:
    return next((p for p in ("int8", "fp16", "bf16", "int4") if p in name), "fp32")


def _thresholds(value: Any) -> dict[str, Any]:
    return {k: getattr(value, k) for k in ("min_cosine", "max_abs_diff", "min_retention")}


def is_reranker(manifest: dict[str, Any]) -> bool:
    return manifest.get("kind") == "reranker"


def cpu_specs(export: Path, manifest: dict[str, Any]) -> list[RunnerSpec]:
    """Return the CPU runners: reference, every target's model / tokenizer / variants, encoder + HF.

    For a reranker export the reference is ``CrossEncoder.predict`` and every runner but the tokenizers
    scores (query, document) pairs (role "score").
    """
    from exporter.verify.parity import Thresholds
    from targets import resolve

    rerank = is_reranker(manifest)
    role = "score" if rerank else "encode"
    specs = [RunnerSpec(RERANK_REFERENCE, "reference", role=role, notes=["CrossEncoder.predict, torch fp32"])
             if rerank else RunnerSpec(REFERENCE, "reference", notes=["SentenceTransformer.encode, torch fp32"])]
    for target in resolve(list(manifest["targets"])):
        if target.layout_of:
            specs.append(RunnerSpec(target.name, "model", target=target.name,
                                    skipped=f"the {target.layout_of} target's files in another layout: timed as "
                                            f"{target.layout_of}"))
            continue
        try:
            runners = target.runners(export)
            variants = target.variants(export)
        except Exception as exc:  # noqa: BLE001 - any failure to open an artifact is a reason to skip it
            specs.append(RunnerSpec(target.name, "model", target=target.name, skipped=f"{type(exc).__name__}: {exc}"))
            continue
        tokenizer = f"{target.name} tokenizer" if "tokenizer" in runners else None
        specs.append(RunnerSpec(target.name, "model", role=role, target=target.name, tokenizer=tokenizer,
                                thresholds=_thresholds(target.thresholds)))
        if tokenizer:
            specs.append(RunnerSpec(tokenizer, "tokenizer", role="tokenize-pairs" if rerank else "tokenize",
                                    target=target.name))
        specs += [RunnerSpec(f"{target.name}:{v.name}", "variant", role=role, target=target.name, variant=v.name,
                             file=v.file, precision=_precision(v.name), tokenizer=tokenizer,
                             thresholds=_thresholds(v.thresholds))
                  for v in variants]
        del runners
    gc.collect()
    encoder = export / "onnx" / "encoder.onnx"
    specs.append(RunnerSpec("onnx encoder.onnx + HF tokenizer", "encoder+hf", role=role, file="onnx/encoder.onnx",
                            thresholds=_thresholds(Thresholds()),
                            skipped=None if encoder.is_file() else "no onnx/encoder.onnx in the export (onnx target)",
                            notes=["tokenized by the reference's HF tokenizer outside the graph"]))
    return specs


def cuda_specs(export: Path, manifest: dict[str, Any]) -> list[RunnerSpec]:
    """Return the GPU runners, each skipped with the reason when it cannot run here."""
    from exporter.runtime.artifacts import artifact

    from .machine import gpu_name

    no_gpu = None if gpu_name() else "no CUDA GPU (nvidia-smi finds none)"
    has_onnx = artifact("onnx").path(export).is_file()
    specs = [RunnerSpec(REFERENCE, "reference", device="cuda", skipped=no_gpu),
             RunnerSpec(f"{REFERENCE} fp16", "reference", device="cuda", precision="fp16", skipped=no_gpu,
                        thresholds={"min_cosine": 0.999, "max_abs_diff": None, "min_retention": 0.999})]
    for precision in ("fp32", "fp16"):
        specs.append(RunnerSpec(f"onnx CUDA {precision}", "ort-cuda", device="cuda", precision=precision,
                                skipped=no_gpu or (None if has_onnx else "no onnx target in the export"),
                                thresholds={"min_cosine": 0.9999 if precision == "fp32" else 0.999,
                                            "max_abs_diff": None, "min_retention": None}))
    specs.append(RunnerSpec("savedmodel GPU", "savedmodel-cuda", device="cuda", target="savedmodel",
                            skipped=no_gpu or (None if "savedmodel" in manifest["targets"] else
                                               "no savedmodel target in the export"),
                            thresholds={"min_cosine": 0.9999, "max_abs_diff": None, "min_retention": None}))
    return specs


class EncoderWithHFTokenizer:
    """``encoder.onnx`` in ONNX Runtime fed by the reference's HF tokenizer (no custom ops)."""

    def __init__(self, encoder: Path, model_dir: Path, *, prompt: str, max_length: int):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(encoder), options, providers=["CPUExecutionProvider"])
        self.prompt, self.max_length = prompt, max_length
        self.name = "onnxruntime encoder.onnx + HF tokenizer"

    def encode(self, texts: list[str], batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        return in_batches(self._encode, texts, batch_size)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.session.run(None, self._feeds([self.prompt + t for t in texts]))[0]

    def _feeds(self, *sides: list[str]) -> dict[str, np.ndarray]:
        """Return the encoder's three int64 inputs for texts, or for (queries, documents) as CrossEncoder frames them."""
        encoded = self.tokenizer(*sides, padding=True, truncation=True, max_length=self.max_length,
                                 return_tensors="np")
        return {name: encoded[name].astype(np.int64) if name in encoded else np.zeros_like(
            encoded["input_ids"], dtype=np.int64) for name in ("input_ids", "attention_mask", "token_type_ids")}

    def score_and_logits(self, queries: list[str], documents: list[str],
                         batch_size: int = DEFAULT_BATCH_SIZE) -> tuple[np.ndarray, np.ndarray]:
        """Return a reranker's (score, logits), float32 [N, num_labels] each (its ``encoder.onnx`` outputs both)."""
        outs = [self.session.run(["score", "logits"], self._feeds(queries[i:i + batch_size],
                                                                  documents[i:i + batch_size]))
                for i in range(0, len(queries), batch_size)]
        score, logits = (np.concatenate([out[k] for out in outs], axis=0) for k in (0, 1))
        return score, logits


def _fp16_string_model(export: Path) -> Path:
    """Write model.onnx's tokenizer ∘ an fp16 encoder.onnx to a temp file (benchmark only)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from targets.onnx import compose_string_model

    folder = export / "onnx"
    encoder = convert_float_to_float16(onnx.load(str(folder / "encoder.onnx")), keep_io_types=True)
    prompt = json.loads((export / "manifest.json").read_text())["targets"]["onnx"].get("prompt") or {}
    model = compose_string_model(onnx.load(str(folder / "tokenizer.onnx")), encoder, prompt=prompt.get("text", ""))
    path = Path(tempfile.mkdtemp(prefix="st-bench-")) / "model_fp16.onnx"
    onnx.save(model, str(path))
    return path


def build(spec: RunnerSpec, export: Path, model_dir: Path, manifest: dict[str, Any]) -> Any:
    """Return the runner ``spec`` describes (called inside its worker process)."""
    import exporter  # noqa: F401 - loads the extensions library before anything imports TensorFlow
    from exporter.runtime.artifacts import open_runner
    from exporter.runtime.onnx import OnnxRunner
    from exporter.verify.reference import CrossEncoderRunner, ReferenceRunner
    from targets import get as get_target

    if spec.kind == "reference" and spec.role == "score":
        return CrossEncoderRunner(model_dir, device=spec.device)
    if spec.kind == "reference":
        runner = ReferenceRunner(model_dir, device=spec.device)
        if spec.precision == "fp16":
            runner.model.half()
        return runner
    if spec.kind == "encoder+hf":  # a reranker's export holds no prompt
        prompt = (manifest["targets"].get("onnx", {}).get("prompt") or {}).get("text", "")
        return EncoderWithHFTokenizer(export / spec.file, model_dir, prompt=prompt,
                                      max_length=manifest["tokenizer"]["max_seq_length"])
    if spec.kind == "ort-cuda":
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if spec.precision == "fp32":
            return open_runner(export, "onnx", providers=providers)
        return OnnxRunner(_fp16_string_model(export), providers=providers)
    if spec.kind == "savedmodel-cuda":
        return open_runner(export, "savedmodel", device="cuda")
    target = get_target(spec.target)
    if spec.kind == "variant":
        return next(v for v in target.variants(export) if v.name == spec.variant).runner
    return target.runners(export)["tokenizer" if spec.role.startswith("tokenize") else "model"]


def calls(spec: RunnerSpec, runner: Any) -> tuple[Callable[[list[Any]], Any], Callable[..., Any]]:
    """Return (what a cell times: one model call on the whole batch, what the quality harness calls).

    Embeddings: ``encode(texts, batch_size=len)`` (or ``tokenize``), and ``encode``. A reranker's pairs: the
    reference times ``CrossEncoder.predict`` (its activation included), the others ``score_and_logits`` (one graph
    run gives both; ``tokenize_pairs`` for a tokenizer), and quality calls ``score_and_logits``.
    """
    if spec.role in ("encode", "tokenize"):
        whole = runner.tokenize if spec.role == "tokenize" else (
            lambda texts: runner.encode(texts, batch_size=max(1, len(texts))))
        return whole, runner.encode
    if spec.role == "tokenize-pairs":
        return lambda pairs: runner.tokenize_pairs(*sides(pairs)), runner.score_and_logits
    if spec.kind == "reference":
        return (lambda pairs: runner.model.predict(pairs, batch_size=max(1, len(pairs)), show_progress_bar=False),
                runner.score_and_logits)
    return (lambda pairs: runner.score_and_logits(*sides(pairs), batch_size=max(1, len(pairs))),
            runner.score_and_logits)


def sides(pairs: list[Any]) -> tuple[list[str], list[str]]:
    """Return (queries, documents) of a list of [query, document] pairs."""
    return [q for q, _ in pairs], [d for _, d in pairs]


def check_cuda_providers(spec: RunnerSpec) -> str | None:
    """Return why an ONNX Runtime CUDA runner cannot run here, or None."""
    import onnxruntime as ort

    if spec.kind == "ort-cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        return "onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)"
    return None


def threads_in_use(runner: Any) -> dict[str, Any]:
    """Return the thread settings of the libraries this worker loaded (0 means the library's default)."""
    import sys

    out: dict[str, Any] = {}
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].get_num_threads()
    session = getattr(runner, "session", None)
    if session is not None and hasattr(session, "get_session_options"):
        options = session.get_session_options()
        out["onnxruntime_intra_op"] = options.intra_op_num_threads or "default (one per physical core)"
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        out["tensorflow_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads() or "default"
    return out
