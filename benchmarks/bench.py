"""Latency of every exported target against SentenceTransformer.encode, as ratios measured in one run.

    python -m benchmarks.bench [--export OUT] [--quick] [--batch-sizes 1,8,32] [--lengths short,medium,long]

Writes ``benchmarks/results/<machine>-<date>.json`` and ``.md``. Speed is only ever claimed from
here (never from a unit test): every figure is the median of repeated timed runs after warm-up,
next to the reference timed in the same process.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

RESULTS = Path(__file__).with_name("results")
#: real sentences (seeded shuffle), joined until a text reaches the token budget of its length class
SENTENCES = [
    "The committee approved the new budget after a long debate on Tuesday.",
    "Researchers found that the drug reduced symptoms in most patients.",
    "A small bakery on the corner sells fresh bread every morning.",
    "The river flooded the valley after three days of heavy rain.",
    "She finished the marathon in under four hours despite the heat.",
    "Engineers are testing a lighter battery for electric aircraft.",
    "The museum reopened with an exhibition of early photography.",
    "Local farmers expect a smaller harvest because of the drought.",
    "The software update fixes a bug that drained the phone's battery.",
    "Two teams will meet in the final on Sunday evening.",
    "The city plans to plant ten thousand trees over the next decade.",
    "He learned to play the violin by watching old recordings.",
]
LENGTHS = {"short": 10, "medium": 60, "long": None}  # target tokens; None = max_seq_length


def machine() -> dict[str, Any]:
    """Return a description of this machine (CPU model, cores, vector flags, GPU)."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cores": os.cpu_count()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line)
        flags = next(line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags"))
        info["flags"] = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile") if f in flags]
    except (OSError, StopIteration):
        pass
    import torch

    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def workload(tokenize: Callable, batch: int, length: str, max_len: int, seed: int = 0) -> list[str]:
    """Return ``batch`` texts of about the token count of ``length``, from a seeded shuffle of SENTENCES."""
    rng = np.random.default_rng(seed)
    budget = LENGTHS[length] or max_len
    count = lambda words: tokenize([" ".join(words)])["attention_mask"].sum()  # noqa: E731
    texts = []
    for _ in range(batch):
        order = rng.permutation(len(SENTENCES))
        words: list[str] = []
        for j in range(400):
            words.extend(SENTENCES[order[j % len(SENTENCES)]].split())
            if count(words) >= budget:
                break
        while len(words) > 1 and count(words[:-1]) >= budget:
            words.pop()
        texts.append(" ".join(words))
    return texts


def timed(encode: Callable, texts: list[str], *, min_runs: int, max_seconds: float) -> dict[str, float]:
    """Return median/p95 seconds of ``encode(texts)`` after warm-up, repeating until stable or out of time."""
    for _ in range(2):
        encode(texts)
    runs: list[float] = []
    start = time.perf_counter()
    while len(runs) < min_runs or (time.perf_counter() - start < max_seconds and len(runs) < 200 and
                                    abs(statistics.median(runs[-5:]) - statistics.median(runs)) >
                                    0.02 * statistics.median(runs)):
        t = time.perf_counter()
        encode(texts)
        runs.append(time.perf_counter() - t)
    runs.sort()
    return {"median_s": statistics.median(runs), "p95_s": runs[int(0.95 * (len(runs) - 1))], "runs": len(runs)}


def runners(export: Path, model_dir: Any) -> dict[str, Any]:
    """Return the reference and every target found in ``export`` (skipped ones carry a reason)."""
    import exporter  # noqa: F401 - loads the extensions library before TensorFlow
    from exporter.runners import ReferenceRunner
    from targets import resolve

    out: dict[str, Any] = {"sentence-transformers": ReferenceRunner(model_dir)}
    manifest = json.loads((export / "manifest.json").read_text())
    for target in resolve(list(manifest["targets"])):
        out[target.name] = target.runners(export)["model"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", default="export", help="an export directory (default: ./export from make export)")
    parser.add_argument("--model", default=None, help="source model (default: the one in the manifest)")
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--lengths", default="short,medium,long")
    parser.add_argument("--quick", action="store_true", help="batch 1 and 32, short and medium, fewer runs")
    parser.add_argument("--min-runs", type=int, default=None, help="timed runs per cell at least (default 10, quick 5)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="time per cell before giving up on a stable median (default 10, quick 3)")
    parser.add_argument("--results", default=str(RESULTS), help="where the JSON and Markdown reports go")
    args = parser.parse_args(argv)
    export = Path(args.export)
    manifest = json.loads((export / "manifest.json").read_text())
    every = runners(export, args.model or manifest["source"]["path"])
    reference = every["sentence-transformers"]
    batches = [1, 32] if args.quick else [int(b) for b in args.batch_sizes.split(",")]
    lengths = ["short", "medium"] if args.quick else args.lengths.split(",")
    min_runs = args.min_runs or (5 if args.quick else 10)
    max_seconds = args.max_seconds or (3.0 if args.quick else 10.0)
    max_len = manifest["tokenizer"]["max_seq_length"]
    rows = []
    for length in lengths:
        for batch in batches:
            texts = workload(reference.tokenize, batch, length, max_len)
            tokens = int(reference.tokenize(texts)["attention_mask"].sum(axis=1).mean())
            base = None
            for name, runner in every.items():
                figures = timed(runner.encode, texts, min_runs=min_runs, max_seconds=max_seconds)
                base = base or figures["median_s"]
                rows.append({"runner": name, "batch": batch, "length": length, "mean_tokens": tokens, **figures,
                             "texts_per_s": batch / figures["median_s"], "speedup": base / figures["median_s"]})
                print(f"{length:6} b={batch:<4} {name:22} {figures['median_s'] * 1000:8.1f} ms "
                      f"{base / figures['median_s']:5.2f}x", flush=True)
    report = {"machine": machine(), "date": dt.date.today().isoformat(), "export": str(export),
              "threads": {"torch": __import__("torch").get_num_threads()}, "rows": rows}
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    stem = f"{platform.node() or 'machine'}-{report['date']}"
    (results / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (results / f"{stem}.md").write_text(markdown(report))
    print(f"\nwrote {results / stem}.json and .md")
    return 0


def markdown(report: dict[str, Any]) -> str:
    """Return the report as a Markdown table (speedup = reference median / runner median)."""
    m = report["machine"]
    lines = [f"Machine: {m.get('cpu', '?')}, {m['cores']} cores, flags {', '.join(m.get('flags', []))}, "
             f"GPU {m['gpu'] or 'none'}; {report['date']}", "",
             "| length | batch | tokens | runner | median ms | p95 ms | texts/s | × reference |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['length']} | {r['batch']} | {r['mean_tokens']} | {r['runner']} | "
                     f"{r['median_s'] * 1000:.1f} | {r['p95_s'] * 1000:.1f} | {r['texts_per_s']:.0f} | "
                     f"{r['speedup']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
