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
    assert set(result.manifest["targets"]["onnx"]["parity"]["variants"]) == {"optimized", "int8"}
    return out


def test_benchmark_writes_a_report(tiny_onnx_export, tmp_path):
    results = tmp_path / "results"
    page = tmp_path / "docs" / "speed.md"  # as make bench writes docs/speed.md: links relative to the page
    page.parent.mkdir()
    page.write_text("# x\n<!-- bench:start -->\nold\n<!-- bench:end -->\nafter\n")
    assert main(["--export", str(tiny_onnx_export), "--quick", "--batch-sizes", "2", "--lengths", "short",
                 "--min-runs", "2", "--max-seconds", "0.1", "--results", str(results), "--readme", str(page)]) == 0
    (report_path,) = results.glob("*.json")
    report = json.loads(report_path.read_text())
    assert {"machine", "load", "runners", "cells", "quality", "goals", "mode", "device"} <= set(report)
    assert report["machine"]["physical_cores"] and "fp32_peak_gflops" in report["machine"]
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


def test_gpu_runners_say_why_they_cannot_run(tiny_onnx_export):
    from benchmarks.machine import gpu_name

    if gpu_name():
        pytest.skip("a GPU is present: tests/test_gpu.py runs the CUDA path")
    manifest = json.loads((tiny_onnx_export / "manifest.json").read_text())
    specs = cuda_specs(tiny_onnx_export, manifest)
    assert specs and all(s.skipped for s in specs)


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
