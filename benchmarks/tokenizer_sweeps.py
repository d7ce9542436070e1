"""The whole tokenizer sweeps of an export against its reference, per class and target (``make test`` runs samples).

    .venv/bin/python -m benchmarks.tokenizer_sweeps --export OUT [--model MODEL_DIR] [--targets onnx,savedmodel]

For each target with a tokenizer graph (onnx's tokenizer.onnx, the SavedModel's ``tokenize``, the
TFLite file's), every code point of the sweep (planes 0-3, a sample of planes 4-16) alone and inside a word,
every class of :func:`exporter.verify.sweeps.sequence_sweep`, and the runs 1-64 of every character the
vocabulary has pieces of several lengths of (:func:`exporter.verify.sweeps.vocabulary_runs`), one padded batch of at most 8,192 texts at a time,
against the reference tokenizer (transformers' fast tokenizer as SentenceTransformer loads it).
Prints one row per class and target (texts that differ, an example) and writes
``results/<model>-tokenizer-sweeps.json``. About a minute for the three graphs of a 250k-piece vocabulary on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from exporter.runtime.manifest import read_manifest
from exporter.runtime.artifacts import artifact, open_tokenizer
from exporter.verify.reference import ReferenceRunner
from exporter.verify.sweeps import (VOCABULARY_RUNS, code_point_sweep, sequence_sweep, texts_that_differ,
                                     vocabulary_runs)

RESULTS = Path(__file__).with_name("results")


def _graphs(out: Path, names: list[str]) -> dict:
    """Return {target: its tokenizer Runner} for the names that have a tokenizer graph (table of artifacts)."""
    return {name: open_tokenizer(out, name) for name in names if artifact(name).tokenizer}


def sweep_classes(vocabulary: list[str]) -> dict[str, list[str]]:
    """Return {class: texts}: the code-point sweep in both templates, the sequence classes, then the runs of
    ``vocabulary``'s repeated characters."""
    return {"code points alone": code_point_sweep("{}"), "code points in a word": code_point_sweep("a{}b"),
            **sequence_sweep(), VOCABULARY_RUNS: vocabulary_runs(vocabulary)}


def run(out: Path, model: Path | None, targets: list[str]) -> dict:
    manifest = read_manifest(out)
    reference = ReferenceRunner(model or Path(manifest["source"]["path"]))
    results: dict = {"export": str(out), "tokenizer": manifest.get("tokenizer", {}).get("family"), "classes": {}}
    classes = sweep_classes(list(reference.model.tokenizer.get_vocab()))
    for name, runner in _graphs(out, targets or list(manifest["targets"])).items():
        for label, texts in classes.items():
            start = time.perf_counter()
            bad = texts_that_differ(reference, runner, texts)
            results["classes"].setdefault(label, {})[name] = {
                "texts": len(texts), "mismatches": len(bad), "examples": bad[:3],
                "seconds": round(time.perf_counter() - start, 1)}
            print(f"{name:10} | {label:58} | {len(bad):6} / {len(texts):7}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, required=True, help="an st-export output directory")
    parser.add_argument("--model", type=Path, default=None, help="the source model (default: the manifest's path)")
    parser.add_argument("--targets", default="", help="comma-separated: onnx, savedmodel, tflite (default: all)")
    args = parser.parse_args()
    results = run(args.export, args.model, [t for t in args.targets.split(",") if t])
    RESULTS.mkdir(exist_ok=True)
    name = Path(read_manifest(args.export)["source"]["path"]).name
    path = RESULTS / f"{name}-tokenizer-sweeps.json"
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
