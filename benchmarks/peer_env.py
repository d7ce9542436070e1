"""What runs under a peer env's python (benchmarks/peers.py starts it): a peer loaded and served with
worker.py's protocol, and the export of the files it loads. Standard library only at top level.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .peers import BY_LABEL, EXPORTERS, Peer

#: the model's own files fastembed reads (tokenizer, configs, modules), not its weights
FASTEMBED_SUFFIXES = (".json", ".txt", ".model")
FASTEMBED_NAME = "local/st-exporter-peer"


def _versions(*packages: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in packages:
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


class SentenceTransformersPeer:
    """SentenceTransformer.encode on an ONNX or OpenVINO backend, loaded from the exported folder."""

    def __init__(self, peer: Peer, folder: Path):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), backend=peer.export, device="cpu", local_files_only=True,
                                         model_kwargs={"file_name": peer.file})
        runtime = ("onnxruntime", "optimum-onnx") if peer.export == "onnx" else ("openvino", "optimum-intel", "nncf")
        versions = _versions("sentence-transformers", "transformers", "torch", *runtime)
        self.name = f"SentenceTransformer backend={peer.export} {peer.file} ({versions})"
        self.backend = self.model[0].auto_model
        request = getattr(self.backend, "request", None)  # optimum-intel: the CompiledModel
        self.compiled = request.get_compiled_model() if hasattr(request, "get_compiled_model") else request

    def encode(self, texts: list[str], batch_size: int) -> Any:
        return self.model.encode(texts, batch_size=batch_size, convert_to_numpy=True)

    def _openvino_precision(self) -> str | None:
        """Return the precision OpenVINO computes the unquantized layers in, or None (not OpenVINO)."""
        return self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string() if self.compiled else None

    def precision(self, declared: str) -> str:
        computed = self._openvino_precision()
        return computed if declared == "fp32" and computed not in (None, "f32") else declared

    def notes(self, model_dir: Path) -> list[str]:
        computed = self._openvino_precision()
        if computed in (None, "f32"):
            return []
        return [f"OpenVINO computes in {computed} here: its default INFERENCE_PRECISION_HINT on a CPU with native "
                "bf16 (AVX512_BF16 or AMX); model_kwargs={'ov_config': {'INFERENCE_PRECISION_HINT': 'f32'}} "
                "would keep fp32"]

    def threads(self) -> dict[str, Any]:
        import torch

        out: dict[str, Any] = {"torch": torch.get_num_threads()}
        session = getattr(self.backend, "session", None) or getattr(self.backend, "model", None)
        if hasattr(session, "get_session_options"):
            out["onnxruntime_intra_op"] = session.get_session_options().intra_op_num_threads or "default"
        if self.compiled:
            out["openvino_threads"] = self.compiled.get_property("INFERENCE_NUM_THREADS")
            out["openvino_hint"] = str(self.compiled.get_property("PERFORMANCE_HINT"))
        return out


def _pooling_dimension(folder: Path) -> int:
    """Return the embedding size after checking the model is mean pooling + Normalize (what fastembed does)."""
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    types = [m["type"].rsplit(".", 1)[-1] for m in modules]
    pooling = json.loads((folder / next(m["path"] for m in modules if m["type"].endswith("Pooling"))
                          / "config.json").read_text(encoding="utf-8"))
    # sentence-transformers 5.7 writes {"pooling_mode": "mean", "embedding_dimension"}; older ones a flag per mode
    mode = pooling.get("pooling_mode") or [k[len("pooling_mode_"):] for k, on in pooling.items()
                                           if k.startswith("pooling_mode_") and on is True]
    if types != ["Transformer", "Pooling", "Normalize"] or mode not in ("mean", ["mean_tokens"]):
        raise ValueError(f"fastembed's custom model is mean pooling + normalization; this model is {types}, "
                         f"pooling {mode}")
    return pooling.get("embedding_dimension") or pooling["word_embedding_dimension"]


class FastembedPeer:
    """fastembed's TextEmbedding on a local folder (no hub): the model's tokenizer, the ST onnx export's model."""

    def __init__(self, peer: Peer, folder: Path):
        from fastembed import TextEmbedding
        from fastembed.common.model_description import ModelSource, PoolingType

        TextEmbedding.add_custom_model(FASTEMBED_NAME, pooling=PoolingType.MEAN, normalization=True,
                                       sources=ModelSource(hf=FASTEMBED_NAME), dim=_pooling_dimension(folder),
                                       model_file=peer.file)
        self.model = TextEmbedding(FASTEMBED_NAME, specific_model_path=str(folder), local_files_only=True)
        self.name = f"fastembed TextEmbedding {peer.file} ({_versions('fastembed', 'onnxruntime', 'tokenizers')})"

    def encode(self, texts: list[str], batch_size: int) -> Any:
        import numpy as np

        return np.stack(list(self.model.embed(texts, batch_size=batch_size))).astype(np.float32)

    def threads(self) -> dict[str, Any]:
        session = self.model.model.model
        return {"onnxruntime_intra_op": session.get_session_options().intra_op_num_threads or "default"}

    def precision(self, declared: str) -> str:
        return declared

    def notes(self, model_dir: Path) -> list[str]:
        """Return the truncation note when fastembed cuts texts elsewhere than the model's max_seq_length."""
        truncation = self.model.model.tokenizer.truncation
        limit, max_seq_length = truncation and truncation["max_length"], _max_seq_length(model_dir)
        if not (limit and max_seq_length) or limit == max_seq_length:
            return []
        return [f"truncates at {limit} tokens (from tokenizer_config.json), not at the model's max_seq_length "
                f"{max_seq_length}: texts over {min(limit, max_seq_length)} tokens embed differently from the "
                "reference"]


def _sigmoid(logits: Any) -> Any:
    import numpy as np

    return (1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))).astype(np.float32)


class CrossEncoderPeer:
    """CrossEncoder.predict on sentence-transformers' ONNX backend, loaded from the exported folder."""

    def __init__(self, peer: Peer, folder: Path):
        import torch
        from sentence_transformers import CrossEncoder

        self.model = CrossEncoder(str(folder), backend=peer.export, device="cpu", local_files_only=True,
                                  model_kwargs={"file_name": peer.file})
        self.identity = torch.nn.Identity()
        versions = _versions("sentence-transformers", "transformers", "torch", "onnxruntime", "optimum-onnx")
        self.name = f"CrossEncoder backend={peer.export} {peer.file} ({versions})"

    def scores(self, pairs: list[list[str]]) -> Any:
        """Return predict's scores of one batch (the model's activation applied, as users call it)."""
        return self.model.predict(pairs, batch_size=max(1, len(pairs)), show_progress_bar=False)

    def score_and_logits(self, queries: list[str], documents: list[str], batch_size: int) -> tuple[Any, Any]:
        import numpy as np

        pairs = [[q, d] for q, d in zip(queries, documents, strict=True)]
        score, logits = (np.asarray(self.model.predict(pairs, batch_size=batch_size, activation_fn=fn,
                                                       show_progress_bar=False), np.float32).reshape(len(pairs), -1)
                         for fn in (None, self.identity))
        return score, logits

    def threads(self) -> dict[str, Any]:
        import torch

        out: dict[str, Any] = {"torch": torch.get_num_threads()}
        session = getattr(getattr(self.model, "model", None), "model", None)  # optimum's ORTModel: its session
        if hasattr(session, "get_session_options"):
            out["onnxruntime_intra_op"] = session.get_session_options().intra_op_num_threads or "default"
        return out

    def precision(self, declared: str) -> str:
        return declared

    def notes(self, model_dir: Path) -> list[str]:
        return []


class FastembedRerankPeer:
    """fastembed's TextCrossEncoder on a local folder (no hub): the model's tokenizer, the ST onnx export's model."""

    def __init__(self, peer: Peer, folder: Path):
        from fastembed.common.model_description import ModelSource
        from fastembed.rerank.cross_encoder import TextCrossEncoder

        TextCrossEncoder.add_custom_model(FASTEMBED_NAME, sources=ModelSource(hf=FASTEMBED_NAME), model_file=peer.file)
        self.model = TextCrossEncoder(FASTEMBED_NAME, specific_model_path=str(folder), local_files_only=True)
        self.name = f"fastembed TextCrossEncoder {peer.file} ({_versions('fastembed', 'onnxruntime', 'tokenizers')})"

    def _logits(self, pairs: list[tuple[str, str]], batch_size: int) -> Any:
        import numpy as np

        return np.asarray(list(self.model.rerank_pairs(pairs, batch_size=batch_size)), np.float32).reshape(-1, 1)

    def scores(self, pairs: list[list[str]]) -> Any:
        return _sigmoid(self._logits([(q, d) for q, d in pairs], max(1, len(pairs))))

    def score_and_logits(self, queries: list[str], documents: list[str], batch_size: int) -> tuple[Any, Any]:
        logits = self._logits(list(zip(queries, documents, strict=True)), batch_size)
        return _sigmoid(logits), logits

    def threads(self) -> dict[str, Any]:
        session = self.model.model.model
        return {"onnxruntime_intra_op": session.get_session_options().intra_op_num_threads or "default"}

    def precision(self, declared: str) -> str:
        return declared

    def notes(self, model_dir: Path) -> list[str]:
        """Return the truncation note when fastembed cuts pairs elsewhere than CrossEncoder does."""
        truncation = self.model.model.tokenizer.truncation
        limit, max_length = truncation and truncation["max_length"], _cross_encoder_max_length(model_dir)
        if not (limit and max_length) or limit == max_length:
            return []
        return [f"truncates pairs at {limit} tokens (tokenizer_config.json), not at CrossEncoder's max_length "
                f"{max_length}: pairs over {min(limit, max_length)} tokens score differently from the reference"]


def _cross_encoder_max_length(model_dir: Path) -> int | None:
    """Return where CrossEncoder truncates: sentence_bert_config.json's max_seq_length, else model_max_length."""
    config = model_dir / "tokenizer_config.json"
    tokenizer = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    return _max_seq_length(model_dir) or tokenizer.get("model_max_length")


def _import_library(peer: Peer) -> None:
    if peer.library == "fastembed":
        import fastembed  # noqa: F401
    else:
        import sentence_transformers  # noqa: F401 - it imports torch: part of the baseline, not the runner


def _build(peer: Peer, folder: Path) -> Any:
    if not (folder / peer.file).is_file():
        raise FileNotFoundError(f"no {peer.file} in {folder}: the {EXPORTERS[peer.export]} export did not run")
    if peer.workload == "reranker":
        return FastembedRerankPeer(peer, folder) if peer.library == "fastembed" else CrossEncoderPeer(peer, folder)
    return FastembedPeer(peer, folder) if peer.library == "fastembed" else SentenceTransformersPeer(peer, folder)


def _max_seq_length(model_dir: Path) -> int | None:
    config = model_dir / "sentence_bert_config.json"
    return json.loads(config.read_text(encoding="utf-8")).get("max_seq_length") if config.is_file() else None


def serve_peer(conn: Connection, spec: dict[str, Any], folder: str, model_dir: str) -> None:
    """Build the peer runner, answer worker.py's commands on ``conn`` until ``exit``."""
    from .worker import _status_mb, answer_commands, loaded_reply

    peer = BY_LABEL[spec["label"]]
    try:
        _import_library(peer)
        baseline = _status_mb("VmRSS")
        runner = _build(peer, Path(folder))
        if peer.workload == "reranker":
            call, quality = runner.scores, runner.score_and_logits
            call([["warm up", "warm up"]])
        else:
            call = lambda texts: runner.encode(texts, batch_size=max(1, len(texts)))  # noqa: E731 - one model call
            quality = runner.encode
            call(["warm up"])
        # what the reader must know that the spec could not say: notes, the precision it really computes in
        found = {"notes": runner.notes(Path(model_dir)), "precision": runner.precision(spec["precision"])}
        threads = runner.threads()
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the reason this peer is skipped
        conn.send({"skipped": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=3)})
        return
    conn.send({**loaded_reply(baseline, threads, runner.name), **found})
    answer_commands(conn, call, quality)


def _written_whole(folder: Path, write: Any) -> None:
    """Run ``write(partial)`` on a fresh folder beside ``folder``, then put it in ``folder``'s place."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    write(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def _model_class(model_dir: Path) -> Any:
    """Return the sentence-transformers class the folder is saved as (CrossEncoder or SentenceTransformer)."""
    import sentence_transformers

    config = model_dir / "config_sentence_transformers.json"
    declared = json.loads(config.read_text(encoding="utf-8")).get("model_type") if config.is_file() else None
    return sentence_transformers.CrossEncoder if declared == "CrossEncoder" else sentence_transformers.SentenceTransformer


def _saved_backend(model_dir: Path, folder: Path, backend: str) -> None:
    """Save the model with its ``backend`` export into ``folder`` unless it is there."""
    model_class = _model_class(model_dir)
    if not any((folder / backend).glob("*")):
        _written_whole(folder, lambda partial: model_class(
            str(model_dir), backend=backend, device="cpu", local_files_only=True).save(str(partial)))


def _fastembed_folder(model_dir: Path, onnx_folder: Path, folder: Path) -> None:
    """Write fastembed's folder: the model's own tokenizer and config files, onnx/model.onnx linked."""
    _saved_backend(model_dir, onnx_folder, "onnx")

    def write(partial: Path) -> None:
        for path in model_dir.rglob("*"):
            if path.is_file() and path.suffix in FASTEMBED_SUFFIXES:
                (partial / path.relative_to(model_dir)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, partial / path.relative_to(model_dir))
        (partial / "onnx").mkdir(parents=True, exist_ok=True)
        try:
            os.link(onnx_folder / "onnx/model.onnx", partial / "onnx/model.onnx")
        except OSError:
            shutil.copy2(onnx_folder / "onnx/model.onnx", partial / "onnx/model.onnx")

    _written_whole(folder, write)


def prepare(export: str, model_dir: Path, folder: Path, calibration: Path) -> None:
    """Write the ``export`` folder's missing files (run in the exporting env, once per model)."""
    if export == "fastembed":
        _fastembed_folder(model_dir, folder.with_name("onnx"), folder)
        return
    _saved_backend(model_dir, folder, export)
    # sentence-transformers 5.7's optimize/quantize exports take a CrossEncoder as well
    model = _model_class(model_dir)(str(folder), backend=export, device="cpu", local_files_only=True)
    if export == "onnx":
        from sentence_transformers import export_dynamic_quantized_onnx_model, export_optimized_onnx_model

        if not (folder / "onnx/model_O3.onnx").is_file():
            export_optimized_onnx_model(model, "O3", str(folder))
        if not (folder / "onnx/model_quint8_avx2.onnx").is_file():
            export_dynamic_quantized_onnx_model(model, "avx2", str(folder))
    elif not (folder / "openvino/openvino_model_qint8_quantized.xml").is_file():
        from optimum.intel import OVQuantizationConfig
        from sentence_transformers import export_static_quantized_openvino_model

        samples = sum(1 for line in (calibration / "train.jsonl").open(encoding="utf-8") if line.strip())
        # a local folder of data files is a dataset to datasets.load_dataset: its config is "default"
        export_static_quantized_openvino_model(model, OVQuantizationConfig(num_samples=samples), str(folder),
                                               dataset_name=str(calibration), dataset_config_name="default",
                                               dataset_split="train", column_name="text")


def main(argv: list[str]) -> int:
    """``serve FD JSON`` | ``prepare EXPORT MODEL_DIR FOLDER CALIBRATION``, under a peer env's python."""
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "serve":
        payload = json.loads(args[1])
        serve_peer(Connection(int(args[0])), payload["spec"], payload["folder"], payload["model_dir"])
        return 0
    if command == "prepare":
        prepare(args[0], *map(Path, args[1:4]))
        return 0
    print("usage: python -m benchmarks.peer_env serve FD JSON | prepare EXPORT MODEL_DIR FOLDER CALIBRATION_DATASET",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
