"""model.onnx outside Python: a JVM runs it through ONNX Runtime's C API, with Java String[]s in.

``tests/jvm/OrtCApiRun.java`` (named string inputs in, every float output out: an embedding model's ``text``, a
reranker's ``query`` and ``document``) makes, through JNA (Debian's libjna-java), the C API calls ONNX
Runtime Java's JNI layer makes, against the ``libonnxruntime.so`` of the onnxruntime wheel, and
registers the onnxruntime-extensions library of the Python wheel. That library needs libpython's
symbols, so the JVM loads libpython as a plain shared library first (RTLD_GLOBAL); no interpreter
is started (the program reports ``Py_IsInitialized() == 0``). Each test skips, naming what is
missing, where the toolchain is not there. ``examples/java`` (the Maven project users copy) is
checked against the versions we test with, and built and run when its jars are in ~/.m2.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from exporter.runtime.ortx_runtime import library_path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(__file__).parent / "jvm" / "OrtCApiRun.java"
EXAMPLE = ROOT / "examples" / "java"
JNA_JAR = Path(os.environ.get("JNA_JAR", "/usr/share/java/jna.jar"))
MIN_COSINE, MAX_ABS_DIFF = 0.99999, 1e-5


def _ort_library() -> Path | None:
    import onnxruntime

    found = sorted((Path(onnxruntime.__file__).parent / "capi").glob("libonnxruntime.so*"))
    return found[0] if found else None


def _libpython() -> Path | None:
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return None
    path = Path(sysconfig.get_config_var("LIBDIR")) / sysconfig.get_config_var("INSTSONAME")
    return path if path.is_file() else None


def _missing() -> str | None:
    """Return why the JVM proof cannot run here, or None."""
    if not (shutil.which("java") and shutil.which("javac")):
        return "no JDK (java and javac) on PATH"
    if not JNA_JAR.is_file():
        return f"no JNA jar at {JNA_JAR}: apt-get install libjna-java (or set JNA_JAR)"
    if _ort_library() is None:
        return "the onnxruntime wheel has no capi/libonnxruntime.so"
    if _libpython() is None:
        return ("this Python has no shared libpython (built without --enable-shared); the extensions library of "
                "the Python wheel needs its symbols")
    return None


@pytest.fixture(scope="module")
def jvm(tmp_path_factory):
    """Return run(model, inputs, **flags) -> (report, {output name: float array}) for one JVM process per call;
    inputs maps each input name of the model to its strings."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    build = tmp_path_factory.mktemp("jvm")
    compiled = subprocess.run(["javac", "-d", str(build), "-cp", str(JNA_JAR), str(SOURCE)], capture_output=True,
                              text=True)
    assert compiled.returncode == 0, compiled.stderr

    def run(model: Path, inputs: dict[str, list[str]], **flags: str):
        call = Path(tempfile.mkdtemp(dir=build))
        command = ["java", "-cp", f"{JNA_JAR}{os.pathsep}{build}", "OrtCApiRun", "--ort", str(_ort_library()),
                   "--extensions", library_path(), "--preload", str(_libpython()), "--model", str(model),
                   "--out", str(call / "out")]
        for name, texts in inputs.items():
            file = call / f"{name}.b64"
            file.write_text("".join(base64.b64encode(t.encode("utf-8")).decode() + "\n" for t in texts))
            command += ["--input", f"{name}={file}"]
        for key, value in flags.items():
            command += [f"--{key}", value]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.strip().splitlines()[-1])
        return report, {name: np.fromfile(call / "out" / f"{name}.f32", dtype="<f4").reshape(shape)
                        for name, shape in report["shapes"].items()}

    return run


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_jvm_embeds_the_corpus_like_sentence_transformers(jvm, bundled_export, bundled_reference, corpus):
    report, outputs = jvm(bundled_export.out / "onnx/model.onnx", {"text": corpus})
    assert report["inputs"] == ["text"] and report["outputs"] == ["sentence_embedding"]
    assert report["shapes"] == {"sentence_embedding": [len(corpus), 384]} and report["python_initialized"] is False
    got = outputs["sentence_embedding"]
    expected = bundled_reference.encode(corpus)
    plain = [i for i, t in enumerate(corpus) if "\x00" not in t]
    assert _cosines(got[plain], expected[plain]).min() >= MIN_COSINE
    assert np.abs(got[plain] - expected[plain]).max() <= MAX_ABS_DIFF
    # char* strings end at U+0000, in this program as in ONNX Runtime Java: the rest of such a text is not seen
    cut = [i for i in range(len(corpus)) if i not in plain]
    assert cut, "the corpus should hold a text with U+0000"
    truncated = bundled_reference.encode([corpus[i].split("\x00")[0] for i in cut])
    assert np.abs(got[cut] - truncated).max() <= MAX_ABS_DIFF


def test_jvm_runs_the_triton_repository_model_from_its_own_folder(jvm, bundled_export, bundled_reference, corpus):
    """The Triton copy resolves its external data beside itself (Triton's reshape hands the backend [n])."""
    from targets.triton import model_folders

    texts = [t for t in corpus if "\x00" not in t][:12]
    report, outputs = jvm(model_folders(bundled_export.out)["onnx"] / "1/model.onnx", {"text": texts})
    assert report["shapes"] == {"sentence_embedding": [len(texts), 384]}
    assert np.abs(outputs["sentence_embedding"] - bundled_reference.encode(texts)).max() <= MAX_ABS_DIFF


def test_modified_utf8_strings_change_embeddings_silently(jvm, bundled_export, bundled_reference, corpus):
    """What examples/java guards against: JNI's modified UTF-8 for U+0000 and characters above U+FFFF."""
    risky = [t for t in corpus if any(c == "\x00" or ord(c) > 0xFFFF for c in t)]
    plain = [t for t in corpus if t not in risky][:4]
    _, outputs = jvm(bundled_export.out / "onnx/model.onnx", {"text": risky + plain}, encoding="modified-utf-8")
    expected = bundled_reference.encode(risky + plain)
    cosine = _cosines(outputs["sentence_embedding"], expected)
    assert cosine[len(risky):].min() >= MIN_COSINE  # BMP-only texts: modified UTF-8 is UTF-8
    assert cosine[:len(risky)].min() < 0.999, cosine[:len(risky)]


#: a few pairs through the reranker: several scripts, a character above U+FFFF, an empty document, an empty query
PAIRS = [("what is a reranker", "A model that scores a query and a document together."),
         ("¿qué es un reranker?", "Un modelo que puntúa pares de textos."),
         ("東京の天気は？", "今日の東京は晴れです。"),
         ("Привет, как дела?", "🙂 Всё хорошо, спасибо!"),
         ("an empty document", ""),
         ("", "an empty query")]


@pytest.fixture(scope="module")
def wordpiece_reranker(reranker_exports):
    """(model folder, onnx/model.onnx): a tiny WordPiece CrossEncoder (one label), conftest's export of it."""
    _, model, result = reranker_exports("wordpiece")
    return model, result.out / "onnx/model.onnx"


def test_jvm_scores_pairs_like_cross_encoder_predict(jvm, wordpiece_reranker):
    from torch.nn import Identity

    from exporter.verify.reference import CrossEncoderRunner

    model, onnx_model = wordpiece_reranker
    report, outputs = jvm(onnx_model, {"query": [q for q, _ in PAIRS], "document": [d for _, d in PAIRS]})
    assert sorted(report["inputs"]) == ["document", "query"] and report["python_initialized"] is False
    assert report["shapes"] == {"score": [len(PAIRS), 1], "logits": [len(PAIRS), 1]}
    reference = CrossEncoderRunner(model).model
    pairs = [list(pair) for pair in PAIRS]
    np.testing.assert_allclose(outputs["score"][:, 0], reference.predict(pairs), atol=MAX_ABS_DIFF, rtol=0)
    np.testing.assert_allclose(outputs["logits"][:, 0], reference.predict(pairs, activation_fn=Identity()),
                               atol=MAX_ABS_DIFF, rtol=0)


def _pom_versions() -> dict[str, str]:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    properties = ET.parse(EXAMPLE / "pom.xml").getroot().find("m:properties", ns)
    return {child.tag.split("}")[1]: child.text for child in properties}


def test_java_example_pins_the_runtime_versions_we_test_with(bundled_export):
    import importlib.metadata as md

    pom = _pom_versions()
    assert pom["onnxruntime.version"] == md.version("onnxruntime")
    assert pom["onnxruntime-extensions.version"] == md.version("onnxruntime-extensions")
    maven = bundled_export.manifest["min_runtime"]["maven"]
    assert maven["com.microsoft.onnxruntime:onnxruntime"] == pom["onnxruntime.version"]
    assert maven["com.microsoft.onnxruntime:onnxruntime-extensions"] == pom["onnxruntime-extensions.version"]
    source = (EXAMPLE / "src/main/java/ai/stexporter/example/EmbedTexts.java").read_text()
    for needed in ('"text"', '"sentence_embedding"', "registerCustomOpLibrary", "OnnxTensor.createTensor(env, texts)",
                   "requireUtf8Safe"):
        assert needed in source, needed


def test_java_example_builds_and_runs_when_its_jars_are_present(bundled_export, bundled_reference):
    pom = _pom_versions()
    m2 = Path.home() / ".m2/repository/com/microsoft/onnxruntime"
    jars = [m2 / f"{a}/{v}/{a}-{v}.jar" for a, v in (("onnxruntime", pom["onnxruntime.version"]),
                                                     ("onnxruntime-extensions", pom["onnxruntime-extensions.version"]))]
    missing = [str(j) for j in jars if not j.is_file()]
    if missing or not shutil.which("javac"):
        pytest.skip(f"Maven artifacts not in the local repository ({', '.join(missing)}); Maven Central is not "
                    "reachable from the test machine, so `mvn -q compile exec:java` cannot run here")
    build = bundled_export.out.parent / "java-example"
    classpath = os.pathsep.join(map(str, jars))
    sources = [str(p) for p in (EXAMPLE / "src/main/java").rglob("*.java")]
    assert subprocess.run(["javac", "-d", str(build), "-cp", classpath, *sources]).returncode == 0
    result = subprocess.run(["java", "-cp", f"{classpath}{os.pathsep}{build}", "ai.stexporter.example.EmbedTexts",
                             str(bundled_export.out / "onnx/model.onnx"), "Hello world"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    first = float(result.stdout.split("]")[1].split()[0])
    assert abs(first - float(bundled_reference.encode(["Hello world"])[0, 0])) <= 1e-5
