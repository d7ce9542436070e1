"""ModernBERT (issue 27): a model of ModernBERT-base's shape, exported to onnx (+ optimized, int8, int8w), timed against
``SentenceTransformer.encode`` at b1 of ~10-word texts and b32 of ~60-word texts, as ``benchmarks.static`` times.

    python -m benchmarks.modernbert [--work DIR] [--repeats N] [--layers N]

The model: transformers' ``ModernBertModel`` with ModernBERT-base's configuration (22 layers of 768, 12 heads,
GeGLU 1152, a global layer every third, a 128-token local window, rotary bases 160,000 / 10,000), random weights,
CLS pooling (gte-modernbert-base's), on the bundled uncased WordPiece: 30,522 embedding rows where ModernBERT has
50,368 (the exporter refuses a tokenizer and an embedding matrix of other sizes; a row lookup costs the same), and
its byte-level BPE is a tokenizer of its own: the speed is the encoder's. Parity: the export's
own check. Writes ``benchmarks/results/modernbert-<machine>-<date>.json`` and prints the cells.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import time
from pathlib import Path
from typing import Any

from . import machine
from .static import loaded_runners, timed_cells

RESULTS = Path(__file__).with_name("results")
RUNNERS = ("onnx", "onnx:optimized", "onnx:int8", "onnx:int8w")
#: ModernBERT-base's config.json (answerdotai/ModernBERT-base)
BASE = dict(hidden_size=768, num_attention_heads=12, intermediate_size=1152, global_attn_every_n_layers=3,
            local_attention=128, global_rope_theta=160_000.0, local_rope_theta=10_000.0,
            max_position_embeddings=8192, norm_eps=1e-5, hidden_activation="gelu")


def build_model(folder: Path, *, layers: int, max_seq_length: int = 512) -> Path:
    """Write a ModernBERT-base-shaped SentenceTransformer (random weights, CLS pooling) to ``folder``; return it."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertTokenizerFast, ModernBertConfig, ModernBertModel

    from exporter.model import default_model_path

    tokenizer = BertTokenizerFast(vocab=str(default_model_path() / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = ModernBertConfig(**BASE, num_hidden_layers=layers, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                              cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                              bos_token_id=None, eos_token_id=None)
    hf = folder.with_name(folder.name + ".hf")
    ModernBertModel(config).save_pretrained(str(hf))
    tokenizer.save_pretrained(str(hf))
    modules = [Transformer(str(hf), max_seq_length=max_seq_length), Pooling(BASE["hidden_size"], pooling_mode="cls")]
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    shutil.rmtree(hf)
    return folder


def parity(out: Path) -> dict[str, Any]:
    """Return each artifact's parity figures as the export's check recorded them."""
    checked = json.loads((out / "manifest.json").read_text())["targets"]["onnx"]["parity"]
    figures = {"onnx": {k: checked["embeddings"][k] for k in ("min_cosine", "max_abs_diff")}
               | {"token_mismatches": checked["tokens"]["mismatches"]}}
    for name, variant in checked.get("variants", {}).items():
        figures[f"onnx:{name}"] = {k: variant.get(k) for k in ("min_cosine", "max_abs_diff")}
    return figures


def main(argv: list[str] | None = None) -> int:
    import exporter
    from exporter.verify.reference import ReferenceRunner

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("build/modernbert-bench"), help="model and export folder")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--layers", type=int, default=22, help="transformer layers (default 22, as ModernBERT-base)")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    model, out = args.work / f"model-{args.layers}", args.work / f"export-{args.layers}"
    export_s = None
    if not (out / "manifest.json").exists():
        shutil.rmtree(model, ignore_errors=True)
        build_model(model, layers=args.layers)
        start = time.perf_counter()
        exporter.export(model, out, targets=["onnx"], force=True)
        export_s = round(time.perf_counter() - start, 1)
    reference = ReferenceRunner(model)
    load, cpu = machine.Load(), time.process_time()
    load.start()  # while the runners are timed: what other processes took of the machine meanwhile
    runners = {"sentence-transformers": lambda texts: reference.encode(texts, batch_size=len(texts)),
               **loaded_runners(out, RUNNERS)}
    cells = timed_cells(runners, args.repeats)
    result = {"date": datetime.date.today().isoformat(), "machine": machine.describe(), "layers": args.layers,
              "model": {**BASE, "num_hidden_layers": args.layers, "tokenizer": "uncased WordPiece (30,522)",
                        "attn_implementation_reference": reference.model[0].model.config._attn_implementation},
              "export_seconds": export_s, "parity": parity(out), "cells": cells,
              "load": load.stop(time.process_time() - cpu)}
    path = RESULTS / f"modernbert-{machine.slug(result['machine'], 'cpu')}-{result['date']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("parity", "cells", "load", "export_seconds")}, indent=1))
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
