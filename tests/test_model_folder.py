"""What a model folder may hold: no file or modules.json path that leads outside it, and a sequence length
the reference can run with; each refused with one clear message (exit 2) before anything is loaded."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest

import exporter
from exporter.cli import main
from exporter.errors import InvalidModelError, UnsupportedModelError
from exporter.model import default_model_path, read_model
from exporter.verify.reference import ReferenceRunner


def _run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


def _edit(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _set_module_path(model: Path, index: int, path: str) -> None:
    entries = json.loads((model / "modules.json").read_text())
    entries[index]["path"] = path
    (model / "modules.json").write_text(json.dumps(entries))


def _assert_refused(code: int, err: str, *lines: str) -> None:
    assert code == 2 and "[invalid-model]" in err and "Traceback" not in err, err
    assert "would read files outside its folder; refused before anything is loaded" in err
    for line in lines:
        assert line in err, err


def _forbid_the_reference(monkeypatch) -> None:
    """Fail the test if sentence-transformers is asked to load a model from here on."""
    def refuse(*args, **kwargs):
        raise AssertionError("sentence-transformers was called before the model folder was validated")
    monkeypatch.setattr("sentence_transformers.SentenceTransformer", refuse)


def test_module_path_out_of_the_folder_is_refused(capsys, copy_of, tmp_path, monkeypatch):
    """Before: the Pooling entry was followed to /etc/config.json ("file not found")."""
    model = copy_of()
    _set_module_path(model, 1, "../../../../etc")
    _forbid_the_reference(monkeypatch)
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    _assert_refused(code, err, "modules.json entry 1 has path '../../../../etc', which leaves the model folder",
                    "fix: copy the model into one folder")
    assert not (tmp_path / "out").exists()


def test_bundled_model_normalize_path_out_of_the_folder_is_refused(capsys, tmp_path, monkeypatch):
    """Before: sentence-transformers' raw ``ValueError: Invalid model path`` traceback, exit 1."""
    model = tmp_path / "bundled"
    shutil.copytree(default_model_path(), model)
    _set_module_path(model, 2, "../../../../etc")
    _forbid_the_reference(monkeypatch)
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    _assert_refused(code, err, "modules.json entry 2 has path '../../../../etc', which leaves the model folder")


def test_absolute_module_path_is_refused(capsys, copy_of, tmp_path):
    model = copy_of()
    _set_module_path(model, 1, str(model / "1_Pooling"))  # absolute, even into the folder: ST refuses it too
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    _assert_refused(code, err, f"modules.json entry 1 has path '{model / '1_Pooling'}', which leaves the model folder")


def test_module_folder_symlinked_out_of_the_folder_is_refused(capsys, copy_of, tmp_path):
    model = copy_of()
    shutil.move(model / "1_Pooling", tmp_path / "elsewhere")
    (model / "1_Pooling").symlink_to(tmp_path / "elsewhere")
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    _assert_refused(code, err, f"1_Pooling resolves to {tmp_path / 'elsewhere'}, outside the model folder")


def test_nested_module_folder_symlinked_out_of_the_folder_is_refused(copy_of, tmp_path):
    model = copy_of()
    (model / "modules").mkdir()
    shutil.move(model / "1_Pooling", tmp_path / "elsewhere")
    (model / "modules/1_Pooling").symlink_to(tmp_path / "elsewhere")
    _set_module_path(model, 1, "modules/1_Pooling")
    with pytest.raises(InvalidModelError, match=f"modules.json entry 1 has path 'modules/1_Pooling', which resolves "
                                                f"to {tmp_path / 'elsewhere'}, outside the model folder"):
        read_model(model)


def test_nul_in_a_module_path_is_refused(copy_of):
    model = copy_of()
    _set_module_path(model, 1, "1_Pooling\0")
    with pytest.raises(InvalidModelError, match=re.escape(r"modules.json entry 1 has path '1_Pooling\x00', with a NUL")):
        read_model(model)


def test_module_file_symlinked_out_of_the_folder_is_refused(capsys, copy_of, tmp_path):
    model = copy_of()
    shutil.move(model / "1_Pooling/config.json", tmp_path / "pooling.json")
    (model / "1_Pooling/config.json").symlink_to(tmp_path / "pooling.json")
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    _assert_refused(code, err, f"modules.json entry 1: 1_Pooling/config.json resolves to {tmp_path / 'pooling.json'}")


def test_tokenizer_symlinked_to_etc_passwd_is_refused(capsys, copy_of, tmp_path, monkeypatch):
    """Before: /etc/passwd was read and failed as JSON."""
    model = copy_of()
    (model / "tokenizer.json").unlink()
    (model / "tokenizer.json").symlink_to("/etc/passwd")
    _forbid_the_reference(monkeypatch)
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    _assert_refused(code, err, "tokenizer.json resolves to /etc/passwd, outside the model folder")


def test_check_validates_the_folder_before_the_reference_loads(copy_of, tmp_path, monkeypatch):
    """``st-export check OUT --model DIR`` reads the folder through the same entry point as an export."""
    model = copy_of()
    (model / "tokenizer.json").unlink()
    (model / "tokenizer.json").symlink_to("/etc/passwd")
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({  # the fields check reads, no target (none is run)
        "source": {"path": str(model), "weights_sha256": {}, "modules": []}, "tokenizer": {},
        "output": {"shape": [None, 8]}, "targets": {}}))
    _forbid_the_reference(monkeypatch)
    with pytest.raises(InvalidModelError, match="tokenizer.json resolves to /etc/passwd"):
        exporter.check(out, model_dir=model)


def test_symlinks_inside_the_folder_are_read(copy_of):
    model = copy_of()
    (model / "files").mkdir()
    for name in ("tokenizer.json", "model.safetensors"):
        shutil.move(model / name, model / "files" / name)
        (model / name).symlink_to(Path("files") / name)
    spec = read_model(model)
    reference = ReferenceRunner(model).model
    assert spec.tokenizer.describe()["vocab_size"] == len(reference.tokenizer)
    assert spec.transformer.max_seq_length == reference.max_seq_length


def _as_hub_snapshot(model: Path, cache: Path) -> Path:
    """Return ``model`` laid out as huggingface_hub caches it: snapshot files are links to ``../../blobs/<sha>``."""
    repo = cache / "models--org--tiny"
    snapshot = repo / "snapshots" / ("0" * 40)
    (repo / "blobs").mkdir(parents=True)
    for file in sorted(p for p in model.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, blob)
        link = snapshot / file.relative_to(model)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snapshot


def test_hub_cache_snapshot_links_into_its_blobs_are_read(tiny_model, tmp_path):
    snapshot = _as_hub_snapshot(tiny_model("bert_uncased_mean_norm"), tmp_path / "hub")
    assert os.readlink(snapshot / "tokenizer.json").startswith("../../blobs/")
    spec = read_model(snapshot)
    assert spec.transformer.max_seq_length == ReferenceRunner(snapshot).model.max_seq_length


def test_hub_cache_snapshot_link_out_of_its_blobs_is_refused(tiny_model, tmp_path):
    snapshot = _as_hub_snapshot(tiny_model("bert_uncased_mean_norm"), tmp_path / "hub")
    (snapshot / "tokenizer.json").unlink()
    (snapshot / "tokenizer.json").symlink_to("/etc/passwd")
    with pytest.raises(InvalidModelError, match=r"(?s)Hugging Face cache snapshot into its blobs/.*"
                                                r"tokenizer.json resolves to /etc/passwd"):
        read_model(snapshot)


def test_tokenizer_name_or_path_elsewhere_is_refused(copy_of, tmp_path):
    model = copy_of()
    _edit(model / "sentence_bert_config.json", tokenizer_name_or_path=str(tmp_path / "other"))
    with pytest.raises(UnsupportedModelError, match="tokenizer_name_or_path .* would load the tokenizer from there"):
        read_model(model)


# the sequence length: sentence-transformers takes max_seq_length as written and fails inside its run


def test_max_seq_length_0_is_refused(capsys, copy_of, tmp_path):
    """Before: a RuntimeError (tensor sizes 602 and 128) from inside the reference run, exit 1."""
    model = copy_of()
    _edit(model / "sentence_bert_config.json", max_seq_length=0)
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in err
    assert (f"{model / 'sentence_bert_config.json'}: max_seq_length 0 is not a positive number of tokens; set "
            "max_seq_length in sentence_bert_config.json to a whole number from 1 to 128, the positions of this bert "
            "model") in err
    assert not (tmp_path / "out").exists()


def test_max_seq_length_string_is_refused(capsys, copy_of, tmp_path):
    """Before: ``TypeError: '>' not supported between instances of 'str' and 'int'`` from transformers, exit 1."""
    model = copy_of()
    _edit(model / "sentence_bert_config.json", max_seq_length="64")
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in err
    assert "sentence_bert_config.json: max_seq_length '64' is not a whole number of tokens; set max_seq_length" in err


def test_tokenizer_model_max_length_beyond_the_positions_is_capped_as_the_reference_caps_it(copy_of):
    model = copy_of()
    _edit(model / "tokenizer_config.json", model_max_length=4096)
    reference = ReferenceRunner(model).model.max_seq_length
    assert read_model(model).transformer.max_seq_length == reference == 128


def test_tokenizer_model_max_length_beyond_roberta_positions_is_refused(copy_of):
    """sentence-transformers caps at max_position_embeddings (130 here), two rows more than RoBERTa positions
    (its ids start at 2), so its own run fails on a long text: ``index 130 is out of bounds``."""
    model = copy_of("roberta_mean_norm", arch="roberta", pooling=("mean",))
    _edit(model / "tokenizer_config.json", model_max_length=4096)
    assert ReferenceRunner(model).model.max_seq_length == 130
    with pytest.raises(UnsupportedModelError) as raised:
        read_model(model)
    assert ("tokenizer_config.json: model_max_length 4096 capped by sentence-transformers at max_position_embeddings "
            "130 is over the 128 positions of this roberta model; set max_seq_length in sentence_bert_config.json to "
            "a whole number from 1 to 128") in str(raised.value)


def test_processor_kwargs_model_max_length_wins_as_in_the_reference(copy_of):
    model = copy_of()
    _edit(model / "sentence_bert_config.json", max_seq_length=20, processor_kwargs={"model_max_length": 30})
    assert read_model(model).transformer.max_seq_length == ReferenceRunner(model).model.max_seq_length == 30


def test_legacy_config_file_name_is_read_as_the_reference_reads_it(copy_of):
    model = copy_of()
    (model / "sentence_bert_config.json").rename(model / "sentence_distilbert_config.json")
    _edit(model / "sentence_distilbert_config.json", max_seq_length=24)
    assert read_model(model).transformer.max_seq_length == ReferenceRunner(model).model.max_seq_length == 24
