"""``exporter.load(OUT).encode``: SentenceTransformer.encode's interface on an export, and the light install.

The light install (``pip install st-exporter``, no ``[export]`` extra) is numpy, onnxruntime and
onnxruntime-extensions. The last test proves it in a fresh virtual environment whose site-packages
holds only those (and what onnxruntime imports: flatbuffers, packaging, protobuf) plus the exporter
package: no torch, transformers, sentence-transformers, TensorFlow or onnx. Beside it, every row of the
table of artifacts (``exporter/runtime/artifacts.py``) is opened in a fresh process of the full install,
which must not import a builder (``targets``, torch, transformers, sentence-transformers, onnx-tf) nor,
for the ONNX Runtime rows, TensorFlow.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import exporter
from exporter.errors import InvalidInputError
from exporter.runtime.artifacts import ARTIFACTS, artifact

ROOT = Path(__file__).resolve().parents[1]
LIGHT_PACKAGES = ("numpy", "numpy.libs", "onnxruntime", "onnxruntime_extensions", "flatbuffers", "packaging")
#: what running an artifact must never import: the builders and what only they need
BUILDERS = ("torch", "transformers", "sentence_transformers", "onnx_tf", "targets")


def _runs_without_tensorflow(row) -> bool:
    return not {"tensorflow", "tensorflow-text"} & set(row.needs)


#: the onnx targets the light install loads (their Runner needs ONNX Runtime alone)
LIGHT_TARGETS = [row.target for row in ARTIFACTS if not row.layout and _runs_without_tensorflow(row)]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_canary_model_is_what_onnx_helper_builds():
    """The extensions' canary graph is stored serialized (running needs no onnx package); this is that graph."""
    import base64

    import onnx
    from onnx import TensorProto, helper

    from exporter.runtime.ortx_runtime import CANARY_MODEL

    def const(name, value):
        return helper.make_tensor(name, TensorProto.STRING, [1], [value.encode()])

    nodes = [helper.make_node("StringRegexSplitWithOffsets", ["text", "pattern", "keep"], ["tokens", "b", "e", "rows"],
                              domain="ai.onnx.contrib"),
             helper.make_node("StringRegexReplace", ["text", "accent", "underscore"], ["replaced"],
                              domain="ai.onnx.contrib", global_replace=1)]
    graph = helper.make_graph(nodes, "canary", [helper.make_tensor_value_info("text", TensorProto.STRING, [None])],
                              [helper.make_tensor_value_info("tokens", TensorProto.STRING, [None]),
                               helper.make_tensor_value_info("replaced", TensorProto.STRING, [None])],
                              initializer=[const("pattern", r"(\s+|[,!])"), const("keep", "[,!]"),
                                           const("accent", r"\x{E9}"), const("underscore", "_")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(
        "ai.onnx.contrib", 1)], producer_name="st-exporter canary")
    model.ir_version = 10
    assert onnx.load_from_string(base64.b64decode(CANARY_MODEL)) == model


def test_load_encodes_like_sentence_transformers(bundled_export, bundled_reference, corpus):
    model = exporter.load(bundled_export.out)
    expected = bundled_reference.encode(corpus)
    got = model.encode(corpus)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert _cosines(got, expected).min() >= 0.99999 and np.abs(got - expected).max() <= 1e-5
    assert model.encode(corpus[0]).shape == (model.get_sentence_embedding_dimension(),)
    assert np.abs(model.encode(corpus[0]) - got[0]).max() < 1e-5
    assert np.allclose(np.linalg.norm(model.encode(corpus[:3], normalize_embeddings=True), axis=1), 1, atol=1e-6)
    assert len(model.encode(corpus[:3], convert_to_numpy=False)) == 3
    assert tuple(model.encode(corpus[:3], convert_to_tensor=True).shape) == (3, expected.shape[1])
    quantized = exporter.load(bundled_export.out, "onnx:int8", threads=1).encode(corpus, batch_size=7)
    assert _cosines(quantized, expected).min() >= 0.98
    for name in ("device", "output_value", "precision", "no_such_argument"):
        with pytest.raises(InvalidInputError, match=f"encode\\({name}="):
            model.encode(corpus[:1], **{name: None})
    with pytest.raises(InvalidInputError, match=r"texts\[1\] is bytes"):
        model.encode(["fine", b"Gr\xc3\xbc\xc3\x9f Gott"])
    with pytest.raises(InvalidInputError, match="target 'onnx:fp8'"):
        exporter.load(bundled_export.out, "onnx:fp8")


def test_light_install_runs_without_torch(bundled_export, bundled_reference, corpus, tmp_path):
    """A fresh virtual environment with only the light install's packages: load(OUT).encode equals the reference."""
    import sysconfig

    venv = tmp_path / "light"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    ours = Path(sysconfig.get_paths()["purelib"])
    for name in LIGHT_PACKAGES:
        (site / name).symlink_to(ours / name)
    (site / "google").mkdir()
    (site / "google" / "protobuf").symlink_to(ours / "google" / "protobuf")
    (site / "exporter").symlink_to(ROOT / "exporter")
    texts, result = tmp_path / "texts.json", tmp_path / "embeddings.npy"
    texts.write_text(json.dumps(corpus), encoding="utf-8")
    script = f"""
import importlib.util, json, sys
import numpy as np
missing = [m for m in ("torch", "transformers", "sentence_transformers", "tensorflow", "onnx", "tokenizers")
           if importlib.util.find_spec(m) is not None]
assert not missing, missing
import exporter
model = exporter.load({str(bundled_export.out)!r})
np.save({str(result)!r}, model.encode(json.loads(open({str(texts)!r}, encoding="utf-8").read())))
for target in {LIGHT_TARGETS!r}:
    assert exporter.load({str(bundled_export.out)!r}, target).encode(["a"]).shape[0] == 1, target
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tensorflow", "transformers", "onnx")))
"""
    run = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-1500:]
    assert run.stdout.strip() == "[]"
    got, expected = np.load(result), bundled_reference.encode(corpus)
    assert _cosines(got, expected).min() >= 0.99999 and np.abs(got - expected).max() <= 1e-5
    cli = subprocess.run([str(venv / "bin" / "python"), "-m", "exporter.cli", "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 2 and "pip install 'st-exporter[export]'" in cli.stderr, cli.stderr[-800:]
    assert "Traceback" not in cli.stderr


#: each row opened in turn in one fresh process, the ONNX Runtime rows first (TensorFlow is not loaded yet when
#: they are checked); prints {target: [forbidden modules loaded by then]}
OPEN_EVERY_ROW = """
import json, sys
import exporter
from exporter.runtime.artifacts import artifact, open_runner
out, builders, rows = sys.argv[1], sys.argv[2].split(","), json.loads(sys.argv[3])
found = {}
for target, tf_free in rows:
    row = artifact(target)
    runner = open_runner(out, target) if row.layout else exporter.load(out, target)
    assert runner.encode(["a"]).shape[0] == 1, target
    forbidden = builders + (["tensorflow"] if tf_free else [])
    found[target] = sorted({m.split(".")[0] for m in sys.modules} & set(forbidden))
print(json.dumps(found))
"""


def test_every_artifact_runs_without_the_builders(bundled_export):
    """A fresh process: load(OUT, t).encode(["a"]) for each row of the table whose file the export holds (the
    serving layouts through open_runner) imports no torch, transformers, sentence-transformers, onnx-tf or
    targets; the ONNX Runtime rows (opened first) no TensorFlow either."""
    rows = sorted((row for row in ARTIFACTS if row.path(bundled_export.out).exists()),
                  key=lambda row: not _runs_without_tensorflow(row))
    assert {row.target for row in rows} == {row.target for row in ARTIFACTS}  # the session export has every file
    args = json.dumps([[row.target, _runs_without_tensorflow(row)] for row in rows])
    run = subprocess.run([sys.executable, "-c", OPEN_EVERY_ROW, str(bundled_export.out), ",".join(BUILDERS), args],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-1500:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found == {row.target: [] for row in rows}


def test_table_covers_what_the_targets_write(bundled_export):
    """Every target the builders have and every variant they wrote into the session export (every target, every
    variant) is a row of the table, with the same file; every row belongs to a target."""
    import targets

    out = bundled_export.out
    names = targets.available()
    written = set(names)
    for name in names:
        assert artifact(name).path(out).exists(), name
        for variant in targets.get(name).variants(out):
            row = artifact(f"{name}:{variant.name}")
            written.add(row.target)
            assert (out / variant.file).resolve().is_relative_to(row.path(out).resolve()), (row, variant.file)
    assert written == {row.target for row in ARTIFACTS}
    assert set(bundled_export.manifest["targets"]) == set(names)
    with pytest.raises(InvalidInputError, match="available: onnx, onnx:optimized, onnx:int8, onnx:int8w, savedmodel, tflite"):
        exporter.load(out, "triton")  # load opens each graph from its own target's folder, not a layout's copy
