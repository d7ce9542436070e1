"""The layering the import-linter contracts in pyproject.toml state, and what they cannot state.

``lint-imports`` (run by ``make test``) checks the contracts; this file checks the one rule
import-linter expresses only package by package: no module imports itself back through others,
anywhere in the project, lazy (function-level) imports counted.
"""
from __future__ import annotations

import grimp
import networkx as nx

PACKAGES = ("exporter", "targets", "benchmarks")


def test_no_module_imports_itself_back_through_others():
    graph = grimp.build_graph(*PACKAGES)
    imports = nx.DiGraph((module, imported) for module in graph.modules
                         for imported in graph.find_modules_directly_imported_by(module))
    circles = [sorted(c) for c in nx.strongly_connected_components(imports) if len(c) > 1]
    assert circles == [], f"import cycles (lazy imports count): {circles}"

