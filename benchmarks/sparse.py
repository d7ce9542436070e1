"""Sparse encoders (issue 25): a SPLADE model of all-MiniLM-L6-v2's shape, exported to onnx, savedmodel and tflite,
its parity (from the export's own check) and its speed against ``SparseEncoder.encode`` of the same folder.

    python -m benchmarks.sparse [--work DIR] [--repeats N]

There is no hub here, so the model is built locally: a ``BertForMaskedLM`` whose embeddings and 6 layers are the
bundled all-MiniLM-L6-v2's, its MLM head's transform seeded random and its decoder tied to the word embeddings (as
BERT's is), the decoder bias lowered so that about 1% of the 30,522 dimensions are active per text (a trained
SPLADE document has a few hundred), saved as ``MLMTransformer`` + ``SpladePooling("max")`` with
``SparseEncoder.save``. Its weights mean nothing: speed is what it measures, and every target's active dimensions
and values are held to ``SparseEncoder.encode``'s by the export's check. Speed: the median wall time of ``encode``
(a torch sparse tensor from each runner, as SparseEncoder returns) at b32 of ~60-word texts and b1 of ~10-word
texts, each runner with its defaults, in this one process. Writes
``benchmarks/results/sparse-<machine>-<date>.json`` and prints a table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import machine
from .static import RESULTS, loaded_runners, texts_of, timed_cells
from .workloads import SEED, sentences

TARGETS = ("onnx", "savedmodel", "tflite")
#: the share of the vocabulary active per text once the decoder bias is lowered
ACTIVE_SHARE = 0.01
MAX_SEQ_LENGTH = 256


def build_splade(folder: Path) -> Path:
    """Write the benchmark's SPLADE model (all-MiniLM-L6-v2's encoder, a seeded MLM head) to ``folder``."""
    import torch
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

    from exporter.model import default_model_path

    source = default_model_path()
    torch.manual_seed(SEED)
    model = BertForMaskedLM(BertConfig.from_pretrained(str(source))).eval()
    model.bert.load_state_dict(BertModel.from_pretrained(str(source)).state_dict(), strict=False)
    model.tie_weights()
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    with torch.no_grad():
        batch = tokenizer(sentences()[:64], padding=True, truncation=True, return_tensors="pt")
        pooled = torch.amax(model(**batch).logits * batch["attention_mask"][..., None], dim=1)
        model.get_output_embeddings().bias.sub_(float(torch.quantile(pooled.flatten(), 1 - ACTIVE_SHARE)))
    hf = folder / "_hf"
    model.save_pretrained(str(hf))
    tokenizer.save_pretrained(str(hf))
    modules = [MLMTransformer(str(hf), max_seq_length=MAX_SEQ_LENGTH), SpladePooling(pooling_strategy="max")]
    SparseEncoder(modules=modules, device="cpu").save(str(folder))
    shutil.rmtree(hf)
    return folder


def parity(out: Path) -> dict[str, Any]:
    """Return each target's parity figures, as the export's check recorded them in the manifest."""
    manifest = json.loads((out / "manifest.json").read_text())
    figures = {}
    for target in TARGETS:
        checked = manifest["targets"][target]["parity"]
        sparse = checked["sparse"]
        figures[target] = {"texts": sparse["texts"], "token_mismatches": checked["tokens"]["mismatches"],
                           "active_dims_compared": sparse["active_dims"], "set_mismatches": sparse["set_mismatches"],
                           "ties": sparse["ties"], "max_abs_diff": sparse["max_abs_diff"]}
    return figures


def speed(model: Path, out: Path, repeats: int) -> dict[str, Any]:
    """Return the median milliseconds per ``encode`` call of each runner, per cell, and the active dims per text."""
    from sentence_transformers import SparseEncoder

    reference = SparseEncoder(str(model), device="cpu")
    runners: dict[str, Callable[[list[str]], Any]] = {
        "sentence-transformers": lambda texts: reference.encode(texts, batch_size=len(texts)),
        **loaded_runners(out, TARGETS)}
    cells = timed_cells(runners, repeats)
    active = reference.encode(texts_of(32, 60), convert_to_sparse_tensor=False).count_nonzero(dim=1).float()
    return {"cells": cells, "active_dims_per_text_b32_medium": float(np.median(active.numpy()))}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("build/sparse-bench"), help="where the model and export go")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per runner and cell (median)")
    return parser


def main(argv: list[str] | None = None) -> int:
    import exporter

    args = _parser().parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    model, out = args.work / "model", args.work / "export"
    if not (model / "modules.json").exists():
        build_splade(model)
    export_s = None
    if not (out / "manifest.json").exists():
        start = time.perf_counter()
        exporter.export(model, out, targets=list(TARGETS), force=True)
        export_s = round(time.perf_counter() - start, 1)
    load, cpu = machine.Load(), time.process_time()
    load.start()  # while the runners are timed: what other processes took of the machine meanwhile
    timed = speed(model, out, args.repeats)
    result = {"date": datetime.date.today().isoformat(), "machine": machine.describe(), "model": str(model),
              "export_seconds": export_s, "parity": parity(out), **timed,
              "load": load.stop(time.process_time() - cpu)}
    path = RESULTS / f"sparse-{machine.slug(result['machine'], 'cpu')}-{result['date']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("parity", "cells", "active_dims_per_text_b32_medium", "load")},
                     indent=1))
    print(f"flags: {result['machine']['flags']}; written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
