"""Proof that a model over protobuf's 2 GB limit exports to onnx and savedmodel, with its peak memory.

    .venv/bin/python -m benchmarks.large_model            # XLM-R large shape: 24 × 1024, 250k vocabulary
    .venv/bin/python -m benchmarks.large_model --layers 2 # the same path on a small model (a smoke run)

It builds a synthetic model of multilingual-e5-large's shape (XLM-RoBERTa, 24 layers of 1024,
16 heads, 4096 FFN, the real 250,002-piece e5 tokenizer, mean pooling, Normalize; random weights,
about 560 M parameters, 2.2 GB in fp32), runs ``st-export`` on it in a child process (the parity
check included: the embeddings are compared with ``SentenceTransformer.encode``) and records the
child's wall time, its peak resident memory (``ru_maxrss``) and the files' sizes in
``results/large-model-<date>.json``. It is a script and not a test: it takes minutes and about
10 GB of memory, over what ``make test`` may spend.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def build_large_model(folder: Path, *, layers: int, hidden: int, heads: int, intermediate: int,
                      max_seq_length: int) -> Path:
    """Write a sentence-transformers folder of XLM-R's architecture with random weights and the e5 tokenizer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    sys.path.insert(0, str(ROOT / "tests"))
    from model_factory import XLMR_TOKENIZER_CONFIG, xlmr_tokenizer_json  # the tests' offline model sources

    hf = folder / "_hf"
    hf.mkdir(parents=True)
    shutil.copy(xlmr_tokenizer_json(), hf / "tokenizer.json")
    (hf / "tokenizer_config.json").write_text(json.dumps(XLMR_TOKENIZER_CONFIG))
    tokenizer = AutoTokenizer.from_pretrained(str(hf))
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                              num_attention_heads=heads, intermediate_size=intermediate,
                              max_position_embeddings=514, type_vocab_size=1, pad_token_id=1)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(str(hf))
    modules = [Transformer(str(hf), max_seq_length=max_seq_length), Pooling(hidden, pooling_mode="mean"), Normalize()]
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    shutil.rmtree(hf)
    return folder


def _sizes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}


def run(args: argparse.Namespace) -> dict:
    from targets.onnx import PROTOBUF_LIMIT

    work = Path(args.work or tempfile.mkdtemp(prefix="st-large-"))
    model, out = work / "model", work / "export"
    started = time.perf_counter()
    build_large_model(model, layers=args.layers, hidden=args.hidden, heads=args.heads,
                      intermediate=args.intermediate, max_seq_length=args.max_seq_length)
    weights = sum(p.stat().st_size for p in model.rglob("*.safetensors"))
    print(f"built {model} ({weights / 2**30:.2f} GiB of weights) in {time.perf_counter() - started:.0f} s", flush=True)
    command = [str(Path(sys.executable).parent / "st-export"), str(model), "-o", str(out), "--force",
               "--targets", args.targets]
    started = time.perf_counter()
    code = subprocess.call(command)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    manifest = json.loads((out / "manifest.json").read_text()) if code == 0 else {}
    result = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {"architecture": "xlm-roberta", "layers": args.layers, "hidden": args.hidden,
                  "vocabulary": "multilingual-e5 (250,002 pieces)", "weights_bytes": weights,
                  "over_protobuf_limit": weights > PROTOBUF_LIMIT},
        "command": " ".join(command), "exit_code": code, "export_seconds": round(seconds, 1),
        "peak_rss_gib": round(peak_kib / 2**20, 2),
        "files": _sizes(out) if code == 0 else {},
        "parity": {name: {k: t.get("parity", {}).get("embeddings", {}).get(k) for k in ("min_cosine", "max_abs_diff",
                                                                                        "passed")}
                   for name, t in manifest.get("targets", {}).items()},
        "variants_skipped": manifest.get("targets", {}).get("onnx", {}).get("variants_skipped"),
    }
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=24, help="transformer layers (default 24, as e5-large)")
    parser.add_argument("--hidden", type=int, default=1024, help="hidden size (default 1024)")
    parser.add_argument("--heads", type=int, default=16, help="attention heads (default 16)")
    parser.add_argument("--intermediate", type=int, default=4096, help="feed-forward size (default 4096)")
    parser.add_argument("--max-seq-length", type=int, default=128, help="the model's max_seq_length (default 128)")
    parser.add_argument("--targets", default="onnx,savedmodel", help="st-export --targets (default onnx,savedmodel)")
    parser.add_argument("--work", default=None, help="folder for the model and the export (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the model and the export")
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON record")
    args = parser.parse_args(argv)
    result = run(args)
    Path(args.results).mkdir(parents=True, exist_ok=True)
    path = Path(args.results) / f"large-model-{dt.date.today().isoformat()}-{args.layers}x{args.hidden}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "files"}, indent=2))
    print(f"wrote {path}")
    return result["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
