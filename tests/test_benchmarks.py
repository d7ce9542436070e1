"""The benchmark code runs on a tiny export and writes a well-formed report (no timing is asserted)."""
from __future__ import annotations

import json

import exporter
from benchmarks.bench import main


def test_benchmark_writes_a_report(tiny_model, tmp_path):
    out = tmp_path / "export"
    exporter.export(tiny_model("bert_uncased_mean_norm"), out, targets=["onnx", "savedmodel"], check=False)
    assert main(["--export", str(out), "--batch-sizes", "2", "--lengths", "short", "--min-runs", "2",
                 "--max-seconds", "0.1", "--results", str(tmp_path / "results")]) == 0
    (report_path,) = (tmp_path / "results").glob("*.json")
    report = json.loads(report_path.read_text())
    assert {r["runner"] for r in report["rows"]} == {"sentence-transformers", "onnx", "savedmodel"}
    assert all(r["median_s"] > 0 and r["runs"] >= 2 and r["speedup"] > 0 for r in report["rows"])
    assert report["machine"]["cores"] and "| runner |" in (tmp_path / "results" / (report_path.stem + ".md")).read_text()
