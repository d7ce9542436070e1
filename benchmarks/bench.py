"""Latency, throughput, memory and quality of every exported runner against SentenceTransformer.encode.

    python -m benchmarks.bench [--export OUT] [--quick] [--device cpu|cuda] [--batch-sizes 1,8,32,128]
                               [--lengths short,medium,long] [--peers] [--readme docs/speed.md]
                               [--reranker-export DIR | --no-reranker]

On the CPU it also times the reranker workload ((short query, ~200-word passage) pairs) against
CrossEncoder.predict, on the benchmark reranker (benchmarks/reranker_model.py) unless
--reranker-export names another reranker export. Writes ``benchmarks/results/<machine>-<date>[-quick].json``, ``.md`` and two PNG plots. Every
speed figure is a ratio to the reference timed in the same run, in turns with it. Speed is
only ever claimed from here, never from a unit test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import goals, machine, report
from .measure import Worker, WorkerError, start_workers, stop_workers, time_cell
from .peers import peer_specs, prepare_exports
from .runners import RunnerSpec, cpu_specs, cuda_specs, is_reranker, sides
from .workloads import (BATCH_SIZES, LENGTHS, PASSAGE, PASSAGE_WORDS, QUERY_WORDS, QUICK_BATCH_SIZES, QUICK_LENGTHS,
                        Cell, PairWorkloadBuilder, WorkloadBuilder, grid, sentences)

RESULTS = Path(__file__).with_name("results")
FULL_QUALITY_BATCHES: tuple[int | None, ...] = (None, 1, 7)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", default="export", help="an export directory (default: ./export from make export)")
    parser.add_argument("--model", default=None, help="source model (default: the one in the manifest)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: torch fp32/fp16, ONNX Runtime CUDA fp32/fp16, TensorFlow on the GPU")
    parser.add_argument("--quick", action="store_true",
                        help=f"batches {QUICK_BATCH_SIZES}, {'/'.join(QUICK_LENGTHS)} texts, fewer runs")
    parser.add_argument("--batch-sizes", default=None, help=f"default {','.join(map(str, BATCH_SIZES))}")
    parser.add_argument("--lengths", default=None, help=f"default {','.join(LENGTHS)}")
    parser.add_argument("--min-runs", type=int, default=None, help="timed runs per runner and cell (default 10, quick 5)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="seconds per cell before a median counts as settled anyway (default 30, quick 6)")
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON, Markdown and PNG files")
    parser.add_argument("--readme", default=None, help="the markdown file whose bench:start/bench:end block is replaced (CPU runs; make bench: docs/speed.md)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    parser.add_argument("--peers", action="store_true",
                        help="also time sentence-transformers' ONNX / OpenVINO backends and fastembed, each in its "
                             "env under .peers/ (make bench-peers installs them)")
    parser.add_argument("--reranker-export", default=None, metavar="DIR",
                        help="the reranker export the reranker workload runs (default: the benchmark reranker, built "
                             "from the bundled model and exported into .peers/cache/ once)")
    parser.add_argument("--no-reranker", action="store_true", help="skip the reranker workload")
    return parser


def _token_tools(model_dir: Path, manifest: dict[str, Any]):
    """Return (HF tokenizer, token counter) of the reference."""
    from transformers import AutoTokenizer

    folder = model_dir / (manifest["source"]["modules"][0].get("path") or "")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    return tokenizer, lambda texts: [len(ids) for ids in tokenizer(texts)["input_ids"]]


def _own_cpu(workers: list[Worker]) -> float:
    times = os.times()
    return times.user + times.system + sum(w.cpu_s for w in workers)


def _flops(export: Path, tokenizer: Any, texts: list[Any], max_length: int) -> int | None:
    """Return the matrix products' FLOPs of encoder.onnx on the batch (texts, or [query, document] pairs)."""
    from .flops import matmul_flops

    encoder = export / "onnx" / "encoder.onnx"
    if not encoder.is_file():
        return None
    sides_of = sides(texts) if texts and isinstance(texts[0], list) else (texts,)
    encoded = tokenizer(*sides_of, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    feeds = {n: encoded[n].astype("int64") if n in encoded else 0 * encoded["input_ids"].astype("int64")
             for n in ("input_ids", "attention_mask", "token_type_ids")}
    return matmul_flops(encoder, feeds)


def _derived(results: dict[str, Any], specs: dict[str, RunnerSpec], cell: Cell, flops: int | None,
             peak: float | None) -> None:
    """Add speedup, texts/s, GFLOP/s and tokenizer share to each runner's timing (in place)."""
    base = {s.device: results[s.label]["median_s"] for s in specs.values()
            if s.kind == "reference" and s.precision == "fp32" and "median_s" in results.get(s.label, {})}
    for label, row in results.items():
        if "median_s" not in row:
            continue
        spec = specs[label]
        row["speedup"] = base[spec.device] / row["median_s"] if spec.device in base else None
        row["texts_per_s"] = cell.batch / row["median_s"]
        row["gflops"] = flops / row["median_s"] / 1e9 if flops and spec.role in ("encode", "score") else None
        row["pct_peak"] = row["gflops"] / peak if row["gflops"] and peak else None
        tokenizer = results.get(spec.tokenizer or "", {})
        if "median_s" in tokenizer:
            row["tokenizer_s"] = tokenizer["median_s"]
            row["tokenizer_share"] = tokenizer["median_s"] / row["median_s"]


def _measure_cells(workers, specs, cells, builder, args, export, tokenizer, max_length, machine_info):
    rows = []
    for cell in cells:
        texts = builder.texts(cell)
        for worker in workers:
            try:
                worker.call(cmd="reset_peak")
            except WorkerError:
                pass
        load, own = machine.Load(), _own_cpu(workers)
        load.start()
        results = time_cell(workers, texts, min_runs=args.min_runs, max_seconds=args.max_seconds)
        for worker in workers:
            try:
                results.get(worker.spec.label, {})["peak_rss_mb"] = worker.call(cmd="memory")["serving_peak_rss_mb"]
            except WorkerError:
                pass
        cell_load = load.stop(_own_cpu(workers) - own)
        flops = _flops(export, tokenizer, texts, max_length)
        _derived(results, specs, cell, flops, machine_info.get("fp32_peak_gflops"))
        rows.append({"length": cell.length, "batch": cell.batch, **builder.describe(texts), "flops": flops,
                     "load": cell_load, "results": results})
        for label, r in results.items():
            figure = (f"{r['median_s'] * 1e3:9.2f} ms  {r['speedup'] or 0:5.2f}×" if "median_s" in r
                      else f"failed: {r['error']}")
            print(f"{cell.length:6} b={cell.batch:<4} {label:34} {figure}", flush=True)
        print(f"{'':13} load {cell_load['load_average'][0]}, other processes {100 * cell_load['other_cpu_share']:.0f}%"
              " of the CPU", flush=True)
    return rows


def _settings(args: argparse.Namespace) -> None:
    quick = args.quick
    args.batches = [int(b) for b in args.batch_sizes.split(",")] if args.batch_sizes else list(
        QUICK_BATCH_SIZES if quick else BATCH_SIZES)
    args.length_list = args.lengths.split(",") if args.lengths else list(QUICK_LENGTHS if quick else LENGTHS)
    args.min_runs = args.min_runs or (5 if quick else 10)
    args.max_seconds = args.max_seconds or (6.0 if quick else 30.0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark described by parsed ``args``; return the report (not yet written)."""
    from exporter.verify.corpus import parity_texts

    export = Path(args.export)
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    model_dir = Path(args.model or manifest["source"]["path"])
    device, notes = args.device, []
    if device == "cuda" and not machine.gpu_name():
        notes.append("--device cuda: no CUDA GPU on this machine (nvidia-smi finds none); measured the CPU only")
        print(notes[-1], file=sys.stderr)
        device = "cpu"
    info = {**machine.describe(), **machine.gemm_ceiling()}
    specs_list = cuda_specs(export, manifest) if device == "cuda" else cpu_specs(export, manifest)
    if args.peers and device == "cpu":
        specs_list += peer_specs()
        prepare_exports(specs_list, model_dir)
    elif args.peers:
        notes.append("--peers: the peers are CPU runners; not run with --device cuda")
    load, own = machine.Load(), _own_cpu([])
    load.start()
    started = time.perf_counter()
    workers = start_workers(specs_list, export, model_dir, manifest)
    print(f"{len(workers)} runners loaded in {time.perf_counter() - started:.0f} s, "
          f"{sum(1 for s in specs_list if s.skipped)} skipped", flush=True)
    specs = {s.label: s for s in specs_list}
    try:
        reference = _reference(workers, specs_list)
        tokenizer, count = _token_tools(model_dir, manifest)
        max_length = manifest["tokenizer"]["max_seq_length"]
        cells = _measure_cells(workers, specs, grid(args.batches, args.length_list), WorkloadBuilder(count, max_length),
                               args, export, tokenizer, max_length, info)
        from .quality import measure_quality

        encoders = [w for w in workers if w is not reference and w.spec.role == "encode"]
        started = time.perf_counter()
        quality = measure_quality(reference, encoders, corpus=parity_texts(), pairs=sentences(),
                                  batch_sizes=(None,) if args.quick else FULL_QUALITY_BATCHES)
        print(f"quality of {len(encoders)} runners in {time.perf_counter() - started:.0f} s", flush=True)
        _note_loaded(workers, specs)
    finally:
        stop_workers(workers)
    runners = _runner_rows(workers, specs_list)
    out = {"format": 2, "model": Path(manifest["source"]["path"]).name, "date": dt.date.today().isoformat(),
           "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "mode": "quick" if args.quick else "full", "device": device, "notes": notes, "machine": info,
           "export": {"path": str(export), "libraries": manifest.get("libraries", {}),
                      **goals.export_size(export, manifest)},
           "load": load.stop(_own_cpu(workers) - own), "runners": runners, "cells": cells, "quality": quality}
    if device == "cpu" and not args.no_reranker:
        out["reranker"] = run_reranker(args, info)
    out["goals"] = goals.evaluate(out)
    return out


def _reference(workers: list[Worker], specs: list[RunnerSpec]) -> Worker:
    """Return the fp32 reference's worker, or exit saying why it did not load."""
    reference = next((w for w in workers if w.spec.kind == "reference" and w.spec.precision == "fp32"), None)
    if reference is None:
        why = next((s.skipped for s in specs if s.kind == "reference"), "no reference runner")
        raise SystemExit(f"bench: the reference did not load: {why}")
    return reference


def _note_loaded(workers: list[Worker], specs: dict[str, RunnerSpec]) -> None:
    """Record in each spec what its worker says it loaded (name, notes, the precision it really computes in)."""
    for worker in workers:
        specs[worker.spec.label].notes += [f"loaded as {worker.info.get('name')}", *worker.info.get("notes", [])]
        specs[worker.spec.label].precision = worker.info.get("precision") or worker.spec.precision


def _runner_rows(workers: list[Worker], specs_list: list[RunnerSpec]) -> list[dict[str, Any]]:
    return [{**s.to_dict(), **{k: w.info.get(k) for k in ("threads", "baseline_rss_mb", "load_peak_rss_mb")}}
            if (w := next((x for x in workers if x.spec is s), None)) else s.to_dict() for s in specs_list]


def _reranker_export(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    from .reranker_model import benchmark_export

    export = Path(args.reranker_export) if args.reranker_export else benchmark_export()
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    if not is_reranker(manifest):
        raise SystemExit(f"bench: --reranker-export {export}: its manifest's kind is {manifest.get('kind')!r}, not "
                         "'reranker'")
    return export, manifest


def run_reranker(args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    """Time the reranker workload on a reranker export, every runner against CrossEncoder.predict; return the
    report's ``reranker`` section (runners, cells, quality)."""
    from transformers import AutoTokenizer

    from exporter.verify.corpus.pairs import parity_pairs

    from .quality import measure_scores
    from .reranker_model import NAME, NOTE

    export, manifest = _reranker_export(args)
    model_dir = Path(manifest["source"]["path"])
    specs_list = cpu_specs(export, manifest)
    if args.peers:
        specs_list += peer_specs(workload="reranker")
        prepare_exports(specs_list, model_dir)
    workers = start_workers(specs_list, export, model_dir, manifest)
    print(f"reranker: {len(workers)} runners loaded, {sum(1 for s in specs_list if s.skipped)} skipped", flush=True)
    specs = {s.label: s for s in specs_list}
    try:
        reference = _reference(workers, specs_list)
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        max_length = manifest["tokenizer"]["max_seq_length"]
        builder = PairWorkloadBuilder(lambda pairs: [len(ids) for ids in tokenizer(*sides(pairs))["input_ids"]],
                                      max_length)
        cells = _measure_cells(workers, specs, [Cell(PASSAGE, batch) for batch in args.batches], builder, args,
                               export, tokenizer, max_length, info)
        scorers = [w for w in workers if w is not reference and w.spec.role == "score"]
        pairs = [list(pair) for pair in parity_pairs()] + builder.texts(Cell(PASSAGE, max(QUICK_BATCH_SIZES)))
        started = time.perf_counter()
        quality = measure_scores(reference, scorers, pairs=pairs,
                                 batch_sizes=(None,) if args.quick else FULL_QUALITY_BATCHES)
        print(f"reranker: scores of {len(scorers)} runners on {len(pairs)} pairs in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        _note_loaded(workers, specs)
    finally:
        stop_workers(workers)
    return {"model": Path(model_dir).name if args.reranker_export else NAME, "note": None if args.reranker_export else NOTE,
            "export": {"path": str(export), "targets": list(manifest["targets"]),
                       "skipped_targets": manifest.get("skipped_targets", {})},
            "workload": {"query_words": QUERY_WORDS, "passage_words": PASSAGE_WORDS, "max_length": max_length},
            "runners": _runner_rows(workers, specs_list), "cells": cells, "quality": quality}


def _plots(result: dict[str, Any], folder: Path, stem: str) -> list[str]:
    from .plots import write_plots  # matplotlib only when plotting

    return write_plots(result, folder, stem)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its files; return the exit code."""
    args = _parser().parse_args(argv)
    _settings(args)
    result = run(args)
    folder = Path(args.results)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{machine.slug(result['machine'], result['device'])}-{result['date']}" + ("-quick" if args.quick else "")
    plots = [] if args.no_plots else _plots(result, folder, stem)
    json_path, md_path = report.write(result, folder, stem, plots)
    if args.readme and result["device"] == "cpu" and not report.update_readme(
            Path(args.readme), report.readme_section(
                result, stem, plots, results=os.path.relpath(folder, Path(args.readme).parent))):
        print(f"bench: {args.readme} has no {report.README_START} ... {report.README_END} markers; "
              "not updated", file=sys.stderr)
    warning = report.provisional(result)
    if warning:
        print(warning)
    for goal in result["goals"].values():
        print(f"{'HOLDS' if goal['holds'] else 'open ' if goal['holds'] is None else 'MISS '} {goal['goal']}: "
              f"{goal['detail']}")
    print(f"\nwrote {json_path}, {md_path.name}" + "".join(f", {Path(p).name}" for p in plots))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
