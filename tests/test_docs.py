"""README.md and docs/: short README, links that resolve, and every snippet run or named as not runnable here.

A Python snippet runs in a fresh process in a folder where ``out`` is the session's export of the
bundled model. A snippet that cannot run here (a server, a JVM, minutes of exporting) carries
``<!-- not-run: why -->`` on the line before it; it still has to parse.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:<!-- not-run: (?P<why>[^>]+?) -->\n)?^```(?P<lang>\w*)\n(?P<code>.*?)^```", re.S | re.M)


def _snippets() -> list[tuple[str, str, str, str | None]]:
    """Return (page:line, language, code, why it does not run) of every fenced block."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text[:match.start("code")].count("\n")
            found.append((f"{page.relative_to(ROOT)}:{line}", match["lang"], match["code"], match["why"]))
    return found


SNIPPETS = _snippets()
EVERY_PYTHON = [s for s in SNIPPETS if s[1] == "python"]
PYTHON = [s for s in EVERY_PYTHON if s[3] is None]


def test_the_readme_is_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    first = FENCE.search(text)["code"]
    assert [line.split()[:2] for line in first.splitlines()] == [["make", "export"], ["make", "test"]]


def test_every_relative_link_resolves():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            assert (page.parent / target.split("#")[0]).exists(), f"{page.relative_to(ROOT)}: broken link {target}"


def test_the_speed_page_holds_the_benchmark_block_once():
    from benchmarks.report import README_END, README_START

    text = (ROOT / "docs" / "speed.md").read_text(encoding="utf-8")
    assert text.count(README_START) == 1 and text.count(README_END) == 1


def test_every_snippet_that_is_not_run_says_why():
    # the README's first block is make export / make test: CI runs both on a fresh clone; every Python block
    # is compiled below, run or not
    for where, lang, _, why in SNIPPETS[1:]:
        if lang != "python":
            assert why, f"{where}: a {lang or 'plain'} block that no test runs needs <!-- not-run: why --> before it"


@pytest.mark.parametrize("where, code", [(s[0], s[2]) for s in PYTHON], ids=[s[0] for s in PYTHON])
def test_python_snippet_runs(where, code, bundled_export, tmp_path):
    (tmp_path / "out").symlink_to(bundled_export.out, target_is_directory=True)
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, f"{where}:\n{run.stderr[-2000:]}"


IMPORT_FROM = re.compile(r"^\s*from\s+((?:exporter|targets)(?:\.\w+)*)\s+import\s+\(?([^)#\n]+)", re.M)
IMPORT = re.compile(r"^\s*import\s+((?:exporter|targets)(?:\.\w+)*)", re.M)


@pytest.mark.parametrize("where, code", [(s[0], s[2]) for s in EVERY_PYTHON], ids=[s[0] for s in EVERY_PYTHON])
def test_python_snippet_compiles_and_its_imports_exist(where, code):
    # every python block, run or not: it compiles, and `from exporter... / targets... import a, b` names exist
    import importlib

    compile(code, where, "exec")
    for module_name in IMPORT.findall(code):
        importlib.import_module(module_name)
    for module_name, names in IMPORT_FROM.findall(code):
        module = importlib.import_module(module_name)
        for name in (n.split(" as ")[0].strip() for n in names.split(",")):
            if name:
                assert hasattr(module, name), f"{where}: {module_name} has no {name}"


def _resolves(dotted: str) -> bool:
    """Whether ``a.b.c`` names a module, or an attribute chain under the longest importable module."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def test_code_the_pages_name_exists():
    # `exporter.runtime.onnx.OnnxRunner`-style names and exporter/.../x.py paths: moved code leaves no stale name
    for page in [*PAGES, ROOT / "benchmarks" / "README.md"]:
        text = page.read_text(encoding="utf-8")
        for dotted in sorted(set(re.findall(r"`((?:exporter|targets)(?:\.[A-Za-z_]\w*)+)", text))):
            assert _resolves(dotted), f"{page.relative_to(ROOT)}: {dotted} does not exist"
        for path in sorted(set(re.findall(r"\b((?:exporter|targets|benchmarks|tests)/[\w/]+\.py)\b", text))):
            assert (ROOT / path).exists(), f"{page.relative_to(ROOT)}: {path} does not exist"
