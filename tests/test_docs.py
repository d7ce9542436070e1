"""README.md and docs/*.md: every snippet runs here, is parsed, or carries a tag saying why it cannot run.

- ``python`` blocks run for real against the session's export of the bundled model (``out`` and ``my-model``
  are links to it and to the model), except that ``exporter.export`` and ``exporter.check`` are replaced by
  stand-ins that check their arguments against the real signatures and return that export: an export or a
  full parity check takes minutes.
- ``sh`` blocks: ``make T`` needs a target ``T`` in the Makefile; ``st-export ... --help`` runs; any other
  ``st-export`` command goes through the real CLI up to the call of ``export`` / ``check`` (the parser accepts
  its flags, target names are known); a usage line (``[--flag ...]``) names only flags the parser has.
- ``text`` blocks that start with ``out/`` list an export: every path listed exists in the session export.
- Any other block needs ``<!-- not-run: REASON -->`` on the line before it (a server, Maven, Docker).

Also here: every relative link (and its ``#anchor``) resolves; the README keeps its set-up commands first and
stays under 250 lines; its speed headline matches the report in docs/speed.md.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->$")
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
OPTION = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None  # the reason of a not-run tag on the line before the fence

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Return the fenced code blocks of a Markdown page, with the not-run tag before each, if any."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, start, lang = [], None, ""
    for number, line in enumerate(lines, 1):
        fence = FENCE.match(line)
        if fence and start is None:
            start, lang = number, fence["lang"]
        elif line.strip() == "```" and start is not None:
            tag = NOT_RUN.match(lines[start - 2].strip()) if start >= 2 else None
            found.append(Block(page, start, lang, "\n".join(lines[start:number - 1]) + "\n",
                               tag["reason"] if tag else None))
            start = None
    assert start is None, f"{page}: the block opened at line {start} is not closed"
    return found


BLOCKS = [block for page in PAGES for block in blocks(page)]


def prose(page: Path) -> str:
    """Return a page without its code blocks (links inside code are not links)."""
    return re.sub(r"^```.*?^```\s*$", "", page.read_text(encoding="utf-8"), flags=re.DOTALL | re.MULTILINE)


def anchors(page: Path) -> set[str]:
    """Return GitHub's anchors for the headings of a page."""
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", prose(page), flags=re.MULTILINE):
        out.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return out


# ---------------------------------------------------------------- the pages as a whole


def test_pages_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/README.md", "docs/artifacts.md", "docs/cli.md", "docs/serving.md",
            "docs/tokenizers.md", "docs/speed.md", "docs/contributing.md"} <= names


def test_readme_starts_with_the_two_commands_and_stays_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail into docs/"
    first = BLOCKS[0]
    assert first.page.name == "README.md" and first.lang == "sh"
    commands = [shlex.split(line, comments=True) for line in first.code.splitlines()]
    assert commands == [["make", "export"], ["make", "test"]]
    assert not any(line.startswith("## ") for line in lines[:first.line]), "the set-up commands come first"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for match in LINK.finditer(prose(page)):
        target = match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: {file.name} has no heading #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / m["target"].partition("#")[0]).resolve() for m in LINK.finditer(prose(ROOT / "README.md"))}
    assert not [p for p in PAGES[1:] if p.resolve() not in linked]


def _cells(table_lines: list[str]) -> list[list[str]]:
    return [[c.strip().strip("*") for c in line.strip().strip("|").split("|")] for line in table_lines
            if line.startswith("|") and not line.startswith("|---")]


def test_readme_speed_headline_matches_docs_speed():
    """The README's figures are copied by hand from the run in docs/speed.md; `make bench` rewrites that run."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Speed\n", 1)[1].split("\n## ", 1)[0]
    header, *rows = _cells([line for line in section.splitlines() if line.startswith("|")])
    assert header == ["runner", "batch 1, short texts", "batch 32, medium texts", "min cosine"]
    report = (ROOT / "docs" / "speed.md").read_text(encoding="utf-8")
    report = report.split("<!-- bench:start -->", 1)[1].split("<!-- bench:end -->", 1)[0]
    speed, quality = {}, {}
    for cells in _cells(report.splitlines()):
        if len(cells) == 12 and cells[0] in {"short", "medium"}:  # text | batch | tokens | runner | ... | × reference
            speed[cells[0], cells[1], cells[3]] = cells[7]
        elif len(cells) == 8:  # runner | min cosine | ...
            quality[cells[0]] = cells[1]
    machine = re.search(r"\*\*Machine\*\*: ([^,]+), (\d+) cores", report)
    run = re.search(r"\*\*Run\*\*: (\d{4}-\d\d-\d\d)", report)
    assert machine and run and machine[1] in section and f"{machine[2]} cores" in section and run[1] in section
    for runner, short1, medium32, min_cosine in rows:
        assert (short1, medium32, min_cosine) == (f"{speed['short', '1', runner]}×",
                                                  f"{speed['medium', '32', runner]}×", quality[runner]), runner


# ---------------------------------------------------------------- the snippets


class Reached(Exception):
    """Raised by the stand-ins for export/check: the command got as far as the API call."""

    def __init__(self, name: str, bound: inspect.BoundArguments):
        super().__init__(name)
        self.name, self.arguments = name, bound.arguments


@pytest.fixture
def docs_dir(bundled_export, tmp_path, monkeypatch):
    """A working directory where ``out`` is the session export and ``my-model`` the bundled model."""
    from exporter.model import default_model_path

    (tmp_path / "out").symlink_to(bundled_export.out, target_is_directory=True)
    (tmp_path / "my-model").symlink_to(default_model_path(), target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _stand_in(name: str, *, result=None):
    """Return a stand-in for ``exporter.api.<name>``: binds its arguments to the real signature, then returns
    ``result`` (Python snippets) or raises :class:`Reached` (the CLI)."""
    import exporter.api
    from targets import available

    real = getattr(exporter.api, name)
    real = getattr(real, "real", real)  # a stand-in already in place keeps the real function
    signature = inspect.signature(real)

    def call(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        targets = bound.arguments.get("targets")
        names = targets.split(",") if isinstance(targets, str) else targets or []
        assert set(names) <= set(available()), f"unknown target in {targets!r}"
        if result is None:
            raise Reached(name, bound)
        return result

    call.real = real
    return call


def _help(argv: list[str]) -> str:
    from exporter.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0, argv
    return out.getvalue()


def _commands(code: str) -> list[str]:
    """Return the commands of a shell block: continuation lines joined, a usage line's indented lines too."""
    commands: list[str] = []
    for line in code.replace("\\\n", " ").splitlines():
        if line[:1].isspace() and commands and "[" in commands[-1]:
            commands[-1] += " " + line.strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            commands.append(line.strip())
    return commands


def _makefile_targets() -> set[str]:
    return set(re.findall(r"^([\w.-]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))


def _run_shell(command: str, monkeypatch) -> str:
    """Check one shell command; return how: "run" or "parsed"."""
    from exporter.cli import main

    words = shlex.split(command, comments=True)
    if words[0] == "make":
        assert set(words[1:]) <= _makefile_targets(), f"{command}: no such make target"
        return "parsed"
    assert words[0] == "st-export", f"{command!r}: the test runs make and st-export only; tag the block " \
                                    "<!-- not-run: REASON --> or teach tests/test_docs.py the command"
    argv = words[1:]
    sub = argv[:1] if argv[:1] == ["check"] else []
    if "[" in command:  # a usage line: the flags it names are the parser's
        known = set(OPTION.findall(_help(sub)))
        assert set(OPTION.findall(command)) <= known, f"{command}: unknown {set(OPTION.findall(command)) - known}"
        return "parsed"
    if "--help" in argv:
        assert "usage: st-export" in _help([a for a in argv if a != "--help"])
        return "run"
    monkeypatch.setattr("exporter.api.export", _stand_in("export"))
    monkeypatch.setattr("exporter.api.check", _stand_in("check"))
    with pytest.raises(Reached) as reached:
        main(argv)
    assert reached.value.name == ("check" if sub else "export"), command
    return "parsed"


def _check_listing(code: str, out: Path) -> None:
    lines = code.splitlines()
    assert lines[0] == "out/"
    stack: list[str] = []
    for line in lines[1:]:
        name = line.split(" #", 1)[0].strip()
        depth = (len(line) - len(line.lstrip())) // 2 - 1
        stack[depth:] = [name.rstrip("/")]
        assert (out / "/".join(stack)).exists(), f"{'/'.join(stack)} is not in an export of the bundled model"


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_snippet(block, request, monkeypatch):
    if block.not_run is not None:
        assert len(block.not_run) >= 10, f"{block.id}: say why the block is not run"
        pytest.skip(f"not run ({block.not_run})")
    if block.lang == "python":
        request.getfixturevalue("docs_dir")
        export = request.getfixturevalue("bundled_export")
        monkeypatch.setattr("exporter.api.export", _stand_in("export", result=export))
        monkeypatch.setattr("exporter.api.check", _stand_in("check", result=export))
        exec(compile(block.code, block.id, "exec"), {"__name__": "__docs__"})  # noqa: S102
    elif block.lang == "sh":
        assert all(_run_shell(command, monkeypatch) for command in _commands(block.code))
    elif block.lang == "text" and block.code.startswith("out/\n"):
        _check_listing(block.code, request.getfixturevalue("bundled_export").out)
    else:
        pytest.fail(f"{block.id}: a ```{block.lang} block this test cannot run: tag it <!-- not-run: REASON -->")
