"""The test suite cleans up after itself: a passing run leaves nothing in the system temp dir."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_suite(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess, list[Path]]:
    """Run a one-file suite under the project's pytest settings; return the result and what it left in temp."""
    temp_root = tmp_path / "temp"
    temp_root.mkdir()
    (tmp_path / "test_sample.py").write_text(body)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
                             str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), str(tmp_path / "test_sample.py")],
                            capture_output=True, text=True, env={**os.environ, "PYTEST_DEBUG_TEMPROOT": str(temp_root)})
    return result, [p for p in temp_root.rglob("*") if p.is_file()]


SESSION_AND_TEST_FILES = '''
import pytest

@pytest.fixture(scope="session")
def export(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "model.onnx"
    out.write_bytes(b"x" * 1000)
    return out

def test_first(export, tmp_path):
    (tmp_path / "scratch").write_text("scratch")

def test_second(export):
    assert export.read_bytes() == b"x" * 1000  # still there: session fixtures live for the whole run
'''


def test_passing_run_leaves_no_temp_files(tmp_path):
    result, left = _run_suite(tmp_path, SESSION_AND_TEST_FILES)
    assert result.returncode == 0, result.stdout[-500:]
    assert left == []


def test_failing_test_keeps_its_files(tmp_path):
    result, left = _run_suite(tmp_path, SESSION_AND_TEST_FILES + "\ndef test_fails(tmp_path):\n"
                                                                  "    (tmp_path / 'evidence').write_text('x')\n"
                                                                  "    assert False\n")
    assert result.returncode == 1
    assert "evidence" in {p.name for p in left}
