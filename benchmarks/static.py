"""Static embeddings (issue 25): a model2vec model distilled from the bundled all-MiniLM-L6-v2, exported to onnx,
savedmodel and tflite, its parity and its speed against ``SentenceTransformer.encode`` and model2vec's
``StaticModel.encode`` of the same folder.

    python -m benchmarks.static [--model DIR] [--work DIR] [--repeats N]

Without ``--model`` the model is distilled first (``model2vec.distill``, float32, 256 dimensions: about 20 s on a
quiet 2-core machine). Parity: the export's own check (token ids and embeddings on the parity corpus at batch sizes
all/1/7) and texts past the 512 pieces the tokenizer.json keeps. Speed: the median wall time of ``encode`` at b32
of ~60-word texts and b1 of ~10-word texts, each runner with its defaults, in this one process. Writes
``benchmarks/results/static-<machine>-<date>.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import machine
from .workloads import SEED, sentences

RESULTS = Path(__file__).with_name("results")
TARGETS = ("onnx", "savedmodel", "tflite")
#: (name, texts per call, words per text)
CELLS = (("b32 medium", 32, 60), ("b1 short", 1, 10))


def distill_minilm(folder: Path, source: Path | None = None) -> Path:
    """Write a static embedding distilled by model2vec from ``source`` (None: the bundled all-MiniLM-L6-v2) into
    ``folder`` (float32, 256 dimensions) and return it: both a model2vec ``StaticModel`` and a
    ``SentenceTransformer`` (StaticEmbedding → Normalize) folder."""
    from model2vec.distill import distill

    from exporter.model import default_model_path

    distill(str(source or default_model_path()), device="cpu", quantize_to="float32",
            pca_dims=256).save_pretrained(str(folder))
    return folder


def texts_of(batch: int, words: int) -> list[str]:
    """Return ``batch`` texts of ``words`` words from the benchmark sentences, in a seeded order."""
    pool = " ".join(sentences()).split()
    rng = np.random.default_rng([SEED, batch, words])
    starts = rng.integers(0, len(pool) - words, size=batch)
    return [" ".join(pool[s:s + words]) for s in starts]


def median_seconds(call: Callable[[], Any], repeats: int) -> float:
    """Return the median wall time of ``call`` over ``repeats`` runs, after 3 warm-up runs."""
    for _ in range(3):
        call()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def loaded_runners(out: Path, targets: tuple[str, ...]) -> dict[str, Callable[[list[str]], Any]]:
    """Return {target: encode(texts) in one call} of each target's loaded export."""
    import exporter

    return {target: (lambda loaded: lambda texts: loaded.encode(texts, batch_size=len(texts)))(exporter.load(out, target))
            for target in targets}


def timed_cells(runners: dict[str, Callable[[list[str]], Any]], repeats: int) -> dict[str, Any]:
    """Return, per cell of :data:`CELLS`, each runner's median milliseconds and its speed-up over the
    "sentence-transformers" runner's, all timed in this process."""
    cells = {}
    for name, batch, words in CELLS:
        texts = texts_of(batch, words)
        seconds = {runner: median_seconds(lambda run=run: run(texts), repeats) for runner, run in runners.items()}
        base = seconds["sentence-transformers"]
        cells[name] = {runner: {"median_ms": round(s * 1e3, 4), "speedup_vs_st": round(base / s, 2)}
                       for runner, s in seconds.items()}
    return cells


def parity(model: Path, out: Path) -> dict[str, Any]:
    """Return each target's parity figures from the export's manifest, and on texts past the truncation."""
    import targets as target_registry
    from exporter.verify.parity import compare_embeddings, compare_tokens
    from exporter.verify.reference import StaticReferenceRunner

    reference = StaticReferenceRunner(model)
    long_texts = [" ".join(sentences()) * k for k in (1, 2)] + [""]  # 700 and 1,400 words: cut at 512 pieces
    manifest = json.loads((out / "manifest.json").read_text())
    figures = {}
    for target in TARGETS:
        checked = manifest["targets"][target]["parity"]
        runners = target_registry.get(target).runners(out)
        tokens = compare_tokens(reference, runners["tokenizer"], long_texts)
        beyond = compare_embeddings(reference, runners["model"], long_texts)
        figures[target] = {"corpus_texts": checked["embeddings"]["texts"],
                           "token_mismatches": checked["tokens"]["mismatches"],
                           "max_abs_diff": checked["embeddings"]["max_abs_diff"],
                           "min_cosine": checked["embeddings"]["min_cosine"],
                           "long_text_token_mismatches": tokens.count,
                           "long_text_max_abs_diff": beyond.max_abs_diff,
                           "long_text_pieces": int(reference.tokenize(long_texts)["attention_mask"].sum(axis=1).max())}
    return figures


def speed(model: Path, out: Path, repeats: int) -> dict[str, Any]:
    """Return the median seconds per ``encode`` call of each runner, per cell, and model2vec's distance to ST."""
    from model2vec import StaticModel
    from exporter.verify.reference import StaticReferenceRunner

    reference = StaticReferenceRunner(model)
    model2vec = StaticModel.from_pretrained(str(model))
    runners: dict[str, Callable[[list[str]], Any]] = {
        "sentence-transformers": lambda texts: reference.encode(texts, batch_size=len(texts)),
        "model2vec": lambda texts: model2vec.encode(texts, batch_size=len(texts)),
        **loaded_runners(out, TARGETS)}
    cells = timed_cells(runners, repeats)
    texts = texts_of(32, 60)
    model2vec_diff = float(np.abs(model2vec.encode(texts) - reference.encode(texts)).max())
    return {"cells": cells, "model2vec_max_abs_diff_vs_st": model2vec_diff}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a static model folder (default: distil the bundled MiniLM)")
    parser.add_argument("--work", type=Path, default=Path("build/static-bench"), help="where the model and export go")
    parser.add_argument("--repeats", type=int, default=30)
    return parser


def main(argv: list[str] | None = None) -> int:
    import exporter

    args = _parser().parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    model = args.model
    distill_s = None
    if model is None:
        model = args.work / "model"
        if not (model / "modules.json").exists():
            start = time.perf_counter()
            distill_minilm(model)
            distill_s = round(time.perf_counter() - start, 1)
    out = args.work / "export"
    export_s = None
    if not (out / "manifest.json").exists() or distill_s is not None:
        start = time.perf_counter()
        exporter.export(model, out, targets=list(TARGETS), variants=False, force=True)
        export_s = round(time.perf_counter() - start, 1)
    figures = parity(model, out)
    load, cpu = machine.Load(), time.process_time()
    load.start()  # while the runners are timed: what other processes took of the machine meanwhile
    timed = speed(model, out, args.repeats)
    result = {"date": datetime.date.today().isoformat(), "machine": machine.describe(), "model": str(model),
              "distill_seconds": distill_s, "export_seconds": export_s, "parity": figures, **timed,
              "load": load.stop(time.process_time() - cpu)}
    path = RESULTS / f"static-{machine.slug(result['machine'], 'cpu')}-{result['date']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("parity", "cells", "model2vec_max_abs_diff_vs_st", "load")}, indent=1))
    print(f"flags: {result['machine']['flags']}; written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
