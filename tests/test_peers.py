"""The peer runners (benchmarks/peers.py) without their envs: a peer that cannot run says why."""
from __future__ import annotations

import subprocess
import sys

from benchmarks.peers import ENVS, MAKE_TARGET, PEERS, PeerProcess, install, peer_specs


def _installed(peers_dir, env):
    folder = peers_dir / env
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text("")
    (folder / ".installed").write_text("\n".join(ENVS[env]))


def test_a_peer_whose_env_is_missing_is_skipped_naming_the_env_and_the_make_target(tmp_path):
    specs = peer_specs(tmp_path)
    assert [s.label for s in specs] == [p.label for p in PEERS]
    for spec, peer in zip(specs, PEERS, strict=True):
        assert spec.kind == "peer" and spec.skipped
        assert peer.env in spec.skipped and MAKE_TARGET in spec.skipped


PIP_CONFLICT = """Collecting optimum-onnx[onnxruntime]
ERROR: Cannot install sentence-transformers[onnx]==6.2.0 because these package versions have conflicting dependencies.

The conflict is caused by:
    sentence-transformers[onnx] 6.2.0 depends on transformers<6.0.0 and >=5.0.0
    optimum-onnx[onnxruntime] 0.1.0 depends on transformers<4.58.0 and >=4.36

To fix this you could try to:
1. loosen the range of package versions you've specified

ERROR: ResolutionImpossible: for help visit https://pip.pypa.io
"""


def test_a_failed_install_skips_with_what_pip_said(tmp_path):
    folder = tmp_path / "st-onnx"
    folder.mkdir()
    (folder / "install.log").write_text(PIP_CONFLICT)
    onnx = [s for s in peer_specs(tmp_path) if s.label.startswith("ST onnx")]
    assert onnx and all("st-onnx" in s.skipped and MAKE_TARGET in s.skipped for s in onnx)
    assert all("optimum-onnx[onnxruntime] 0.1.0 depends on transformers<4.58.0" in s.skipped for s in onnx)
    assert not any("loosen" in s.skipped for s in onnx)


def test_fastembed_needs_the_env_that_exports_its_onnx_file(tmp_path):
    _installed(tmp_path, "fastembed")
    (fastembed,) = [s for s in peer_specs(tmp_path) if s.label == "fastembed"]
    assert "st-onnx" in fastembed.skipped and MAKE_TARGET in fastembed.skipped
    _installed(tmp_path, "st-onnx")
    specs = {s.label: s for s in peer_specs(tmp_path)}
    assert specs["fastembed"].skipped is None and specs["ST onnx"].skipped is None
    assert "st-openvino" in specs["ST openvino"].skipped
    assert specs["ST onnx quint8 avx2"].precision == "int8" and specs["ST onnx quint8 avx2"].thresholds["min_cosine"]


def test_an_env_installed_with_the_same_requirements_is_left_as_it_is(tmp_path):
    _installed(tmp_path, "fastembed")
    assert install("fastembed", tmp_path) == 0
    assert (tmp_path / "fastembed" / "bin" / "python").read_text() == ""


def test_a_peer_process_answers_as_a_multiprocessing_process_does():
    process = PeerProcess(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]), log=None)
    assert process.is_alive() and process.exitcode is None
    process.join(0.01)
    process.kill()
    process.join(5)
    assert not process.is_alive() and process.exitcode == -9
