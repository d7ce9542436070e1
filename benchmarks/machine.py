"""What machine a run was on, what its fp32 peak is, and how busy other processes kept it."""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

VECTOR_FLAGS = ("avx", "fma", "avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_tile", "amx_int8",
                "amx_bf16")
#: the flags that decide which int8 / bf16 kernels ONNX Runtime's MLAS and OpenVINO pick (issue 26): each is
#: recorded present or absent, so that a report from an AVX2 machine says that it had no AMX
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "amx_int8", "amx_bf16")


def _cpuinfo() -> dict[str, str]:
    """Return the first processor's fields of /proc/cpuinfo (empty off Linux)."""
    try:
        block = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in block.splitlines())}


def _physical_cores(info: dict[str, str]) -> int:
    try:
        return int(info["cpu cores"]) * len({line for line in Path("/proc/cpuinfo").read_text().splitlines()
                                             if line.startswith("physical id")} or {0})
    except (KeyError, ValueError, OSError):
        return os.cpu_count() or 1


def _clock_ghz(info: dict[str, str]) -> tuple[float | None, str]:
    """Return (GHz, where it came from): cpufreq's maximum if the kernel exposes it, else /proc/cpuinfo."""
    try:
        khz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text())
        return khz / 1e6, "cpufreq max"
    except (OSError, ValueError):
        pass
    try:
        return float(info["cpu MHz"]) / 1000, "/proc/cpuinfo 'cpu MHz' (nominal; turbo may be higher)"
    except (KeyError, ValueError):
        return None, "unknown"


def flops_per_cycle(flags: list[str], vendor: str) -> tuple[int, str]:
    """Return fp32 FLOP per cycle per core for the widest FMA the CPU has, with the reasoning.

    Assumes two FMA pipes per core (Intel since Haswell, AMD since Zen 2). AMD's AVX-512
    (Zen 4) runs on 256-bit pipes, so it counts as AVX2 width.
    """
    amd = "AMD" in vendor
    if "avx512f" in flags and not amd:
        return 64, "2 FMA × 16 fp32 lanes (AVX-512) × 2 FLOP"
    if "fma" in flags or "avx2" in flags:
        return 32, "2 FMA × 8 fp32 lanes (256-bit) × 2 FLOP" + (" (AMD AVX-512 uses 256-bit pipes)" if amd and
                                                                 "avx512f" in flags else "")
    return 8, "SSE: 4 lanes × 2 (add + mul)"


def isa(flags: list[str]) -> dict[str, bool]:
    """Return each of :data:`ISA_FLAGS` → whether the CPU has it."""
    return {flag: flag in flags for flag in ISA_FLAGS}


def mlas_int8_path(flags: list[str]) -> str:
    """Return the u8×s8 GEMM kernel family MLAS dispatches to on a CPU with ``flags``.

    ONNX Runtime reports no kernel choice (not in its API, not in its verbose log), so this follows
    MLAS's own dispatch (``onnxruntime/core/mlas/lib/platform.cpp``): AMX when the CPU has amx_tile and
    amx_int8 (and Linux grants the tile state), else AVX512-VNNI, AVX-VNNI, AVX-512 (BW), AVX2, SSE.
    """
    if {"amx_tile", "amx_int8"} <= set(flags):
        return "amx"
    for flag, path in (("avx512_vnni", "avx512vnni"), ("avx_vnni", "avxvnni"), ("avx512bw", "avx512core"),
                       ("avx2", "avx2")):
        if flag in flags:
            return path
    return "sse"


def onnxruntime_info(flags: list[str]) -> dict[str, Any]:
    """Return ONNX Runtime's version and MLAS's int8 kernel path on this CPU (None when ORT is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return {"onnxruntime": None, "mlas_int8_path": None, "mlas_int8_path_source": None}
    return {"onnxruntime": ort.__version__, "mlas_int8_path": mlas_int8_path(flags),
            "mlas_int8_path_source": "inferred from the CPU flags by MLAS's dispatch rules (ORT does not report it)"}


def gpu_name() -> str | None:
    """Return the first CUDA GPU's name, or None (nvidia-smi, so torch need not be imported)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return names[0] if out.returncode == 0 and names else None


def describe() -> dict[str, Any]:
    """Return the machine: CPU model, cores, vector flags (and :data:`ISA_FLAGS` present/absent), clock, nominal
    fp32 peak, GPU, memory, ONNX Runtime's version and MLAS int8 path."""
    info = _cpuinfo()
    flags = [f for f in VECTOR_FLAGS if f in info.get("flags", "").split()]
    cores = _physical_cores(info)
    ghz, clock_source = _clock_ghz(info)
    per_cycle, why = flops_per_cycle(flags, info.get("vendor_id", ""))
    peak = cores * ghz * per_cycle if ghz else None
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError):
        memory_gb = None
    return {
        "cpu": info.get("model name", platform.processor() or "unknown"), "vendor": info.get("vendor_id"),
        "logical_cpus": os.cpu_count(), "physical_cores": cores, "flags": flags, "isa": isa(flags),
        **onnxruntime_info(flags),
        "clock_ghz": round(ghz, 3) if ghz else None, "clock_source": clock_source,
        "fp32_peak_gflops": round(peak, 1) if peak else None,
        "fp32_peak_formula": f"{cores} cores × {ghz:.2f} GHz × {per_cycle} FLOP/cycle ({why})" if ghz else None,
        "gpu": gpu_name(), "memory_gb": memory_gb, "platform": platform.platform(),
        "python": platform.python_version(), "hostname": platform.node(),
    }


def slug(machine: dict[str, Any], device: str) -> str:
    """Return a file-name-safe machine name, e.g. ``amd-epyc-2c`` (``-cuda`` for GPU runs)."""
    words = "".join(c if c.isalnum() else " " for c in machine["cpu"].lower()).split()
    words = [w for w in words if w not in {"processor", "cpu", "r", "tm", "with", "core"}][:4]
    name = "-".join(words + [f"{machine['physical_cores']}c"])
    return f"{name}-cuda" if device == "cuda" else name


def gemm_ceiling(seconds: float = 1.0, size: int = 1024) -> dict[str, Any]:
    """Return torch's fp32 matmul throughput on this machine (all threads): a measured ceiling."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    runs, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(runs) < 5:
        t = time.perf_counter()
        a @ b
        runs.append(time.perf_counter() - t)
    best = sorted(runs)[len(runs) // 2]
    return {"gemm_gflops": round(2 * size ** 3 / best / 1e9, 1), "gemm": f"torch.mm {size}³ fp32, "
            f"{torch.get_num_threads()} threads, median of {len(runs)}"}


class Load:
    """CPU time used by other processes between ``start()`` and ``stop()`` (Linux /proc/stat)."""

    def __init__(self):
        self._busy0 = self._total0 = 0.0
        self._wall0 = 0.0

    @staticmethod
    def _jiffies() -> tuple[float, float]:
        try:
            fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return 0.0, 0.0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
        hz = os.sysconf("SC_CLK_TCK")
        return (sum(fields[:8]) - idle) / hz, sum(fields[:8]) / hz

    def start(self) -> None:
        self._busy0, self._total0 = self._jiffies()
        self._wall0 = time.perf_counter()

    def stop(self, own_cpu_seconds: float) -> dict[str, Any]:
        """Return load averages and the CPU share others took; ``own_cpu_seconds``: ours in the interval."""
        busy, total = self._jiffies()
        wall = time.perf_counter() - self._wall0
        others = max(0.0, busy - self._busy0 - own_cpu_seconds)
        capacity = max(total - self._total0, 1e-9)
        return {"load_average": [round(x, 2) for x in os.getloadavg()], "wall_s": round(wall, 2),
                "other_cpu_s": round(others, 2), "other_cpu_share": round(others / capacity, 3)}
