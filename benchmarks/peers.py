"""The peers: sentence-transformers' ONNX and OpenVINO backends and fastembed, timed beside our runners.

Their pins conflict with ours (sentence-transformers 6's ``[onnx]`` cannot resolve at all: it needs
transformers 5 and optimum-onnx needs transformers < 4.58; ``[openvino]`` moves transformers), so
each peer runs under the python of its own virtual environment in ``.peers/<env>/`` (installed by
``make bench-peers``: ``python -m benchmarks.peers install ENV``). Such a process cannot be a
multiprocessing child of ours: the benchmark starts it as ``python -m benchmarks.peer_env serve FD
JSON`` and talks to it over a socket pair with worker.py's protocol.

The files a peer loads are exported once per model into ``.peers/cache/`` by the env that has
the exporter (``prepare``), before any worker starts, so the export is never part of a runner's
load time or memory. What runs inside a peer env (serving, exporting) is ``peer_env.py``, which imports
this module and never the reverse. Both
import only the standard library at top level: they run in every peer env, with the repository on
PYTHONPATH.
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
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

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
PREPARE_TIMEOUT_S = 1800
LOG_TAIL_LINES = 6
PIP_ERROR_LINES = 10


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
    #: embedding (texts → embeddings) | reranker ([query, document] pairs → scores)
    workload: str = "embedding"


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
#: the reranker workload's peers, on the benchmark reranker's folder (a CrossEncoder)
RERANK_PEERS = [
    Peer("ST onnx CrossEncoder", "st-onnx", "sentence-transformers", "onnx", "onnx/model.onnx", workload="reranker",
         notes=("CrossEncoder(backend='onnx').predict: optimum-onnx's export (ids → logits), the model's Sigmoid "
                "applied by predict in torch",)),
    Peer("ST onnx CrossEncoder O3", "st-onnx", "sentence-transformers", "onnx", "onnx/model_O3.onnx",
         workload="reranker", notes=("export_optimized_onnx_model(cross_encoder, 'O3'): O2's fusions plus a GELU "
                                     "approximation",)),
    Peer("ST onnx CrossEncoder quint8 avx2", "st-onnx", "sentence-transformers", "onnx",
         "onnx/model_quint8_avx2.onnx", "int8", workload="reranker",
         notes=("export_dynamic_quantized_onnx_model(cross_encoder, 'avx2'): dynamic, uint8 weights, no "
                "calibration",)),
    Peer("fastembed TextCrossEncoder", "fastembed", "fastembed", "fastembed", "onnx/model.onnx", workload="reranker",
         notes=("TextCrossEncoder.add_custom_model + specific_model_path: the model's own tokenizer and config files "
                "and the ST onnx export's onnx/model.onnx; rerank_pairs returns logits, the Sigmoid is applied here "
                "(numpy, in the timed call)",)),
]
BY_LABEL = {peer.label: peer for peer in PEERS + RERANK_PEERS}


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


def peer_specs(peers_dir: Path = PEERS_DIR, workload: str = "embedding") -> list[RunnerSpec]:
    """Return a RunnerSpec per peer of ``workload`` (kind "peer"), skipped with the reason when its env cannot run.

    Each is held to the bar of our artifact of its precision: fp32 (and O3) the onnx target's, int8 onnx:int8's.
    """
    from exporter.verify.parity import Thresholds
    from targets.onnx_variants import THRESHOLDS

    from .runners import RunnerSpec, _thresholds

    bars = {"fp32": _thresholds(Thresholds()), "int8": _thresholds(THRESHOLDS["int8"])}
    role = "score" if workload == "reranker" else "encode"
    return [RunnerSpec(peer.label, "peer", role=role, precision=peer.precision, file=peer.file,
                       thresholds=bars[peer.precision], skipped=_skip_reason(peer, peers_dir),
                       notes=[f"peer env {peer.env}", *peer.notes])
            for peer in (RERANK_PEERS if workload == "reranker" else PEERS)]


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
    command = [str(env_python(env, peers_dir)), "-m", "benchmarks.peer_env", "prepare", export, str(model_dir),
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
        popen = subprocess.Popen([str(env_python(peer.env, peers_dir)), "-m", "benchmarks.peer_env", "serve",
                                  str(theirs.fileno()), json.dumps(payload)], pass_fds=(theirs.fileno(),),
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                 env=_subprocess_env())
    theirs.close()
    return PeerProcess(popen, log), Connection(ours.detach())


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
    """``install ENV...`` (serving and exporting in a peer env: ``python -m benchmarks.peer_env``)."""
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "install":
        return max([install(env) for env in args] or [0])
    print(f"usage: python -m benchmarks.peers install {'|'.join(ENVS)}...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
