"""docs/contributing.md lists the files each kind of addition touches; every registered entry has them.

The registries are walked (tokenizer families, architectures, module types, targets): an entry
without a listed file, its emitters, its row in the table of artifacts or its parity tests fails.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "contributing.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", GUIDE, re.S | re.M)
    assert match, f"docs/contributing.md has no section '## {title}'"
    return match.group(1)


def _files(title: str) -> list[str]:
    """Return the backticked paths that start the bullets of a section."""
    return re.findall(r"^- `([^`]+)`", _section(title), re.M)


def _table(title: str) -> dict[str, list[str]]:
    """Return {first cell: backticked values of the last cell} of a section's table."""
    rows = {}
    for line in _section(title).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 2 and not set(cells[0]) <= {"-"} and cells[0] not in ("family", "target"):
            rows[cells[0]] = [re.findall(r"`([^`]+)`", c) for c in cells[1:]]
    return rows


def _assert_listed(title: str, placeholder: str, name: str, file_name: str) -> None:
    for template in _files(title):
        if placeholder in template:
            path = ROOT / template.replace(placeholder, file_name)
            assert path.is_file(), f"{name}: {path.relative_to(ROOT)} (docs/contributing.md, {title}) is missing"
        else:
            assert f'"{name}"' in (ROOT / template).read_text(encoding="utf-8"), \
                f"{name}: {template} does not name it (docs/contributing.md, {title})"


def test_every_tokenizer_family_has_its_files_and_emitters():
    from exporter.tokenizers import families

    for name, family in families().items():
        _assert_listed("Adding a tokenizer family", "<family>", name, name)
        for graph, load in family.emitters.items():
            assert load().__module__ == f"exporter.tokenizers.{name}.emit_{graph}", f"{name}: its {graph} emitter"
        assert set(family.kernels) == set(family.emitters), f"{name}: a kernel named per emitter"


def test_every_tokenizer_family_has_a_tiny_model_and_parity_tests(tiny_model):
    from exporter.model import read_model
    from exporter.tokenizers import families
    from test_tiny_models import EXPORTED_BY_FIXTURE, MODELS

    table = _table("Adding a tokenizer family")
    assert set(table) == set(families()), "docs/contributing.md's family table lists every registered family"
    for name, ([model], tests) in table.items():
        assert read_model(tiny_model(model, **MODELS[model])).tokenizer.family == name
        for test in tests:
            text = (ROOT / test).read_text(encoding="utf-8")
            assert model in text or EXPORTED_BY_FIXTURE.get(model, model) in text, f"{test} does not test {model}"


def test_every_architecture_has_its_files():
    from exporter.architectures import supported
    from model_factory import ARCHITECTURES
    from test_tiny_models import MODELS

    for model_type in supported():
        _assert_listed("Adding an architecture", "<model_type>", model_type, model_type.replace("-", "_"))
        assert model_type in ARCHITECTURES
        assert any(options.get("arch", "bert") == model_type for options in MODELS.values())


def test_every_module_type_has_its_files():
    from exporter.modules import supported_class_names

    for class_name in supported_class_names():
        _assert_listed("Adding a module type", "<module>", class_name, class_name.lower())


def test_every_target_has_its_files_runner_and_tests():
    from exporter.runtime.artifacts import ARTIFACTS
    from targets import available

    tests = _table("Adding a target")
    assert set(tests) == set(available()), "docs/contributing.md's target table lists every registered target"
    for name in available():
        _assert_listed("Adding a target", "<target>", name, name)
        assert any(row.base == name for row in ARTIFACTS), f"{name}: no row in exporter/runtime/artifacts.py"
        for test in tests[name][0]:
            assert (ROOT / test).is_file(), f"{name}: {test} is missing"


def test_every_model_kind_has_its_files_and_tests():
    from exporter import kinds

    from exporter.runtime.loaded import LOADED
    from exporter.runtime.manifest import KINDS

    table = _table("Adding a model kind")
    assert kinds.names() == sorted(KINDS) == sorted(LOADED)
    for name in kinds.names():
        _assert_listed("Adding a model kind", "<kind>", name, name)
        assert name in table, f"{name}: no row in docs/contributing.md, Adding a model kind"
        for test in table[name][-1]:
            assert (ROOT / test).is_file(), f"{name}: {test} is missing"


@pytest.mark.parametrize("title", ["Adding a tokenizer family", "Adding an architecture", "Adding a module type",
                                   "Adding a model kind", "Adding a target"])
def test_the_guide_lists_files(title):
    assert _files(title), f"docs/contributing.md, {title}: no files listed"
