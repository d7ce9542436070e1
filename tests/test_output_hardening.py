"""The output directory, the manifest and ``check`` under bad or hostile input: one typed error (exit 2) or a FAIL
row naming the file, never a traceback, never a half-written or wrong OUT."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

import exporter
from exporter.cli import main
from exporter.runtime.manifest import read_manifest

MODEL = "bert_uncased_mean_norm"


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _snapshot(folder: Path) -> dict[str, str]:
    """Return {relative path: sha256} of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def onnx_export(tiny_model, tmp_path_factory) -> Path:
    """An onnx export (no variants, no parity run) of the tiny BERT; tests change copies of it."""
    out = tmp_path_factory.mktemp("hardening") / "export"
    exporter.export(tiny_model(MODEL), out, targets="onnx", variants=False, check=False)
    return out


@pytest.fixture
def copy_of_export(onnx_export, tmp_path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(onnx_export, out)
    return out


def _edited_json(path: Path, edit) -> None:
    path.write_text(json.dumps(edit(json.loads(path.read_text(encoding="utf-8")))), encoding="utf-8")


# what changes a model's output without changing its weights: (file edited, edit)
SAME_WEIGHTS_OTHER_BEHAVIOUR = {
    "default_prompt": ("config_sentence_transformers.json",
                       lambda c: {**c, "prompts": {"query": "query: "}, "default_prompt_name": "query"}),
    "max_seq_length": ("tokenizer_config.json", lambda c: {**c, "model_max_length": 16}),
    "pooling": ("1_Pooling/config.json", lambda c: {**c, "pooling_mode": "cls"}),
    "normalize_dropped": ("modules.json", lambda rows: rows[:-1]),
    "tokenizer_lowercase": ("tokenizer.json", lambda t: {**t, "normalizer": {**t["normalizer"], "lowercase": False}}),
}


@pytest.mark.parametrize("case", SAME_WEIGHTS_OTHER_BEHAVIOUR)
def test_add_refuses_a_model_with_the_same_weights_but_other_settings(case, capsys, tiny_model, copy_of_export,
                                                                      tmp_path):
    """Before: exit 0, and OUT's onnx and savedmodel embedded differently (cos 0.951 for another default prompt)."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model(MODEL), model)
    file, edit = SAME_WEIGHTS_OTHER_BEHAVIOUR[case]
    _edited_json(model / file, edit)
    before = _snapshot(copy_of_export)
    code, _, err = _run(capsys, model, "-o", copy_of_export, "--targets", "onnx", "--add", "--no-variants", "-q")
    assert code == 2 and "[output-exists]" in err and "another model" in err and "Traceback" not in err
    assert f"source.config_sha256: {file} differs" in err
    assert _snapshot(copy_of_export) == before and not list(tmp_path.glob(".out.*"))


def test_add_refuses_an_export_that_records_no_config_hashes(capsys, tiny_model, copy_of_export):
    """An export written before the config files were recorded cannot be told apart from one of other settings."""
    _edited_json(copy_of_export / "manifest.json",
                 lambda m: {**m, "source": {k: v for k, v in m["source"].items() if k != "config_sha256"}})
    code, _, err = _run(capsys, tiny_model(MODEL), "-o", copy_of_export, "--targets", "onnx", "--add", "-q")
    assert code == 2 and "source.config_sha256: not recorded" in err and "--force" in err


def test_add_takes_the_same_model_saved_again_by_a_newer_library(capsys, tiny_model, copy_of_export, tmp_path):
    """The library versions a config file records are not what the model computes: a copy saved again adds."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model(MODEL), model)
    _edited_json(model / "config_sentence_transformers.json",
                 lambda c: {**c, "__version__": {**c["__version__"], "sentence_transformers": "99.0.0"}})
    _edited_json(model / "config.json", lambda c: {**c, "transformers_version": "99.0.0"})
    code, out, err = _run(capsys, model, "-o", copy_of_export, "--targets", "onnx", "--add", "--no-variants",
                          "--no-check", "-q")
    assert code == 0 and list(read_manifest(copy_of_export)["targets"]) == ["onnx"], err


def _tensorflow_disk_full(path: str):
    """Return the error TensorFlow's file writers raise on ENOSPC (Status RESOURCE_EXHAUSTED, the C message)."""
    import tensorflow as tf

    return tf.errors.ResourceExhaustedError(
        None, None, f"{path}/variables/variables.data-00000-of-00001.tempstate1; {os.strerror(errno.ENOSPC)}")


@pytest.fixture
def savedmodel_writer_out_of_space(monkeypatch):
    """The SavedModel writer fails as on a full disk (its module is a stub: the converter is not what is tested)."""
    import tensorflow as tf

    import targets.savedmodel

    def full(module, path, signatures=None):
        raise _tensorflow_disk_full(path)

    monkeypatch.setattr(targets.savedmodel, "string_encoder_module",
                        lambda spec: SimpleNamespace(serving_default=None, tokenize=None))
    monkeypatch.setattr(tf.saved_model, "save", full)


def test_disk_full_while_writing_a_fresh_savedmodel_is_exit_2(capsys, savedmodel_writer_out_of_space, tiny_model,
                                                              tmp_path):
    """Before: a raw tensorflow ResourceExhaustedError."""
    code, _, err = _run(capsys, tiny_model(MODEL), "-o", tmp_path / "new/out", "--targets", "savedmodel", "-q")
    assert code == 2 and "[output-not-writable]" in err and "No space left on device" in err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_disk_full_while_adding_a_savedmodel_is_exit_2_and_out_stays(capsys, savedmodel_writer_out_of_space,
                                                                     tiny_model, copy_of_export):
    before = _snapshot(copy_of_export)
    code, _, err = _run(capsys, tiny_model(MODEL), "-o", copy_of_export, "--targets", "savedmodel", "--add", "-q")
    assert code == 2 and "[output-not-writable]" in err and "as it was" in err and "Traceback" not in err
    assert _snapshot(copy_of_export) == before and [p.name for p in copy_of_export.parent.iterdir()] == ["out"]


def test_out_of_space_is_recognised_from_every_writer(tmp_path):
    """One mapping for every target's writer: Python's OSError (onnx, tflite, triton, tfserving files) and
    TensorFlow's own error (the SavedModel writer); TensorFlow's OOM, of the same type, is not a full disk."""
    import tensorflow as tf

    from exporter.output import out_of_space_error

    out = tmp_path / "out"
    full = [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)),
            _tensorflow_disk_full(str(out))]
    assert all(out_of_space_error(exc, out).code == "output-not-writable" for exc in full)
    other = [OSError(errno.EACCES, "Permission denied"), ValueError("x"),
             tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[1000000000]")]
    assert [out_of_space_error(exc, out) for exc in other] == [None, None, None]


def test_triton_max_batch_size_beyond_int32_is_refused_by_the_cli(capsys, tmp_path):
    """Before: ``ValueError: Value out of range`` from protobuf after the other targets were built."""
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "model"), "-o", str(tmp_path / "out"), "--triton-max-batch-size=100000000000"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--triton-max-batch-size" in err and "2147483647" in err
    assert list(tmp_path.iterdir()) == []


# manifests that are JSON but not an st-export manifest: (edit, the field the error names)
WRONG_SHAPES = {
    "a_list": (lambda m: [], "the document: expected an object, found list"),
    "targets_a_number": (lambda m: {**m, "targets": 5}, "targets: expected an object, found int 5"),
    "source_missing": (lambda m: {k: v for k, v in m.items() if k != "source"}, "source: expected an object"),
    "a_file_without_sha256": (
        lambda m: {**m, "targets": {"onnx": {**m["targets"]["onnx"], "files": {
            name: {"bytes": row["bytes"]} for name, row in m["targets"]["onnx"]["files"].items()}}}},
        "targets.onnx.files.onnx/model.onnx.sha256: expected a string, found nothing (missing)"),
}


@pytest.mark.parametrize("case", WRONG_SHAPES)
def test_a_manifest_of_the_wrong_shape_is_named_by_add_check_and_check_json(case, capsys, tiny_model,
                                                                            copy_of_export):
    """Before: AttributeError, TypeError or KeyError tracebacks."""
    edit, field_message = WRONG_SHAPES[case]
    _edited_json(copy_of_export / "manifest.json", edit)
    before = _snapshot(copy_of_export)
    runs = {"add": [tiny_model(MODEL), "-o", copy_of_export, "--targets", "onnx", "--add", "--no-variants", "-q"],
            "check": ["check", copy_of_export, "-q"], "check --json": ["check", copy_of_export, "--json"]}
    for name, argv in runs.items():
        code, out, err = _run(capsys, *argv)
        assert code == 2 and "[invalid-manifest]" in err and field_message in err and "Traceback" not in err, name
        if name == "check --json":
            error = json.loads(out)["error"]
            assert error["code"] == "invalid-manifest" and field_message in error["message"]
    assert _snapshot(copy_of_export) == before


def _with_manifest_updated(out: Path, target: str, file: str) -> None:
    """Record ``file``'s new bytes in the manifest (a tamper that covers its tracks) and keep only ``target``."""
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["targets"] = {target: manifest["targets"][target]}
    data = (out / file).read_bytes()
    manifest["targets"][target]["files"][file] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (out / "manifest.json").write_text(json.dumps(manifest))


def _strings_garbled(path: Path) -> None:
    """Replace every string attribute of the graph's nodes (vocabularies, patterns) with bytes that are not UTF-8."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.STRING:
                attribute.s = b"\xff\xfe"
    onnx.save(model, str(path))


def _bytes_flipped(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), 97):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _batching_off(path: Path) -> None:
    import re

    path.write_text(re.sub(r"max_batch_size: \d+", "max_batch_size: 0", path.read_text()))


# (target, file changed with its manifest entry, the change); before: UnicodeDecodeError, DataLossError,
# ValueError: cannot reshape
TAMPERED = {
    "tokenizer_onnx_strings": ("onnx", "onnx/tokenizer.onnx", _strings_garbled),
    "savedmodel_variables": ("savedmodel", "savedmodel/variables/variables.data-00000-of-00001", _bytes_flipped),
    "triton_config_batching_off": ("triton", "triton/{name}_onnx/config.pbtxt", _batching_off),
}


@pytest.mark.parametrize("case", TAMPERED)
def test_a_file_changed_with_its_manifest_entry_is_a_fail_row_naming_it(case, capsys, mpnet_export, tmp_path):
    target, file, change = TAMPERED[case]
    out = tmp_path / "out"
    shutil.copytree(mpnet_export.out, out)
    file = file.format(name=next(out.glob("triton/*_onnx")).name.removesuffix("_onnx"))
    change(out / file)
    _with_manifest_updated(out, target, file)
    code, table, err = _run(capsys, "check", out, "-q")
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if "does not load or run" in line and file in line], err
    assert [line.split("|")[-1].strip() for line in table.splitlines() if line.startswith(f"{target} ")] == ["FAIL"]
    code, document, err = _run(capsys, "check", out, "--json")
    entries = {entry["target"]: entry for entry in json.loads(document)["targets"]}
    assert code == 1 and "Traceback" not in err and not entries[target]["passed"]
    assert [failure for failure in entries[target]["failures"] if "does not load or run" in failure and file in failure]


def _refused_pickle(model: Path) -> None:
    import torch

    (model / "model.safetensors").unlink()
    torch.save({"weights": shutil.copy}, model / "pytorch_model.bin")  # a function: not weights


def _module_outside_the_folder(model: Path) -> None:
    _edited_json(model / "modules.json", lambda rows: [rows[0], {**rows[1], "path": "../elsewhere"}, *rows[2:]])


@pytest.mark.parametrize("damage", [_refused_pickle, _module_outside_the_folder], ids=["refused_pickle", "dotdot"])
def test_check_refuses_a_bad_model_folder_as_export_does(damage, capsys, tiny_model, onnx_export, tmp_path):
    """Before: a raw traceback from SentenceTransformer loading the folder."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model(MODEL), model)
    damage(model)
    code, _, export_err = _run(capsys, model, "-o", tmp_path / "out", "--targets", "onnx", "-q")
    assert code == 2 and "Traceback" not in export_err
    for argv in (["check", onnx_export, "--model", model, "-q"], ["check", onnx_export, "--model", model, "--json"]):
        code, _, err = _run(capsys, *argv)
        assert code == 2 and err == export_err


@pytest.mark.parametrize("force", [False, True], ids=["empty_target", "force_onto_a_non_empty_target"])
def test_a_symlink_out_stays_and_its_target_gets_the_export(force, capsys, tiny_model, onnx_export, tmp_path):
    """Before: exit 0, the link replaced by a folder, its target as it was and a ``.link.old-*`` folder left."""
    real, parent = tmp_path / "real", tmp_path / "out"
    if force:
        shutil.copytree(onnx_export, real)
        (real / "stale.txt").write_text("from before")
    else:
        real.mkdir()
    parent.mkdir()
    (parent / "link").symlink_to(real)
    argv = [tiny_model(MODEL), "-o", parent / "link", "--targets", "onnx", "--no-variants", "--no-check", "-q"]
    code, _, err = _run(capsys, *argv, *(["--force"] if force else []))
    assert code == 0, err
    assert (parent / "link").is_symlink() and (parent / "link").resolve() == real.resolve()
    assert (real / "manifest.json").is_file() and not (real / "stale.txt").exists()
    assert [p.name for p in parent.iterdir()] == ["link"] and sorted(p.name for p in tmp_path.iterdir()) == [
        "out", "real"]


def test_a_reranker_file_changed_with_its_manifest_entry_is_named_not_its_model(capsys, reranker_exports, tmp_path):
    """check opens and runs each file as its kind is run (pairs for a reranker), so the culprit is the file changed:
    before, every reranker file was run with encode(), which failed on model.onnx first whatever had changed."""
    out = tmp_path / "out"
    shutil.copytree(reranker_exports("wordpiece")[2].out, out)
    _strings_garbled(out / "onnx/tokenizer.onnx")
    _with_manifest_updated(out, "onnx", "onnx/tokenizer.onnx")
    code, _, err = _run(capsys, "check", out, "-q")
    assert code == 1 and "Traceback" not in err
    named = [line for line in err.splitlines() if "does not load or run" in line]
    assert named and all("onnx/tokenizer.onnx does not load" in line for line in named), err
