"""The command line and the Python API that mirrors it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import exporter
from exporter.cli import main
from exporter.errors import ParityError


def test_help_explains_every_option():
    out = subprocess.run([sys.executable, "-m", "exporter.cli", "--help"], capture_output=True, text=True).stdout
    for option in ("MODEL_DIR", "--output", "--targets", "--force", "--no-check", "--opset", "--no-variants",
                   "--quiet", "check OUT", "Exit codes", "--name", "--triton-op-library", "--triton-max-batch-size",
                   "--triton-tf-op-dir", "--tfserving-base-path", "triton", "tfserving"):
        assert option in out, option
    out = subprocess.run([sys.executable, "-m", "exporter.cli", "check", "--help"], capture_output=True,
                         text=True).stdout
    assert "--model" in out and "OUT" in out


def test_export_prints_the_summary_table(capsys, tiny_model, tmp_path):
    code = main([str(tiny_model("bert_uncased_mean_norm")), "-o", str(tmp_path / "out"), "--targets", "onnx"])
    captured = capsys.readouterr()
    assert code == 0
    header, rule, row = captured.out.splitlines()[:3]
    assert "token mismatches" in header and "min cosine" in header and "max abs diff" in header
    assert row.startswith("onnx") and "PASS" in row and "onnx/ (4 files)" in row  # 3 graphs and their weights
    assert "building onnx" in captured.err  # progress


def test_force_replaces_an_existing_export(tiny_model, tmp_path):
    model = tiny_model("bert_uncased_mean_norm")
    exporter.export(model, tmp_path / "out", targets="onnx", check=False)
    (tmp_path / "out" / "stale.txt").write_text("old")
    exporter.export(model, tmp_path / "out", targets="onnx", force=True, check=False)
    assert not (tmp_path / "out" / "stale.txt").exists() and (tmp_path / "out/onnx/model.onnx").exists()


def _keep_only(out, kept: str) -> None:
    """Drop every target but ``kept``, and its variant files, from an export (their own tests check them)."""
    import json

    from targets import get

    manifest = json.loads((out / "manifest.json").read_text())
    for name in set(manifest["targets"]) - {kept}:
        manifest["targets"].pop(name)
        shutil.rmtree(out / name)
    (out / "manifest.json").write_text(json.dumps(manifest))
    for variant in get(kept).variants(out):
        (out / variant.file).unlink()
    manifest["targets"][kept].pop("variants", None)  # no longer promised
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_check_passes_on_a_good_export_and_fails_on_a_swapped_graph(capsys, bundled_export, tiny_model, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(bundled_export.out, out)
    _keep_only(out, "onnx")  # the rest is checked in its own tests; here it would add minutes
    assert main(["check", str(out), "-q"]) == 0
    assert "PASS" in capsys.readouterr().out
    # what the manifest promises, checked without parity (check runs these first)
    from exporter.verify.promises import files_report, settings_report
    from exporter.model import read_model

    manifest = json.loads((out / "manifest.json").read_text())
    spec = read_model(manifest["source"]["path"])
    assert settings_report(out, manifest, spec)["passed"]
    manifest["tokenizer"]["max_seq_length"] = 512
    manifest["output"]["shape"] = ["batch", 768]
    manifest["targets"]["onnx"]["opset"] = 17
    failures = " | ".join(settings_report(out, manifest, spec)["failures"])
    assert "manifest.json tokenizer" in failures and "manifest.json output.shape" in failures and "opset: 17" in failures
    # one bit of one weight: the embeddings would stay within the bar, the bytes are not what the manifest recorded
    model = out / "onnx/model.onnx"
    promised = {"onnx/model.onnx": manifest["targets"]["onnx"]["files"]["onnx/model.onnx"]}
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1
    model.write_bytes(bytes(data))
    assert files_report(out, promised)["failures"] == [
        "onnx/model.onnx: sha256 differs from the manifest's: the file changed after the export"]
    model.write_bytes(b"garbage" + bytes(data[7:]))  # a broken header is named, not a protobuf traceback
    assert main(["check", str(out), "-q"]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "onnx/model.onnx: sha256 differs" in captured.err
    assert "onnx/model.onnx: not an ONNX model" in captured.err and "Traceback" not in captured.err
    other = exporter.export(tiny_model("bert_uncased_mean_norm"), tmp_path / "tiny", targets="onnx", check=False)
    shutil.copy(other.out / "onnx/model.onnx", out / "onnx/model.onnx")
    assert main(["check", str(out), "-q"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert not exporter.check(out).passed


def test_parity_miss_fails_the_export_and_writes_nothing(monkeypatch, capsys, tiny_model, tmp_path):
    import exporter.kinds.embedding as export_module

    class DriftingReference(export_module.ReferenceRunner):
        def encode(self, texts):
            out = super().encode(texts)
            return out + np.float32(1e-3)

    monkeypatch.setattr(export_module, "ReferenceRunner", DriftingReference)
    with pytest.raises(ParityError, match="max abs diff"):
        exporter.export(tiny_model("bert_uncased_mean_norm"), tmp_path / "out", targets="onnx")
    assert main([str(tiny_model("bert_uncased_mean_norm")), "-o", str(tmp_path / "out"), "--targets", "onnx"]) == 1
    assert "nothing was written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_api_mirrors_cli_targets_argument(tiny_model, tmp_path):
    result = exporter.export(tiny_model("bert_uncased_mean_norm"), tmp_path / "out", targets=["onnx"], check=False)
    assert [row.target for row in result.rows] == ["onnx"]
    assert result.manifest["targets"]["onnx"]["parity"].startswith("not checked")


def test_check_stages_locates_drift_per_stage(capsys, tiny_model, tmp_path):
    from exporter.verify.debug import drift_by_stage

    model = tiny_model("dense_tanh", dense=((20, "Tanh", True),), normalize=True)
    exporter.export(model, tmp_path / "out", targets="onnx", check=False)
    rows = drift_by_stage(model, ["Hello world", "Grüß Gott", ""], export_dir=tmp_path / "out")
    assert [r.stage for r in rows] == ["token ids", "stage0_Transformer", "stage1_Pooling", "stage2_Dense",
                                       "stage3_Normalize"]
    assert rows[0].note == "identical" and all(r.max_abs_diff < 1e-5 for r in rows[1:])
    assert main(["check", str(tmp_path / "out"), "--stages", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "stage2_Dense" in printed and "onnx/tokenizer.onnx" in printed and "1e-5" in printed
    assert "token mismatches" not in printed  # straight to the comparison, no parity run before it


def test_export_is_readable_by_another_user(tiny_model):
    """mkdtemp makes 0700 folders: renamed into place, a server running as another user could not read them."""
    import os
    import stat
    import subprocess
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="st-exporter-perms-"))
    try:
        root.chmod(0o755)
        result = exporter.export(tiny_model("bert_uncased_mean_norm"), root / "out", targets="onnx", check=False,
                                 variants=False)
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(result.out.stat().st_mode) == 0o777 & ~umask
        if os.getuid() == 0:  # read it as nobody, as a serving process would
            read = subprocess.run(["cat", str(result.out / "onnx/model.onnx")], capture_output=True,
                                  preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
            assert read.returncode == 0, read.stderr[-300:]
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_sigterm_and_killed_exports_leave_nothing_behind(tiny_model, tmp_path):
    """SIGTERM unwinds like Ctrl-C; a killed export's partial dir goes at the next export (its pid is dead)."""
    import signal
    import time

    model = tiny_model("bert_uncased_mean_norm")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / ".out.partial-stale"
    stale.mkdir()
    (stale / ".st-export.pid").write_text(str(dead.pid))
    foreign = tmp_path / ".out.partial-foreign"  # no pid file: not known to be ours, kept
    foreign.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "exporter.cli", str(model), "-o", str(tmp_path / "out"),
                                "--targets", "onnx", "--no-check"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "out").exists() and time.time() < deadline:
        partials = [p for p in tmp_path.glob(".out.partial-*") if p not in (stale, foreign)]
        if partials:
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.05)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "interrupted" in err, err[-500:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.partial-foreign"]


def _torch_is_loading(pid: int) -> bool:
    """Return whether process ``pid`` has mapped torch's C++ library (it is inside ``import torch``)."""
    try:
        return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_ctrl_c_while_importing_prints_one_line(tmp_path):
    """Ctrl-C while torch and transformers are still being imported: no traceback, exit 130."""
    import signal
    import time

    # timed from the moment torch's library is mapped, not from the start: on a loaded machine the light part
    # (Python, exporter, the CLI, its handlers) can take longer than a fixed delay, and a Ctrl-C before a
    # handler exists is Python's to answer. At some moments of torch's import a handled Ctrl-C still made
    # CPython kill itself with SIGINT at exit (cli.run says why)
    for delay in (0.0, 0.2, 0.5, 1.0):
        # a shell's background job inherits SIGINT ignored (and CPython then installs no handler): Ctrl-C's default
        process = subprocess.Popen([sys.executable, "-m", "exporter.cli", "-o", str(tmp_path / "out"),
                                    "--targets", "onnx"], stderr=subprocess.PIPE, text=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 60
        while not _torch_is_loading(process.pid) and process.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130 and "Traceback" not in err and "interrupted" in err, (delay, err[-500:])
        assert list(tmp_path.iterdir()) == []


def test_add_builds_named_targets_into_an_export_and_keeps_the_others(tiny_model, tmp_path, capsys):
    """``--force`` replaces everything; ``--add`` builds the named targets into an export of the same model and keeps
    the others' files untouched (hard links, never written); a non-empty OUT without either says what each does."""
    from exporter.verify.promises import target_files
    from exporter.runtime.manifest import read_manifest

    model, out = tiny_model("bert_uncased_mean_norm"), tmp_path / "out"
    exporter.export(model, out, targets="onnx", variants=False)
    before = {name: (out / name).stat().st_ino for name in target_files(read_manifest(out)["targets"]["onnx"])}
    assert main([str(model), "-o", str(out), "--targets", "savedmodel", "--no-variants", "-q"]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and "--add" in err and "keep its other targets" in err
    assert main([str(model), "-o", str(out), "--targets", "savedmodel", "--no-variants", "-q", "--add"]) == 0
    assert "kept from the existing export: onnx" in capsys.readouterr().out
    manifest = read_manifest(out)
    assert list(manifest["targets"]) == ["onnx", "savedmodel"] and manifest["targets"]["savedmodel"]["parity"]
    assert {name: (out / name).stat().st_ino for name in before} == before  # the same files, not rewritten
    assert exporter.check(out).passed  # every file still the one its manifest entry records
    other = tiny_model("distilbert_cased", arch="distilbert", vocab="cased", pooling=("mean",))
    assert main([str(other), "-o", str(out), "--targets", "onnx", "--add", "-q"]) == 2
    assert "another model" in capsys.readouterr().err and list(read_manifest(out)["targets"]) == ["onnx", "savedmodel"]
    assert main([str(model), "-o", str(out), "--targets", "onnx", "--no-variants", "-q", "--force"]) == 0
    assert list(read_manifest(out)["targets"]) == ["onnx"] and not (out / "savedmodel").exists()


def test_help_and_table_say_what_they_mean(capsys, tmp_path):
    """The usage lists every target; a target built only because another needs it is named as such, before the
    model is read; sizes are labelled in binary units."""
    from exporter.cli import _size

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "onnx,savedmodel,tflite,triton,tfserving" in capsys.readouterr().out
    assert main([str(tmp_path / "no-model"), "-o", str(tmp_path / "out"), "--targets", "onnx, tfserving"]) == 2
    err = capsys.readouterr().err
    assert "also building savedmodel: tfserving is built from it" in err and "model-not-found" in err
    assert (_size(5 * 1024 * 1024), _size(1536)) == ("5.0 MiB", "1.5 KiB")


def test_own_texts_join_the_parity_run_and_check_speaks_json(tiny_model, tmp_path, capsys):
    """``--texts FILE`` adds the user's texts (none of them in a corpus) to the proof, the manifest records their count
    and sha256, not the texts; ``check --json`` prints one document with the figures, the bars and the exit code."""
    import hashlib

    from exporter.verify.corpus import parity_texts

    model, out = tiny_model("bert_uncased_mean_norm"), tmp_path / "out"
    own = ["CC(=O)Oc1ccccc1C(=O)O aspirin", "def f(x):\n    return x ** 2", "brb lol 🙃🙃", "Ωμέγα-3 λιπαρά οξέα"]
    assert not set(own) & set(parity_texts())
    jsonl = tmp_path / "domain.jsonl"
    jsonl.write_text("\n".join(json.dumps(t, ensure_ascii=False) for t in own) + "\n", encoding="utf-8")
    assert main([str(model), "-o", str(out), "--targets", "onnx", "--no-variants", "-q", "--texts", str(jsonl)]) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    corpus = len(parity_texts())
    assert manifest["parity_texts"] == {"corpus": corpus, "user": {
        "file": "domain.jsonl", "sha256": hashlib.sha256(jsonl.read_bytes()).hexdigest(), "texts": len(own)}}
    assert manifest["targets"]["onnx"]["parity"]["tokens"]["texts"] == corpus + len(own)
    assert "aspirin" not in (out / "manifest.json").read_text()  # figures, never the texts
    plain = tmp_path / "chat.txt"
    plain.write_text("first line\nsecond line, ja\n", encoding="utf-8")
    assert main(["check", str(out), "--json", "--texts", str(plain)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["passed"] and document["exit_code"] == 0 and document["texts"]["user"]["texts"] == 2
    (entry,) = document["targets"]
    assert entry["target"] == "onnx" and entry["texts"] == corpus + 2 and entry["token_mismatches"] == 0
    assert entry["thresholds"]["min_cosine"] == 0.99999 and entry["min_cosine"] >= 0.99999 and entry["failures"] == []
    jsonl.write_text('"fine"\n1\n', encoding="utf-8")
    assert main(["check", str(out), "--json", "--texts", str(jsonl)]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)
    assert error["exit_code"] == 2 and "line 2: not a JSON string" in error["error"]["message"]
