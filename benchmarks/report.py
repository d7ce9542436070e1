"""The report: one JSON file, a Markdown rendering of it, and the speed section of docs/speed.md."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f}" if seconds >= 1e-3 else f"{seconds * 1e3:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _isa_line(m: dict[str, Any]) -> str:
    """Return the ISA flags present/absent, ONNX Runtime's version and MLAS's int8 path (reports before
    issue 26 have none of these: empty)."""
    if "isa" not in m:
        return ""
    flags = ", ".join(f"{flag} {'yes' if has else 'no'}" for flag, has in m["isa"].items())
    ort = (f"; ONNX Runtime {m['onnxruntime']}, MLAS int8 path {m['mlas_int8_path']} (inferred from the flags)"
           if m.get("onnxruntime") else "; ONNX Runtime not installed")
    return f"**ISA**: {flags}{ort}.  \n"


def _machine_line(report: dict[str, Any]) -> str:
    m, load = report["machine"], report["load"]
    gemm = f", measured GEMM ceiling {m['gemm_gflops']:.0f} GFLOP/s" if m.get("gemm_gflops") else ""
    return (f"**Machine**: {m['cpu']}, {m['physical_cores']} cores ({m['logical_cpus']} logical), "
            f"{', '.join(m['flags']) or 'no AVX'}, GPU {m['gpu'] or 'none'}; fp32 peak "
            f"{m['fp32_peak_gflops']} GFLOP/s ({m['fp32_peak_formula']}){gemm}.  \n"
            f"{_isa_line(m)}"
            f"**Run**: {report['date']}, {report['mode']} mode, device {report['device']}; load average "
            f"{load['load_average'][0]} at the end; other processes used {_pct(load['other_cpu_share'])} of the "
            f"CPU during the run ({load['other_cpu_s']:.0f} CPU-s).")


#: above this share of the CPU taken by other processes, ratios are flagged as provisional
BUSY_SHARE = 0.10


def provisional(report: dict[str, Any]) -> str | None:
    """Return a warning when other processes took a noticeable share of the CPU during the run."""
    share = report["load"]["other_cpu_share"]
    if share <= BUSY_SHARE:
        return None
    return (f"Provisional: other processes used {100 * share:.0f}% of the CPU during this run; they slow "
            "torch's OpenMP threads far more than ONNX Runtime's, so ratios are not comparable with a quiet run.")


def _goals_table(report: dict[str, Any]) -> list[str]:
    warning = provisional(report)
    lines = ([f"> {warning}", ""] if warning else []) + ["| goal | holds | measured |", "|---|---|---|"]
    for goal in report["goals"].values():
        mark = {True: "yes", False: "**no**", None: "not measured"}[goal["holds"]]
        lines.append(f"| {goal['goal']} | {mark} | {goal['detail']} |")
    return lines


def _cell_rows(report: dict[str, Any], cell: dict[str, Any]) -> list[str]:
    rows = []
    for label, r in cell["results"].items():
        prefix = f"| {cell['length']} | {cell['batch']} | {cell['mean_tokens']} | {label} |"
        if "error" in r:
            rows.append(f"{prefix} failed: {r['error'][:80]} | | | | | | | |")
            continue
        share = "-" if r.get("tokenizer_share") is None else f"{100 * r['tokenizer_share']:.1f}%"
        gflops = "-" if r.get("gflops") is None else f"{r['gflops']:.1f} ({_pct(r.get('pct_peak'))})"
        rows.append(f"{prefix} {_ms(r['median_s'])} | {_ms(r['p95_s'])} | {r['texts_per_s']:.0f} | "
                    f"**{r['speedup']:.2f}** | {gflops} | {r.get('peak_rss_mb') or '-'} | {share} | "
                    f"{r['runs']}{'' if r['stable'] else '*'} |")
    return rows


def _speed_table(report: dict[str, Any], cells: list[dict[str, Any]] | None = None, unit: str = "text") -> list[str]:
    lines = [f"| {unit} | batch | tokens | runner | median ms | p95 ms | {unit}s/s | × reference | GFLOP/s (% peak) | "
             "peak RSS MB | tokenizer share | runs |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for cell in cells if cells is not None else report["cells"]:
        lines += _cell_rows(report, cell)
    return lines


def _quality_table(report: dict[str, Any]) -> list[str]:
    lines = ["| runner | min cosine | mean cosine | max abs diff | retention (pairs) | retention (corpus) | bar | "
             "passes |", "|---|---|---|---|---|---|---|---|"]
    for q in report["quality"]:
        if "error" in q:
            lines.append(f"| {q['runner']} | failed: {q['error'][:80]} | | | | | | |")
            continue
        bar = q["bar"] or {}
        bar_text = ", ".join(f"{k.replace('min_', '≥ ').replace('max_abs_diff', 'diff ≤')} {v}" for k, v in
                             bar.items() if v is not None)
        retention = "-" if q["retention_corpus"] is None else f"{q['retention_corpus']:.5f}"
        lines.append(f"| {q['runner']} | {q['min_cosine']:.6f} | {q['mean_cosine']:.6f} | {q['max_abs_diff']:.1e} | "
                     f"{q['retention_pairs']:.5f} | {retention} | {bar_text} | {'yes' if q['passed'] else '**no**'} |")
    return lines


def _score_table(section: dict[str, Any]) -> list[str]:
    lines = ["| runner | max abs Δscore | max abs Δlogit | pairs | batches | bar (Δ ≤) | passes |",
             "|---|---|---|---|---|---|---|"]
    for q in section["quality"]:
        if "error" in q:
            lines.append(f"| {q['runner']} | failed: {q['error'][:80]} | | | | | |")
            continue
        bar = q["bar"].get("max_abs_diff")
        lines.append(f"| {q['runner']} | {q['max_abs_diff']:.1e} | {q['max_logit_diff']:.1e} | {q['pairs']} | "
                     f"{'/'.join(q['batch_sizes'])} | {'-' if bar is None else f'{bar:.0e}'} | "
                     f"{'yes' if q['passed'] else '**no**'} |")
    return lines


def _reranker_intro(section: dict[str, Any]) -> list[str]:
    workload = section["workload"]
    refused = ["; ".join(why) if isinstance(why, list) else f"{name}: {why}"
               for name, why in section["export"]["skipped_targets"].items()]
    return [f"Model {section['model']}" + (f": {section['note']}" if section["note"] else "") + ". Pairs of a "
            f"query of {workload['query_words']} words and a passage of {workload['passage_words']} words (benchmarks/"
            f"sentences.txt, max_length {workload['max_length']}); `× reference` is CrossEncoder.predict's median "
            "(torch fp32, its Sigmoid included) over the runner's, same pairs, same run. Export targets: "
            f"{', '.join(section['export']['targets'])}" + (f"; not exported: {', '.join(refused)}" if refused else "")
            + "."]


def _reranker_markdown(report: dict[str, Any]) -> list[str]:
    """Return the report's Reranker section (speed, scores against CrossEncoder.predict, runners, skipped)."""
    section = report.get("reranker")
    if not section:
        return []
    skipped = [f"- {r['label']}: {r['skipped']}" for r in section["runners"] if r.get("skipped")]
    return ["## Reranker", "", *_reranker_intro(section), "", *_speed_table(section, section["cells"], "pair"), "",
            "Scores against CrossEncoder.predict (the parity pairs and the batch-32 workload):", "",
            *_score_table(section), "", "### Reranker runners", "", *_runner_table(section), "",
            *(["### Reranker runners skipped", "", *skipped, ""] if skipped else [])]


def _runner_table(report: dict[str, Any]) -> list[str]:
    lines = ["| runner | precision | threads | RSS before loading MB | peak while loading MB | notes |",
             "|---|---|---|---|---|---|"]
    for r in report["runners"]:
        if r.get("skipped"):
            continue
        threads = ", ".join(f"{k}={v}" for k, v in (r.get("threads") or {}).items())
        lines.append(f"| {r['label']} | {r['precision']} | {threads} | {r.get('baseline_rss_mb')} | "
                     f"{r.get('load_peak_rss_mb')} | {'; '.join(r.get('notes') or [])} |")
    return lines


def _peers_line(report: dict[str, Any]) -> list[str]:
    peers = [r["label"] for r in report["runners"] if r["kind"] == "peer"]
    if not peers:
        return []
    return ["", f"Peers ({', '.join(peers)}): other libraries' runners, each in its own environment "
                "(benchmarks/peers.py, `make bench-peers`) with its library's defaults, held to the bar of our "
                "artifact of the same precision; their notes (Runners) say what they do differently."]


def markdown(report: dict[str, Any], plots: list[str]) -> str:
    """Return the whole report as Markdown."""
    skipped = [f"- {r['label']}: {r['skipped']}" for r in report["runners"] if r.get("skipped")]
    out = [f"# Benchmark: {report['model']}", "", _machine_line(report), "",
           "Speed is `× reference`: the reference's median over the runner's, same texts, same run. "
           "Runners take turns within a cell (see benchmarks/README.md); `*` after the run count: "
           "the median had not settled to 2% when the cell's time ran out. GFLOP/s counts the "
           "encoder's matrix products at the batch's padded length (int8 runners: the same fp32 count).",
           *_peers_line(report), "", "## Goals", "", *_goals_table(report), "", "## Speed", "",
           *_speed_table(report), "",
           "## Quality (against the reference, parity corpus and sentence pairs)", "", *_quality_table(report), "",
           "## Runners", "", *_runner_table(report), ""]
    if skipped:
        out += ["## Skipped", "", *skipped, ""]
    out += _reranker_markdown(report)
    if plots:
        out += ["## Plots", "", *[f"![{Path(p).stem}]({Path(p).name})" for p in plots], ""]
    return "\n".join(out)


def readme_section(report: dict[str, Any], stem: str, plots: list[str], *,
                   results: str = "benchmarks/results") -> str:
    """Return the speed section for this (CPU) run: goals, the quick grid's rows, links.

    Args:
        results: the results folder as a link from the markdown file the section goes into.
    """
    from .workloads import QUICK_BATCH_SIZES, QUICK_LENGTHS

    link = f"{results}/{stem}"
    cells = [c for c in report["cells"] if c["batch"] in QUICK_BATCH_SIZES and c["length"] in QUICK_LENGTHS]
    return "\n".join([
        README_START, _machine_line(report), "", *_goals_table(report), "",
        *_speed_table(report, cells or report["cells"]), "",
        "Quality against the reference (parity corpus, sentence pairs), peers included:", "",
        *_quality_table(report), "", *_reranker_readme(report),
        f"Full report: [{stem}.md]({link}.md) ([JSON]({link}.json)); plots: "
        + ", ".join(f"[{Path(p).stem.rsplit('-', 1)[-1]}]({results}/{Path(p).name})" for p in plots),
        README_END])


def _reranker_readme(report: dict[str, Any]) -> list[str]:
    section = report.get("reranker")
    if not section:
        return []
    return ["### Reranker", "", *_reranker_intro(section), "", *_speed_table(section, section["cells"], "pair"), "",
            *_score_table(section), ""]


def update_readme(readme: Path, section: str) -> bool:
    """Replace the text between the bench markers in ``readme``; return False if the markers are missing."""
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        return False
    readme.write_text(pattern.sub(lambda _: section, text), encoding="utf-8")
    return True


def write(report: dict[str, Any], folder: Path, stem: str, plots: list[str]) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``folder``; return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=float) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report, plots), encoding="utf-8")
    return json_path, md_path
