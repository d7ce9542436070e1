"""The benchmark runs on a tiny export and writes a well-formed report. No timing is asserted."""
from __future__ import annotations

import json
import re

import pytest

import exporter
from benchmarks.bench import main
from benchmarks.runners import cuda_specs


@pytest.fixture(scope="module")
def tiny_onnx_export(tiny_model, tmp_path_factory):
    """A tiny BERT's onnx target; exporting it also holds its variants to their bars (a miss raises)."""
    out = tmp_path_factory.mktemp("bench") / "export"
    result = exporter.export(tiny_model("bert_uncased_mean_norm"), out, targets="onnx")
    assert set(result.manifest["targets"]["onnx"]["parity"]["variants"]) == {"optimized", "int8", "int8w"}
    return out


@pytest.fixture(scope="module")
def tiny_reranker_export(reranker_exports, tmp_path_factory):
    """A tiny CrossEncoder (the bundled WordPiece vocab, one label) exported to the targets that hold its graphs.

    Unchecked: the same model's files, built alike, pass the export's parity run in conftest's reranker export
    (tests/test_reranker_serving.py reads it), and the benchmark scores every runner against CrossEncoder.predict.
    """
    _, model, _ = reranker_exports("wordpiece")
    out = tmp_path_factory.mktemp("bench_reranker") / "export"
    return exporter.export(model, out, targets="onnx,savedmodel,tflite", variants=False, check=False).out


@pytest.fixture(scope="module")
def bench_run(tiny_onnx_export, tiny_reranker_export, tmp_path_factory):
    """(results folder, the docs page) of one quick benchmark run: the embedding grid and the reranker workload."""
    root = tmp_path_factory.mktemp("bench_run")
    results = root / "results"
    page = root / "docs" / "speed.md"  # as make bench writes docs/speed.md: links relative to the page
    page.parent.mkdir()
    page.write_text("# x\n<!-- bench:start -->\nold\n<!-- bench:end -->\nafter\n")
    assert main(["--export", str(tiny_onnx_export), "--reranker-export", str(tiny_reranker_export), "--quick",
                 "--batch-sizes", "2", "--lengths", "short", "--min-runs", "2", "--max-seconds", "0.1",
                 "--results", str(results), "--readme", str(page)]) == 0
    return results, page


def test_benchmark_writes_a_report(bench_run):
    results, page = bench_run
    (report_path,) = results.glob("*.json")
    report = json.loads(report_path.read_text())
    assert {"machine", "load", "runners", "cells", "quality", "goals", "mode", "device"} <= set(report)
    assert report["machine"]["physical_cores"] and "fp32_peak_gflops" in report["machine"]
    assert set(report["machine"]["isa"]) == {"avx2", "avx512f", "avx512_vnni", "amx_int8", "amx_bf16"}
    assert report["machine"]["onnxruntime"] and report["machine"]["mlas_int8_path"]
    labels = {r["label"] for r in report["runners"]}
    assert {"sentence-transformers", "onnx", "onnx tokenizer", "onnx:optimized", "onnx:int8",
            "onnx encoder.onnx + HF tokenizer"} <= labels
    (cell,) = report["cells"]
    for runner in report["runners"]:
        if runner["skipped"]:
            assert isinstance(runner["skipped"], str) and runner["skipped"]
        else:
            row = cell["results"][runner["label"]]
            assert {"median_s", "p95_s", "runs", "speedup", "texts_per_s", "peak_rss_mb"} <= set(row)
    assert cell["results"]["onnx"]["tokenizer_share"] is not None and cell["flops"] > 0
    quality = {q["runner"]: q for q in report["quality"]}
    assert {"onnx", "onnx:optimized", "onnx:int8"} <= set(quality)
    assert all({"min_cosine", "mean_cosine", "retention_pairs", "passed"} <= set(q) for q in quality.values())
    markdown = report_path.with_suffix(".md").read_text()
    assert "| runner |" in markdown and "## Quality" in markdown and "## Goals" in markdown
    plots = sorted(results.glob("*.png"))
    assert len(plots) == 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in plots)
    text = page.read_text()
    assert "\nold\n" not in text and "| runner |" in text and text.endswith("after\n")
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert f"../results/{report_path.name}" in links and len(links) == 4  # .md, JSON, two plots
    assert all((page.parent / link).is_file() for link in links), links


def test_the_reranker_workload_is_timed_against_cross_encoder_predict_and_reported(bench_run, tiny_reranker_export):
    results, page = bench_run
    (report_path,) = results.glob("*.json")
    section = json.loads(report_path.read_text())["reranker"]
    assert section["export"]["path"] == str(tiny_reranker_export)
    labels = {r["label"] for r in section["runners"] if not r["skipped"]}
    assert {"CrossEncoder.predict", "onnx", "onnx tokenizer", "onnx encoder.onnx + HF tokenizer"} <= labels
    (cell,) = section["cells"]
    assert cell["length"] == "passage" and cell["batch"] == 2
    for label in labels:
        assert {"median_s", "speedup", "peak_rss_mb"} <= set(cell["results"][label]), label
    assert cell["results"]["onnx"]["tokenizer_share"] is not None and cell["flops"] > 0
    quality = {q["runner"]: q for q in section["quality"]}
    assert set(quality) == {label for label in labels if not re.fullmatch(r"\S+ tokenizer", label)} - {"CrossEncoder.predict"}
    # each runner's own bar on the parity pairs and the workload's pairs; the fp32 graphs' is |Δscore| ≤ 1e-5
    assert all(q["passed"] and q["pairs"] > 2 for q in quality.values()), quality
    assert all(quality[label]["max_abs_diff"] <= 1e-5 for label in ("onnx", "savedmodel") if label in quality), quality
    markdown = report_path.with_suffix(".md").read_text()
    assert "## Reranker" in markdown and "| pair | batch |" in markdown and "max abs Δscore" in markdown
    assert "### Reranker" in page.read_text()


def test_gpu_runners_say_why_they_cannot_run(tiny_onnx_export):
    from benchmarks.machine import gpu_name

    if gpu_name():
        pytest.skip("a GPU is present: tests/test_gpu.py runs the CUDA path")
    manifest = json.loads((tiny_onnx_export / "manifest.json").read_text())
    specs = cuda_specs(tiny_onnx_export, manifest)
    assert specs and all(s.skipped for s in specs)


def test_every_cpu_runner_of_a_reranker_export_scores_pairs(tiny_reranker_export):
    """The reranker's runners, built as workers build them, time one batch and score as CrossEncoder.predict does."""
    from benchmarks.runners import build, calls, cpu_specs
    from exporter.verify.reference import CrossEncoderRunner

    manifest = json.loads((tiny_reranker_export / "manifest.json").read_text())
    model_dir = manifest["source"]["path"]
    pairs = [["a query", "a document about it"], ["another query", "Hello world"], ["", "an empty query"]]
    expected = CrossEncoderRunner(model_dir).model.predict(pairs)
    for spec in cpu_specs(tiny_reranker_export, manifest):
        assert not spec.skipped, spec
        timed, quality = calls(spec, build(spec, tiny_reranker_export, model_dir, manifest))
        out = timed(pairs)
        rows = out["input_ids"] if spec.role == "tokenize-pairs" else out[0] if isinstance(out, tuple) else out
        assert len(rows) == len(pairs), spec.label
        if spec.role == "score":
            score, _ = quality([q for q, _ in pairs], [d for _, d in pairs], batch_size=1)
            bar = 1e-5 if spec.label in ("onnx", "savedmodel") else 1e-4 if spec.label == "tflite" else 0.05
            assert abs(score[:, 0] - expected).max() <= bar, spec.label


def test_every_cpu_runner_of_a_full_export_builds(bundled_export):
    """Workers build runners by name: each target's model, tokenizer and variants (a miss would only show as 'skipped')."""
    from benchmarks.runners import build, cpu_specs

    specs = cpu_specs(bundled_export.out, bundled_export.manifest)
    skipped = {s.label: s.skipped for s in specs if s.skipped}
    assert set(skipped) == {"triton", "tfserving"} and all("timed as" in reason for reason in skipped.values())
    labels = {s.label for s in specs}
    assert {"tflite", "tflite tokenizer", "tflite:fp16", "tflite:int8", "savedmodel tokenizer", "onnx:int8"} <= labels
    model_dir = bundled_export.manifest["source"]["path"]
    for spec in specs:
        if spec.skipped or spec.kind == "reference":
            continue
        runner = build(spec, bundled_export.out, model_dir, bundled_export.manifest)
        out = runner.tokenize(["Hello world"]) if spec.role == "tokenize" else runner.encode(["Hello world"])
        assert (out["input_ids"] if spec.role == "tokenize" else out).shape[0] == 1, spec.label


def test_reranker_peers_without_their_envs_are_skipped_naming_the_env_and_the_make_target(tmp_path):
    from benchmarks.peers import MAKE_TARGET, RERANK_PEERS, peer_specs

    specs = peer_specs(tmp_path, workload="reranker")
    assert [s.label for s in specs] == [p.label for p in RERANK_PEERS]
    for spec, peer in zip(specs, RERANK_PEERS, strict=True):
        assert spec.role == "score" and peer.env in spec.skipped and MAKE_TARGET in spec.skipped


def test_a_worker_that_died_is_a_worker_error_and_stopping_it_does_not_raise():
    import multiprocessing
    import subprocess
    import sys

    from benchmarks.measure import Worker, WorkerError, stop_workers
    from benchmarks.peers import PeerProcess
    from benchmarks.runners import RunnerSpec

    process = PeerProcess(subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]), log=None)
    process.join(60)
    ours, theirs = multiprocessing.Pipe()
    theirs.close()
    worker = Worker(RunnerSpec("dead", "model"), process, ours)
    with pytest.raises(WorkerError, match=r"died \(exit code 3\)"):
        worker.call(cmd="memory")
    stop_workers([worker])


def test_the_machine_records_each_isa_flag_present_or_absent_and_the_onnxruntime_version():
    from pathlib import Path

    import onnxruntime

    from benchmarks.machine import describe

    cpu_flags = next((line.split(":", 1)[1].split() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), [])
    machine = describe()
    assert machine["isa"] == {flag: flag in cpu_flags for flag in ("avx2", "avx512f", "avx512_vnni", "amx_int8",
                                                                   "amx_bf16")}
    assert machine["onnxruntime"] == onnxruntime.__version__
    assert machine["mlas_int8_path"] in {"amx", "avx512vnni", "avxvnni", "avx512core", "avx2", "sse"}


@pytest.mark.parametrize(("flags", "path"), [
    (["avx2", "avx512f", "avx512bw", "avx512_vnni", "amx_tile", "amx_int8", "amx_bf16"], "amx"),
    (["avx2", "avx512f", "avx512bw", "avx512_vnni"], "avx512vnni"),
    (["avx2", "avx_vnni"], "avxvnni"),
    (["avx2", "avx512f", "avx512bw"], "avx512core"),
    (["avx", "fma", "avx2"], "avx2"),
    ([], "sse"),
])
def test_the_mlas_int8_path_is_the_one_mlas_dispatches_to_for_the_flags(flags, path):
    from benchmarks.machine import mlas_int8_path

    assert mlas_int8_path(flags) == path


def test_the_report_header_names_each_isa_flag_and_the_onnxruntime_version():
    from benchmarks.machine import describe
    from benchmarks.report import _machine_line

    machine = describe()
    header = _machine_line({"machine": machine, "load": {"load_average": [0.5], "other_cpu_share": 0.0,
                                                         "other_cpu_s": 0.0},
                            "date": "2026-12-04", "mode": "quick", "device": "cpu"})
    for flag, present in machine["isa"].items():
        assert f"{flag} {'yes' if present else 'no'}" in header
    assert f"ONNX Runtime {machine['onnxruntime']}" in header and f"MLAS int8 path {machine['mlas_int8_path']}" in header


def test_the_hfjson_benchmark_graph_is_refused_for_wordpiece_by_its_tokenizer_class(tmp_path):
    """benchmarks/hfjson_tokenizer.py's one-node graph, on the bundled model: onnxruntime-extensions' HfJsonTokenizer
    picks its kernel by tokenizer_class and has none for BertTokenizer (docs/tokenizers.md; if this starts to load,
    run the benchmark again: the op may have become a candidate for WordPiece)."""
    import onnx

    from benchmarks.hfjson_tokenizer import hfjson_graph, refusal
    from exporter.model import default_model_path

    path = tmp_path / "hfjson.onnx"
    onnx.save(hfjson_graph(default_model_path()), str(path))
    assert "BertTokenizer" in refusal(path, ["a"])
