"""One runner in its own process: it loads, then times, encodes and reports memory on request.

Own process per runner so that each one's peak resident memory is its own (``VmHWM``; the
high-water mark is reset after loading, so the serving peak excludes load-time transients) and
so that libraries that cannot share a process (TensorFlow's RE2 and the extensions' ops) never do.
"""
from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable

RESET_HIGH_WATER_MARK = "5"  # /proc/self/clear_refs: reset VmHWM to the current RSS
#: the roles whose workload is [query, document] pairs (runners.RunnerSpec.role)
PAIR_ROLES = ("score", "tokenize-pairs")


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text(RESET_HIGH_WATER_MARK)
        return True
    except OSError:
        return False


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _timed(call, texts: list[str], reps: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        call(texts)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call(texts)
        times.append(time.perf_counter() - start)
    return times


def serve(conn: Any, spec: dict[str, Any], export: str, model_dir: str, manifest: dict[str, Any]) -> None:
    """Build the runner, answer commands on ``conn`` until ``exit`` (the worker process's entry point)."""
    from .runners import RunnerSpec, build, calls, check_cuda_providers, threads_in_use

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parsed = RunnerSpec(**spec)
    import exporter  # noqa: F401 - every runner needs it (it imports torch): part of the baseline, not the runner
    import targets  # noqa: F401

    baseline = _status_mb("VmRSS")
    try:
        reason = check_cuda_providers(parsed)
        if reason:
            conn.send({"skipped": reason})
            return
        runner = build(parsed, Path(export), Path(model_dir), manifest)
        # the workload's batch is one model call: encode (predict) would split it at its default batch size
        call, quality = calls(parsed, runner)
        call(warm_up(parsed))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as the reason this runner is skipped
        conn.send({"skipped": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=3)})
        return
    conn.send(loaded_reply(baseline, threads_in_use(runner), getattr(runner, "name", parsed.label)))
    answer_commands(conn, call, quality)


def warm_up(spec: Any) -> list[Any]:
    """Return the one-item batch a runner warms up on: a text, or a [query, document] pair."""
    return [["warm up", "warm up"]] if spec.role in PAIR_ROLES else ["warm up"]


def loaded_reply(baseline_rss_mb: float | None, threads: dict[str, Any], name: str) -> dict[str, Any]:
    """Return the "ready" message, resetting the memory high-water mark (the serving peak excludes loading)."""
    return {"ready": True, "baseline_rss_mb": baseline_rss_mb, "load_peak_rss_mb": _status_mb("VmHWM"),
            "threads": threads, "name": name, "peak_reset": _reset_peak(), "cpu_s": _cpu_seconds()}


def answer_commands(conn: Any, call: Callable[[list[Any]], Any], encode: Callable[..., Any]) -> None:
    """Answer time / encode / score / reset_peak / memory on ``conn`` until ``exit`` (every reply carries cpu_s).

    ``encode(texts, batch_size=)`` answers ``encode``; for a reranker it is ``score_and_logits(queries,
    documents, batch_size=)`` and answers ``score``.
    """
    while True:
        message = conn.recv()
        command = message["cmd"]
        try:
            if command == "exit":
                conn.send({"bye": True, "cpu_s": _cpu_seconds()})
                return
            if command == "time":
                reply: dict[str, Any] = {"times": _timed(call, message["texts"], message["reps"],
                                                         message.get("warmup", 0))}
            elif command == "encode":
                reply = {"embeddings": encode(message["texts"], batch_size=message["batch_size"])}
            elif command == "score":
                score, logits = encode(message["queries"], message["documents"], batch_size=message["batch_size"])
                reply = {"score": score, "logits": logits}
            elif command == "reset_peak":
                reply = {"reset": _reset_peak()}
            elif command == "memory":
                reply = {"serving_peak_rss_mb": _status_mb("VmHWM"), "rss_mb": _status_mb("VmRSS")}
            else:
                reply = {"error": f"unknown command {command!r}"}
        except Exception as exc:  # noqa: BLE001 - the parent records it for this runner and cell
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        reply["cpu_s"] = _cpu_seconds()
        conn.send(reply)
