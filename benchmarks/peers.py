"""The peers: sentence-transformers' ONNX and OpenVINO backends and fastembed, timed beside our runners.

Their pins conflict with ours (sentence-transformers 6's ``[onnx]`` cannot resolve at all: it needs
transformers 5 and optimum-onnx needs transformers < 4.58; ``[openvino]`` moves transformers), so
each peer runs under the python of its own virtual environment in ``.peers/<env>/`` (installed by
``make bench-peers``: ``python -m benchmarks.peers install ENV``). Such a process cannot be a
multiprocessing child of ours: the benchmark starts it as ``python -m benchmarks.peers serve FD
JSON`` and talks to it over a socket pair with worker.py's protocol.

The files a peer loads are exported once per model into ``.peers/cache/`` by the env that has
the exporter (``prepare``), before any worker starts, so the export is never part of a runner's
load time or memory. This module imports only the standard library at top level: it runs in
every peer env, with the repository on PYTHONPATH.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runners import RunnerSpec

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = ROOT / ".peers"
MAKE_TARGET = "make bench-peers"
STAMP = ".installed"
INSTALL_LOG = "install.log"
#: the CPU wheel; unpinned, pip pulls a multi-GB CUDA build (through torchvision for [openvino])
TORCH = "torch==2.13.0"
#: pip requirements per env. sentence-transformers 6.2.0[onnx] has no solution (see above): 5.7.0 is
#: the newest whose transformers range (4.41 to 5) meets optimum-onnx's. optimum-intel 2.2 requires
#: torchvision, whose PyPI wheel is a CUDA build that fails to load beside the CPU torch: 2.1.0 is
#: the newest without it. datasets: the static int8 export's calibration set
ENVS: dict[str, tuple[str, ...]] = {
    "st-onnx": ("sentence-transformers[onnx]==5.7.0", TORCH),
    "st-openvino": ("sentence-transformers[openvino]==6.2.0", "optimum-intel[openvino]==2.1.0", "datasets", TORCH),
    "fastembed": ("fastembed==0.9.1",),
}
#: which env writes each export folder of the cache, in this order (fastembed's links onnx's model.onnx)
EXPORTERS = {"onnx": "st-onnx", "openvino": "st-openvino", "fastembed": "st-onnx"}
#: the model's own files fastembed reads (tokenizer, configs, modules), not its weights
FASTEMBED_SUFFIXES = (".json", ".txt", ".model")
PREPARE_TIMEOUT_S = 1800
LOG_TAIL_LINES = 6
PIP_ERROR_LINES = 10
FASTEMBED_NAME = "local/st-exporter-peer"


@dataclass(frozen=True)
class Peer:
    """One peer runner: which env runs it and which exported file it loads."""

    label: str
    env: str
    library: str  # sentence-transformers | fastembed
    export: str  # the cache folder it loads from: onnx | openvino | fastembed
    file: str
    precision: str = "fp32"
    notes: tuple[str, ...] = ()


PEERS = [
    Peer("ST onnx", "st-onnx", "sentence-transformers", "onnx", "onnx/model.onnx",
         notes=("SentenceTransformer(backend='onnx'), optimum-onnx's export",)),
    Peer("ST onnx O3", "st-onnx", "sentence-transformers", "onnx", "onnx/model_O3.onnx",
         notes=("export_optimized_onnx_model(model, 'O3'): O2's fusions plus a GELU approximation",)),
    Peer("ST onnx quint8 avx2", "st-onnx", "sentence-transformers", "onnx", "onnx/model_quint8_avx2.onnx", "int8",
         notes=("export_dynamic_quantized_onnx_model(model, 'avx2'): optimum's avx2 config, dynamic, uint8 "
                "weights, no calibration",)),
    Peer("ST openvino", "st-openvino", "sentence-transformers", "openvino", "openvino/openvino_model.xml",
         notes=("SentenceTransformer(backend='openvino'), optimum-intel's export",)),
    Peer("ST openvino int8 static", "st-openvino", "sentence-transformers", "openvino",
         "openvino/openvino_model_qint8_quantized.xml", "int8",
         notes=("export_static_quantized_openvino_model: NNCF static int8 calibrated on the exporter's "
                "calibration corpus (exporter/verify/corpus/calibration.jsonl), not the hub's glue/sst2",)),
    Peer("fastembed", "fastembed", "fastembed", "fastembed", "onnx/model.onnx",
         notes=("TextEmbedding.add_custom_model(mean pooling, normalization), specific_model_path: a folder of "
                "the model's own tokenizer and config files and the ST onnx export's onnx/model.onnx",)),
]
BY_LABEL = {peer.label: peer for peer in PEERS}


def env_python(env: str, peers_dir: Path = PEERS_DIR) -> Path:
    return peers_dir / env / "bin" / "python"


def _log_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last non-empty lines of a log file, joined by ' / ' (one table cell)."""
    return " / ".join(_log_lines(path)[-lines:])


def pip_failure(log: Path) -> str:
    """Return what pip said went wrong: its first ERROR line up to its advice (the conflict), else the tail."""
    lines = _log_lines(log)
    first = next((i for i, line in enumerate(lines) if line.startswith("ERROR")), None)
    if first is None:
        return log_tail(log)
    said = itertools.takewhile(lambda line: not line.startswith("To fix this"), lines[first:])
    return " / ".join(list(dict.fromkeys(said))[:PIP_ERROR_LINES])


def env_missing(env: str, peers_dir: Path = PEERS_DIR) -> str | None:
    """Return why ``env`` cannot run (not installed, or its install failed with the log's tail), or None."""
    folder = peers_dir / env
    if (folder / STAMP).is_file() and env_python(env, peers_dir).is_file():
        return None
    log = folder / INSTALL_LOG
    if log.is_file():
        return f"the {env} env did not install ({folder}/{INSTALL_LOG}, `{MAKE_TARGET}` retries): {pip_failure(log)}"
    return f"the {env} env is not installed: `{MAKE_TARGET}` installs it into {folder}"


def model_key(model_dir: Path) -> str:
    """Return a cache folder name for a model: its name and a hash of its path and files' sizes and times."""
    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return f"{model_dir.name}-{digest.hexdigest()[:12]}"


def export_folder(model_dir: Path, export: str, peers_dir: Path = PEERS_DIR) -> Path:
    return peers_dir / "cache" / model_key(model_dir) / export


def _skip_reason(peer: Peer, peers_dir: Path) -> str | None:
    exporter_env = EXPORTERS[peer.export]
    exporter_missing = env_missing(exporter_env, peers_dir) if exporter_env != peer.env else None
    return env_missing(peer.env, peers_dir) or (
        exporter_missing and f"its {peer.file} is exported by the {exporter_env} env: {exporter_missing}")


def peer_specs(peers_dir: Path = PEERS_DIR) -> list[RunnerSpec]:
    """Return a RunnerSpec per peer (kind "peer"), skipped with the reason when its env cannot run.

    Each is held to the bar of our artifact of its precision: fp32 (and O3) the onnx target's, int8 onnx:int8's.
    """
    from exporter.verify.parity import Thresholds
    from targets.onnx_variants import THRESHOLDS

    from .runners import RunnerSpec, _thresholds

    bars = {"fp32": _thresholds(Thresholds()), "int8": _thresholds(THRESHOLDS["int8"])}
    return [RunnerSpec(peer.label, "peer", precision=peer.precision, file=peer.file, thresholds=bars[peer.precision],
                       skipped=_skip_reason(peer, peers_dir), notes=[f"peer env {peer.env}", *peer.notes])
            for peer in PEERS]


# --- in the main process: exports, then one process per peer -------------------------------------

def _subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _write_calibration(folder: Path) -> Path:
    """Write the exporter's calibration texts as a local dataset folder (``datasets.load_dataset(folder)``)."""
    from exporter.verify.corpus import calibration_texts

    dataset = folder / "calibration"
    dataset.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"text": text}, ensure_ascii=False) for text in calibration_texts()]
    (dataset / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dataset


def _run_prepare(export: str, model_dir: Path, folder: Path, peers_dir: Path) -> str | None:
    """Export the missing files of ``folder`` in the exporting env; return why it failed, or None."""
    env = EXPORTERS[export]
    log = peers_dir / env / "prepare.log"
    calibration = _write_calibration(folder.parent)
    command = [str(env_python(env, peers_dir)), "-m", "benchmarks.peers", "prepare", export, str(model_dir),
               str(folder), str(calibration)]
    print(f"peers: exporting {model_dir.name} for the {env} env into {folder} (once per model; log {log})",
          flush=True)
    with log.open("w", encoding="utf-8") as out:
        try:
            code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                   env={**_subprocess_env(), "HF_HOME": str(peers_dir / "cache" / "hf-home")},
                                   timeout=PREPARE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return f"the {env} export did not finish in {PREPARE_TIMEOUT_S} s ({log})"
    return None if code == 0 else f"the {env} export failed (exit {code}, {log}): {log_tail(log)}"


def prepare_exports(specs: list[RunnerSpec], model_dir: Path, peers_dir: Path = PEERS_DIR) -> None:
    """Export what the runnable peer specs load and the cache lacks; a failure skips them with its reason."""
    for export in EXPORTERS:
        needing = [s for s in specs if s.kind == "peer" and not s.skipped and BY_LABEL[s.label].export == export]
        folder = export_folder(model_dir, export, peers_dir)
        if not any(not (folder / s.file).is_file() for s in needing):
            continue
        reason = _run_prepare(export, model_dir, folder, peers_dir)
        for spec in needing:
            if not (folder / spec.file).is_file():
                spec.skipped = reason or f"the {EXPORTERS[export]} export wrote no {spec.file}"


class PeerProcess:
    """A peer's interpreter, with the part of multiprocessing.Process's interface the benchmark uses."""

    def __init__(self, popen: subprocess.Popen, log: Path):
        self.popen, self.log = popen, log

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pass

    def kill(self) -> None:
        self.popen.kill()

    def output_tail(self) -> str:
        return log_tail(self.log)


def start_peer(spec: RunnerSpec, model_dir: Path, peers_dir: Path = PEERS_DIR) -> tuple[PeerProcess, Connection]:
    """Start ``spec``'s peer under its env's python; return its process and our end of the connection."""
    peer = BY_LABEL[spec.label]
    ours, theirs = socket.socketpair()
    payload = {"spec": spec.to_dict(), "folder": str(export_folder(model_dir, peer.export, peers_dir)),
               "model_dir": str(model_dir)}
    log = peers_dir / peer.env / f"serve-{peer.label.replace(' ', '-')}.log"
    with log.open("w", encoding="utf-8") as out:
        popen = subprocess.Popen([str(env_python(peer.env, peers_dir)), "-m", "benchmarks.peers", "serve",
                                  str(theirs.fileno()), json.dumps(payload)], pass_fds=(theirs.fileno(),),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                 env=_subprocess_env())
    theirs.close()
    return PeerProcess(popen, log), Connection(ours.detach())


# --- in the peer's env ---------------------------------------------------------------------------

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


def _import_library(peer: Peer) -> None:
    if peer.library == "fastembed":
        import fastembed  # noqa: F401
    else:
        import sentence_transformers  # noqa: F401 - it imports torch: part of the baseline, not the runner


def _build(peer: Peer, folder: Path) -> Any:
    if not (folder / peer.file).is_file():
        raise FileNotFoundError(f"no {peer.file} in {folder}: the {EXPORTERS[peer.export]} export did not run")
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
        call = lambda texts: runner.encode(texts, batch_size=max(1, len(texts)))  # noqa: E731 - one model call
        call(["warm up"])
        # what the reader must know that the spec could not say: notes, the precision it really computes in
        found = {"notes": runner.notes(Path(model_dir)), "precision": runner.precision(spec["precision"])}
        threads = runner.threads()
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the reason this peer is skipped
        conn.send({"skipped": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=3)})
        return
    conn.send({**loaded_reply(baseline, threads, runner.name), **found})
    answer_commands(conn, call, runner.encode)


def _written_whole(folder: Path, write: Any) -> None:
    """Run ``write(partial)`` on a fresh folder beside ``folder``, then put it in ``folder``'s place."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    write(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


def _saved_backend(model_dir: Path, folder: Path, backend: str) -> None:
    """Save the model with its ``backend`` export into ``folder`` unless it is there."""
    from sentence_transformers import SentenceTransformer

    if not any((folder / backend).glob("*")):
        _written_whole(folder, lambda partial: SentenceTransformer(
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
    from sentence_transformers import SentenceTransformer

    if export == "fastembed":
        _fastembed_folder(model_dir, folder.with_name("onnx"), folder)
        return
    _saved_backend(model_dir, folder, export)
    model = SentenceTransformer(str(folder), backend=export, device="cpu", local_files_only=True)
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


def install(env: str, peers_dir: Path = PEERS_DIR) -> int:
    """Create ``env`` afresh with its requirements; return the exit code of the step that failed, or 0.

    The stamp records the requirements: an env already installed with them is left as it is (a
    changed list rebuilds it, so no package of an older list lingers). On failure there is no
    stamp and ``install.log`` says why (the benchmark shows its tail).
    """
    folder, requirements = peers_dir / env, list(ENVS[env])
    stamp, log = folder / STAMP, folder / INSTALL_LOG
    if stamp.is_file() and stamp.read_text(encoding="utf-8").split("\n") == requirements:
        stamp.touch()
        return 0
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    commands = [[sys.executable, "-m", "venv", str(folder)],
                [str(env_python(env, peers_dir)), "-m", "pip", "install", "--disable-pip-version-check",
                 *requirements]]
    print(f"peers: installing {env} ({' '.join(requirements)}) into {folder}; log {log}", flush=True)
    with log.open("w", encoding="utf-8") as out:
        for command in commands:
            out.write(f"$ {' '.join(command)}\n")
            out.flush()
            code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)
            if code:
                print(f"peers: {env} did not install (exit {code}): {log_tail(log, 3)}", file=sys.stderr)
                return code
    stamp.write_text("\n".join(requirements), encoding="utf-8")
    return 0


def main(argv: list[str]) -> int:
    """``install ENV...`` | ``serve FD JSON`` | ``prepare EXPORT MODEL_DIR FOLDER CALIBRATION``."""
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "install":
        return max([install(env) for env in args] or [0])
    if command == "serve":
        payload = json.loads(args[1])
        serve_peer(Connection(int(args[0])), payload["spec"], payload["folder"], payload["model_dir"])
        return 0
    if command == "prepare":
        prepare(args[0], *map(Path, args[1:4]))
        return 0
    print(f"usage: python -m benchmarks.peers install {'|'.join(ENVS)}... | serve FD JSON | "
          "prepare EXPORT MODEL_DIR FOLDER CALIBRATION_DATASET", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
