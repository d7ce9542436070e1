"""The issues' speed / quality / size goals, evaluated on a finished report (for all-MiniLM-L6-v2 on a CPU)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

GOALS = {
    "fp32_batch1": "string-in ONNX fp32 ≥ 4.0× the reference at batch 1, short texts",
    "fp32_batch32": "string-in ONNX fp32 ≥ 1.3× the reference at batch 32, medium texts",
    "int8": "best int8 variant ≥ 2.0× the reference at batch 32 medium, min cosine ≥ 0.99, retention ≥ 0.99",
    "int8_batch1": "best int8 variant ≥ 5.0× the reference at batch 1, short texts (same quality bar)",
    "gflops": "fp32 at batch 32 medium ≥ 60% of the CPU's fp32 peak",
    "tokenizer": "in-graph tokenizer ≤ 10% of end-to-end time at batch 32 medium",
    "savedmodel": "TF SavedModel ≥ 1.0× the reference at batch 32 medium",
    "size": "a full export ≤ 60% of the 686,786,463 bytes (655 MiB) it took when every graph held its own weights",
}
#: a full export of all-MiniLM-L6-v2 at commit bcde9a2 (every file once per inode)
FULL_EXPORT_BYTES_BEFORE = 686_786_463


FULL_TARGETS = {"onnx", "savedmodel", "tflite", "triton", "tfserving"}


def export_size(export: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Return the export's bytes on disk (each inode once: hard links count once) in all and per top folder."""
    seen: dict[tuple[int, int], tuple[str, int]] = {}
    for folder, dirs, files in os.walk(export):
        dirs.sort()  # a linked file counts in the first folder holding it: savedmodel/ before the layouts
        for name in sorted(files):
            stat = os.stat(os.path.join(folder, name))
            top = Path(folder).relative_to(export).parts[:1]
            seen.setdefault((stat.st_dev, stat.st_ino), (top[0] if top else ".", stat.st_size))
    by_folder: dict[str, int] = {}
    for top, size in seen.values():
        by_folder[top] = by_folder.get(top, 0) + size
    full = FULL_TARGETS <= set(manifest.get("targets", {})) and bool(manifest["targets"]["onnx"].get("variants"))
    return {"bytes": sum(by_folder.values()), "by_folder": dict(sorted(by_folder.items())), "full": full}


def _result(report: dict[str, Any], length: str, batch: int, runner: str) -> dict[str, Any] | None:
    for cell in report["cells"]:
        if cell["length"] == length and cell["batch"] == batch:
            row = cell["results"].get(runner)
            return row if row and "median_s" in row else None
    return None


def _best(report: dict[str, Any], length: str, batch: int, runners: list[str], key: str = "speedup"):
    found = [(name, row) for name in runners if (row := _result(report, length, batch, name))]
    return max(found, key=lambda item: item[1][key]) if found else (None, None)


def _fp32_onnx(report: dict[str, Any]) -> list[str]:
    return [r["label"] for r in report["runners"] if r.get("target") == "onnx" and r["kind"] in ("model", "variant")
            and r["precision"] == "fp32" and r["device"] == "cpu"]


def _speed_goal(report, key, length, batch, runners, minimum) -> dict[str, Any]:
    name, row = _best(report, length, batch, runners)
    if row is None:
        return {"goal": GOALS[key], "holds": None, "detail": f"not measured ({length} texts, batch {batch})"}
    return {"goal": GOALS[key], "holds": row["speedup"] >= minimum, "value": round(row["speedup"], 2),
            "detail": f"{name}: {row['speedup']:.2f}× ({row['median_s'] * 1e3:.1f} ms vs the reference's "
                      f"{row['median_s'] * row['speedup'] * 1e3:.1f} ms)"}


def _int8_goal(report: dict[str, Any], key: str, length: str, batch: int, minimum: float) -> dict[str, Any]:
    quality = {q["runner"]: q for q in report["quality"] if "min_cosine" in q}
    int8 = [r["label"] for r in report["runners"] if r["precision"] == "int8" and r["device"] == "cpu"
            and r["kind"] != "peer"]
    found = []
    for name in int8:
        row, q = _result(report, length, batch, name), quality.get(name)
        if row and q:
            found.append((name, row, q))
    if not found:
        return {"goal": GOALS[key], "holds": None, "detail": f"no int8 runner measured at batch {batch} {length}"}
    good = [f for f in found if f[2]["min_cosine"] >= 0.99 and (f[2]["retention_pairs"] or 0) >= 0.99]
    name, row, q = max(good or found, key=lambda f: f[1]["speedup"])
    holds = bool(good) and row["speedup"] >= minimum
    return {"goal": GOALS[key], "holds": holds, "value": round(row["speedup"], 2),
            "detail": f"{name}: {row['speedup']:.2f}× ({row['median_s'] * 1e3:.1f} ms), min cosine "
                      f"{q['min_cosine']:.4f}, mean {q['mean_cosine']:.4f}, retention {q['retention_pairs']:.4f} "
                      f"(pairs) / {q['retention_corpus']:.4f} (corpus)"}


def _size_goal(report: dict[str, Any]) -> dict[str, Any]:
    size = report["export"].get("bytes")
    if not size or not report["export"].get("full"):
        return {"goal": GOALS["size"], "holds": None, "detail": "not a full export of every target"}
    share = size / FULL_EXPORT_BYTES_BEFORE
    return {"goal": GOALS["size"], "holds": share <= 0.6, "value": round(100 * share, 1),
            "detail": f"{size:,} bytes ({size / 2**20:.0f} MiB) = {100 * share:.0f}%; "
                      + ", ".join(f"{k}/ {v / 2**20:.0f} MiB" for k, v in report["export"].get("by_folder", {}).items()
                                  if v >= 2**20)}


def _gflops_goal(report: dict[str, Any]) -> dict[str, Any]:
    name, row = _best(report, "medium", 32, _fp32_onnx(report), key="gflops")
    peak = report["machine"].get("fp32_peak_gflops")
    if row is None or not peak:
        return {"goal": GOALS["gflops"], "holds": None, "detail": "not measured"}
    share = row["gflops"] / peak
    gemm = report["machine"].get("gemm_gflops")
    return {"goal": GOALS["gflops"], "holds": share >= 0.6, "value": round(100 * share, 1),
            "detail": f"{name}: {row['gflops']:.1f} GFLOP/s = {100 * share:.0f}% of {peak:.0f} GFLOP/s "
                      f"({report['machine']['fp32_peak_formula']})"
                      + (f"; {100 * row['gflops'] / gemm:.0f}% of the measured GEMM ceiling {gemm:.0f} GFLOP/s"
                         if gemm else "")}


def _tokenizer_goal(report: dict[str, Any]) -> dict[str, Any]:
    row = _result(report, "medium", 32, "onnx")
    if row is None or row.get("tokenizer_share") is None:
        return {"goal": GOALS["tokenizer"], "holds": None, "detail": "not measured"}
    share = row["tokenizer_share"]
    return {"goal": GOALS["tokenizer"], "holds": share <= 0.10, "value": round(100 * share, 1),
            "detail": f"tokenizer.onnx {row['tokenizer_s'] * 1e3:.1f} ms of model.onnx {row['median_s'] * 1e3:.1f} ms "
                      f"= {100 * share:.1f}%"}


def evaluate(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return each goal with ``holds`` (True / False / None when not measured), the value and a sentence."""
    fp32 = _fp32_onnx(report)
    return {
        "fp32_batch1": _speed_goal(report, "fp32_batch1", "short", 1, fp32, 4.0),
        "fp32_batch32": _speed_goal(report, "fp32_batch32", "medium", 32, fp32, 1.3),
        "int8": _int8_goal(report, "int8", "medium", 32, 2.0),
        "int8_batch1": _int8_goal(report, "int8_batch1", "short", 1, 5.0),
        "gflops": _gflops_goal(report),
        "tokenizer": _tokenizer_goal(report),
        "savedmodel": _speed_goal(report, "savedmodel", "medium", 32, ["savedmodel"], 1.0),
        "size": _size_goal(report),
    }
