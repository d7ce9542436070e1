"""Proof that a model over protobuf's 2 GB limit exports to onnx and savedmodel, with its peak memory.

    .venv/bin/python -m benchmarks.large_model            # XLM-R large shape: 24 × 1024, 250k vocabulary
    .venv/bin/python -m benchmarks.large_model --layers 2 # the same path on a small model (a smoke run)
    .venv/bin/python -m benchmarks.large_model --shape qwen3-0.6b --speed  # Qwen3-Embedding-0.6B's shape, timed

It builds a synthetic model of multilingual-e5-large's shape (XLM-RoBERTa, 24 layers of 1024,
16 heads, 4096 FFN, the real 250,002-piece e5 tokenizer, mean pooling, Normalize; random weights,
about 560 M parameters, 2.2 GB in fp32), runs ``st-export`` on it in a child process (the parity
check included: the embeddings are compared with ``SentenceTransformer.encode``) and records the
child's wall time, its peak resident memory (``ru_maxrss``) and the files' sizes in
``results/large-model-<date>.json``. It is a script and not a test: it takes minutes and about
10 GB of memory, over what ``make test`` may spend.

``--shape qwen3-0.6b`` builds Qwen3-Embedding-0.6B's shape instead: a Qwen3 decoder of 28 layers of 1024,
16 query heads and 8 key/value heads of 128, 3072 FFN, 151,669 embedding rows (random weights, about 596 M
parameters, 2.4 GB in fp32), last-token pooling, Normalize, the tokenizer padding on the left and the
"query" instruction prompt, as the real model's files have them. Its tokenizer is the tests' byte-level BPE
(Qwen2's is another helper's work) with its vocabulary padded to the embedding's 151,669 rows by entries no
merge reaches. ``--speed`` then times the onnx export's ``encode`` against ``SentenceTransformer.encode``
(fp32, b1 short and b32 medium texts of benchmarks/workloads.py).
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


#: Qwen3-Embedding-0.6B's query instruction (config_sentence_transformers.json "prompts")
QWEN3_QUERY_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"
#: each shape's defaults (the command line overrides layers, hidden, heads, intermediate)
SHAPES = {
    "xlmr-large": dict(layers=24, hidden=1024, heads=16, intermediate=4096),
    "qwen3-0.6b": dict(layers=28, hidden=1024, heads=16, intermediate=3072, kv_heads=8, head_dim=128,
                       vocab_rows=151_669),
}


def build_qwen3_model(folder: Path, *, layers: int, hidden: int, heads: int, intermediate: int, kv_heads: int,
                      head_dim: int, vocab_rows: int, max_seq_length: int) -> Path:
    """Write a sentence-transformers folder of Qwen3-Embedding's layout with random weights (see the docstring)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import AutoTokenizer, Qwen3Config, Qwen3Model

    sys.path.insert(0, str(ROOT / "tests"))
    from model_factory import _tokenizer  # the tests' offline byte-level BPE

    hf = folder / "_hf"
    _tokenizer("roberta", hf)
    vocab = json.loads((hf / "vocab.json").read_text(encoding="utf-8"))
    vocab.update({f"<filler{i}>": i for i in range(len(vocab), vocab_rows)})
    (hf / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = AutoTokenizer.from_pretrained(str(hf))
    tokenizer.save_pretrained(str(hf))
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=vocab_rows, hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim,
                         intermediate_size=intermediate, max_position_embeddings=32_768, rope_theta=1_000_000.0,
                         tie_word_embeddings=True, use_cache=False)
    Qwen3Model(config).save_pretrained(str(hf))
    modules = [Transformer(str(hf), max_seq_length=max_seq_length), Pooling(hidden, pooling_mode="lasttoken"),
               Normalize()]
    SentenceTransformer(modules=modules, device="cpu", prompts={"query": QWEN3_QUERY_PROMPT, "document": ""}
                        ).save(str(folder))
    shutil.rmtree(hf)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings["padding_side"] = "left"  # as Qwen3-Embedding's tokenizer_config.json
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    return folder


def speed(model: Path, out: Path, runs: int) -> dict:
    """Return the median seconds of ``encode`` of the onnx export (each onnx file written: fp32, int8, int8w) and of
    SentenceTransformer, b1 short, b32 medium."""
    import statistics

    import exporter
    from benchmarks.workloads import Cell, WorkloadBuilder
    from exporter.verify.reference import ReferenceRunner

    reference = ReferenceRunner(model).model
    written = [t for t in ("onnx", "onnx:int8", "onnx:int8w") if t == "onnx" or (out / "onnx" / f"model_{t[5:]}.onnx").is_file()]
    encoders = [("sentence-transformers", reference.encode), *((t, exporter.load(out, t).encode) for t in written)]
    builder = WorkloadBuilder(lambda texts: [len(ids) for ids in reference.tokenizer(texts)["input_ids"]],
                              reference.max_seq_length)
    cells = {}
    for cell in (Cell("short", 1), Cell("medium", 32)):
        texts = builder.texts(cell)
        timed = {}
        for name, encode in encoders:
            encode(texts, batch_size=cell.batch)  # warm-up
            seconds = []
            for _ in range(runs):
                started = time.perf_counter()
                encode(texts, batch_size=cell.batch)
                seconds.append(time.perf_counter() - started)
            timed[name] = statistics.median(seconds)
        cells[cell.key] = {**builder.describe(texts), "median_seconds": {k: round(v, 4) for k, v in timed.items()},
                           "speedup": {t: round(timed["sentence-transformers"] / timed[t], 2) for t in written}}
        print(cell.key, cells[cell.key], flush=True)
    return cells


def _sizes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_size for p in sorted(out.rglob("*")) if p.is_file()}


def run(args: argparse.Namespace) -> dict:
    from targets.onnx import PROTOBUF_LIMIT

    work = Path(args.work or tempfile.mkdtemp(prefix="st-large-"))
    model, out = work / "model", work / "export"
    started = time.perf_counter()
    shape = {**SHAPES[args.shape], **{k: getattr(args, k) for k in ("layers", "hidden", "heads", "intermediate")
                                       if getattr(args, k) is not None}}
    if args.shape == "qwen3-0.6b":
        build_qwen3_model(model, **shape, max_seq_length=args.max_seq_length)
    else:
        build_large_model(model, **shape, max_seq_length=args.max_seq_length)
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
        "model": {"shape": args.shape, **shape,
                  "vocabulary": "multilingual-e5 (250,002 pieces)" if args.shape == "xlmr-large" else
                  f"the tests' byte-level BPE padded to {shape['vocab_rows']:,} entries",
                  "weights_bytes": weights, "over_protobuf_limit": weights > PROTOBUF_LIMIT},
        "command": " ".join(command), "exit_code": code, "export_seconds": round(seconds, 1),
        "peak_rss_gib": round(peak_kib / 2**20, 2),
        "files": _sizes(out) if code == 0 else {},
        "parity": {name: {k: t.get("parity", {}).get("embeddings", {}).get(k) for k in ("min_cosine", "max_abs_diff",
                                                                                        "passed")}
                   for name, t in manifest.get("targets", {}).items()},
        "variants_skipped": manifest.get("targets", {}).get("onnx", {}).get("variants_skipped"),
    }
    if args.speed and code == 0:
        from benchmarks import machine

        load, cpu = machine.Load(), time.process_time()
        load.start()  # what other processes took of the machine while the encoders were timed
        result["speed"] = speed(model, out, args.runs)
        result["machine"], result["load"] = machine.describe(), load.stop(time.process_time() - cpu)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def retime(args: argparse.Namespace) -> int:
    """Time the kept export in ``args.work`` and write the cells beside the machine and its load."""
    from benchmarks import machine

    work = Path(args.work or "")
    if not (work / "export" / "manifest.json").is_file():
        print(f"--retime needs an export kept by an earlier run: --work {work} holds no export/manifest.json",
              file=sys.stderr)
        return 2
    load, cpu = machine.Load(), time.process_time()
    load.start()
    cells = speed(work / "model", work / "export", args.runs)
    result = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "shape": args.shape,
              "retimed": str(work / "export"), "speed": cells, "machine": machine.describe(),
              "load": load.stop(time.process_time() - cpu)}
    path = Path(args.results) / f"large-model-{dt.date.today().isoformat()}-{args.shape}-retimed.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("speed", "load")}, indent=2))
    print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=list(SHAPES), default="xlmr-large",
                        help="the model's shape (default xlmr-large: multilingual-e5-large's)")
    parser.add_argument("--layers", type=int, default=None, help="transformer layers (default: the shape's, 24 / 28)")
    parser.add_argument("--hidden", type=int, default=None, help="hidden size (default: the shape's, 1024)")
    parser.add_argument("--heads", type=int, default=None, help="attention heads (default: the shape's, 16)")
    parser.add_argument("--intermediate", type=int, default=None,
                        help="feed-forward size (default: the shape's, 4096 / 3072)")
    parser.add_argument("--speed", action="store_true",
                        help="time the onnx export's encode against SentenceTransformer.encode (b1 short, b32 medium)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per cell with --speed (default 5)")
    parser.add_argument("--max-seq-length", type=int, default=128, help="the model's max_seq_length (default 128)")
    parser.add_argument("--targets", default="onnx,savedmodel", help="st-export --targets (default onnx,savedmodel)")
    parser.add_argument("--work", default=None, help="folder for the model and the export (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the model and the export")
    parser.add_argument("--results", default=str(RESULTS), help="folder for the JSON record")
    parser.add_argument("--retime", action="store_true",
                        help="only time (as --speed) the model and export an earlier --keep run left in --work, "
                             "without building or exporting again (on a quiet machine, after a loaded export)")
    args = parser.parse_args(argv)
    if args.retime:
        return retime(args)
    result = run(args)
    Path(args.results).mkdir(parents=True, exist_ok=True)
    path = Path(args.results) / f"large-model-{dt.date.today().isoformat()}-{args.shape}-{result['model']['layers']}x{result['model']['hidden']}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "files"}, indent=2))
    print(f"wrote {path}")
    return result["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
