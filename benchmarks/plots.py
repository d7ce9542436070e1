"""PNG plots of a report: latency against batch size per text length, and quality against speed."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def latency_plot(report: dict[str, Any], path: Path) -> Path:
    """Plot median latency (ms) against batch size, one panel per text length, one line per runner."""
    plt = _pyplot()
    lengths = list(dict.fromkeys(c["length"] for c in report["cells"]))
    fig, axes = plt.subplots(1, len(lengths), figsize=(5.5 * len(lengths), 4.5), squeeze=False)
    for ax, length in zip(axes[0], lengths, strict=True):
        cells = [c for c in report["cells"] if c["length"] == length]
        runners = list(dict.fromkeys(name for c in cells for name, r in c["results"].items() if "median_s" in r))
        for name in runners:
            points = [(c["batch"], c["results"][name]["median_s"] * 1e3) for c in cells
                      if "median_s" in c["results"].get(name, {})]
            ax.plot(*zip(*points, strict=True), marker="o", label=name, ls="--" if name.endswith("tokenizer") else "-")
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="median latency (ms)",
               title=f"{length} texts (~{cells[0]['mean_tokens']:.0f} tokens)")
        ax.set_xticks([c["batch"] for c in cells], [str(c["batch"]) for c in cells])
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{report['model']} on {report['machine']['cpu']} ({report['device']}, {report['date']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def quality_plot(report: dict[str, Any], path: Path) -> Path:
    """Scatter each runner's speedup (largest medium cell) against 1 - its min cosine to the reference."""
    plt = _pyplot()
    medium = [c for c in report["cells"] if c["length"] == "medium"] or report["cells"]
    cell = max(medium, key=lambda c: c["batch"])
    quality = {q["runner"]: q for q in report["quality"] if "min_cosine" in q}
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, row in cell["results"].items():
        if "speedup" not in row or name not in quality:
            continue
        gap = max(1 - quality[name]["min_cosine"], 1e-12)
        ax.scatter(row["speedup"], gap)
        ax.annotate(name, (row["speedup"], gap), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.axhline(0.01, color="grey", ls="--", lw=0.8)
    ax.text(ax.get_xlim()[0], 0.011, "int8 bar (min cosine 0.99)", fontsize=7, color="grey")
    ax.set(yscale="log", xlabel=f"× reference ({cell['length']} texts, batch {cell['batch']})",
           ylabel="1 - min cosine to the reference (parity corpus)", title="quality against speed")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(report: dict[str, Any], folder: Path, stem: str) -> list[str]:
    """Write both plots as ``<stem>-latency.png`` and ``<stem>-quality.png``; return their paths."""
    return [str(latency_plot(report, folder / f"{stem}-latency.png")),
            str(quality_plot(report, folder / f"{stem}-quality.png"))]
