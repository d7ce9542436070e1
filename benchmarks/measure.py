"""Timing: every runner in its own process, timed in turns so that background load hits them alike.

For each cell, each runner first runs the texts once (warm-up, not counted) and once more to
size its turns, then the runners take turns: in each round every runner runs the texts a few
times (about 0.15 s), in an order reversed every other round. Rounds go on until every runner's
median moved by less than ``STABLE`` in the last round (after ``min_runs``; a third of that for
runners slower than ``SLOW_CALL_S`` a call), or the cell's time is up.
"""
from __future__ import annotations

import math
import multiprocessing
import signal
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runners import RunnerSpec

STABLE = 0.02
TURN_SECONDS = 0.15
#: a runner slower than this per call needs fewer runs (a third of min_runs, at least 3)
SLOW_CALL_S = 1.0
#: lets the previous runner's spinning threads go idle before the next one starts
PAUSE_S = 0.02
LOAD_TIMEOUT_S = 600


class WorkerError(RuntimeError):
    """A worker process died or answered with an error."""


def exit_status(code: int | None) -> str:
    """Return a dead process's exit code in words (a signal by name: SIGKILL is usually the OOM killer)."""
    if code is None or code >= 0:
        return f"exit code {code}"
    name = signal.Signals(-code).name
    return f"exit code {code}, {name}" + (": the kernel's OOM killer sends it when memory runs out"
                                          if -code == signal.SIGKILL else "")


@dataclass
class Worker:
    """The parent's handle on one runner's process."""

    spec: RunnerSpec
    process: Any = None
    conn: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    cpu_s: float = 0.0
    failed: str | None = None

    def call(self, timeout: float = 3600, **message: Any) -> dict[str, Any]:
        if self.failed:
            raise WorkerError(self.failed)
        try:
            self.conn.send(message)
        except OSError:  # BrokenPipeError, ConnectionResetError: the process is gone
            self.process.join(5)
            self.failed = f"the worker process died ({exit_status(self.process.exitcode)})"
            raise WorkerError(self.failed) from None
        if not self.conn.poll(timeout):
            self.failed = f"no answer to {message['cmd']!r} in {timeout:.0f} s"
            raise WorkerError(self.failed)
        try:
            reply = self.conn.recv()
        except EOFError:
            self.process.join(5)
            self.failed = f"the worker process died ({exit_status(self.process.exitcode)})"
            raise WorkerError(self.failed) from None
        self.cpu_s = reply.get("cpu_s", self.cpu_s)
        if "error" in reply:
            raise WorkerError(reply["error"])
        return reply


def start_workers(specs: list[RunnerSpec], export: Path, model_dir: Path,
                  manifest: dict[str, Any]) -> list[Worker]:
    """Start one process per runnable spec (all load in parallel); return the ones that are ready.

    Specs that fail to load get ``skipped`` set to the reason. A peer (``kind == "peer"``) runs
    under its own env's python (benchmarks/peers.py), the others are multiprocessing children.
    """
    from .peers import start_peer
    from .worker import serve

    context = multiprocessing.get_context("spawn")
    workers = []
    for spec in specs:
        if spec.skipped:
            continue
        if spec.kind == "peer":
            process, parent = start_peer(spec, model_dir)
        else:
            parent, child = context.Pipe()
            process = context.Process(target=serve, args=(child, spec.to_dict(), str(export), str(model_dir),
                                                          manifest), name=f"bench:{spec.label}", daemon=True)
            process.start()
        workers.append(Worker(spec, process, parent))
    ready = []
    for worker in workers:
        if not worker.conn.poll(LOAD_TIMEOUT_S):
            worker.spec.skipped = f"did not load in {LOAD_TIMEOUT_S} s"
            worker.process.kill()
            continue
        try:
            reply = worker.conn.recv()
        except EOFError:
            worker.process.join(5)
            worker.spec.skipped = (f"the worker process died while loading ({exit_status(worker.process.exitcode)})"
                                   + _output_tail(worker))
            continue
        if "skipped" in reply:
            worker.spec.skipped = reply["skipped"]
            worker.process.join(5)
            continue
        worker.info, worker.cpu_s = reply, reply["cpu_s"]
        ready.append(worker)
    return ready


def _output_tail(worker: Worker) -> str:
    """Return the last lines a peer process printed (its own log file), or ""."""
    tail = worker.process.output_tail() if hasattr(worker.process, "output_tail") else ""
    return f": {tail}" if tail else ""


def stop_workers(workers: list[Worker]) -> None:
    for worker in workers:
        try:
            if not worker.failed:
                worker.call(timeout=30, cmd="exit")
        except WorkerError:
            pass
        worker.process.join(10)
        if worker.process.is_alive():
            worker.process.kill()


def _stable(runs: list[float], last_round: int, min_runs: int) -> bool:
    if len(runs) < min_runs or len(runs) <= last_round:
        return False
    now, before = statistics.median(runs), statistics.median(runs[:-last_round])
    return abs(now - before) <= STABLE * now


def summary(runs: list[float], stable: bool) -> dict[str, Any]:
    """Return median / p95 / count of a runner's timed runs (seconds)."""
    ordered = sorted(runs)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {"median_s": statistics.median(ordered), "p95_s": p95, "runs": len(ordered), "stable": stable}


def time_cell(workers: list[Worker], texts: list[str], *, min_runs: int, max_seconds: float) -> dict[str, Any]:
    """Return {label: summary or {"error": ...}} for one cell, all runners timed in turns."""
    runs: dict[str, list[float]] = {}
    reps: dict[str, int] = {}
    needed: dict[str, int] = {}
    errors: dict[str, str] = {}
    active = []
    for worker in workers:
        label = worker.spec.label
        try:
            first = worker.call(cmd="time", texts=texts, reps=1, warmup=1)["times"][0]
        except WorkerError as exc:
            errors[label] = str(exc)
            continue
        runs[label] = []
        reps[label] = max(1, min(20, int(TURN_SECONDS / max(first, 1e-6))))
        needed[label] = min_runs if first < SLOW_CALL_S else max(3, min_runs // 3)
        active.append(worker)
    start, rounds, done = time.perf_counter(), 0, False
    while active and not done:
        order = list(active) if rounds % 2 == 0 else active[::-1]
        for worker in order:
            label = worker.spec.label
            try:
                runs[label] += worker.call(cmd="time", texts=texts, reps=reps[label])["times"]
            except WorkerError as exc:
                errors[label] = str(exc)
                active.remove(worker)
            time.sleep(PAUSE_S)
        rounds += 1
        stable = {w.spec.label: _stable(runs[w.spec.label], reps[w.spec.label], needed[w.spec.label]) for w in active}
        enough = all(len(runs[w.spec.label]) >= needed[w.spec.label] for w in active)
        done = enough and (all(stable.values()) or time.perf_counter() - start > max_seconds)
    results: dict[str, Any] = {label: {"error": reason} for label, reason in errors.items()}
    for worker in active:
        label = worker.spec.label
        results[label] = summary(runs[label], _stable(runs[label], reps[label], needed[label]))
    return results
