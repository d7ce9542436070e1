"""Bad input: one clear message, exit code 2, nothing written."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from exporter.cli import main
from exporter.errors import InvalidInputError
from exporter.runtime.runners import checked_texts


def _run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err


def _assert_nothing_written(parent):
    assert not [p.name for p in parent.iterdir() if p.name.startswith(".")], "temp dir left behind"
    assert not (parent / "out").exists()


def test_missing_directory(capsys, tmp_path):
    code, err = _run(capsys, str(tmp_path / "nope"), "-o", str(tmp_path / "out"))
    assert code == 2 and "no such model directory" in err and "Traceback" not in err
    _assert_nothing_written(tmp_path)


def test_not_a_model_directory(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    code, err = _run(capsys, str(tmp_path / "empty"), "-o", str(tmp_path / "out"))
    assert code == 2 and "no modules.json" in err


def test_corrupt_modules_json(capsys, copy_of, tmp_path):
    model = copy_of()
    (model / "modules.json").write_text("[{not json")
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "modules.json: not valid JSON" in err
    _assert_nothing_written(tmp_path)


def test_unsupported_module_lists_what_is_supported(capsys, copy_of, tmp_path):
    model = copy_of()
    entries = json.loads((model / "modules.json").read_text())
    entries.insert(1, {"idx": 1, "name": "lstm", "path": "1_LSTM", "type": "sentence_transformers.models.LSTM"})
    (model / "modules.json").write_text(json.dumps(entries))
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2
    assert "'sentence_transformers.models.LSTM'" in err and "supported: Dense, LayerNorm, Normalize, Pooling, Transformer" in err
    _assert_nothing_written(tmp_path)


def test_remote_code_module_is_refused(capsys, copy_of, tmp_path):
    model = copy_of()
    entries = json.loads((model / "modules.json").read_text())
    entries[1]["type"] = "my_package.pooling.Pooling"
    (model / "modules.json").write_text(json.dumps(entries))
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "'my_package.pooling.Pooling'" in err


def test_unsupported_architecture(capsys, copy_of, tmp_path):
    model = copy_of()
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "deberta-v2"
    (model / "config.json").write_text(json.dumps(config))
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "'deberta-v2'" in err and "supported: bert, distilbert" in err


def test_unsupported_pooling_mode_and_activation_reported_together(capsys, copy_of, tmp_path):
    model = copy_of("dense_tanh", dense=((20, "Tanh", True),), normalize=True)
    (model / "1_Pooling/config.json").write_text(json.dumps({"embedding_dimension": 32, "pooling_mode": "median"}))
    dense = json.loads((model / "2_Dense/config.json").read_text())
    dense["activation_function"] = "my.module.Swish"
    (model / "2_Dense/config.json").write_text(json.dumps(dense))
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "2 problem(s)" in err and "'median'" in err and "'my.module.Swish'" in err


def test_unsupported_tokenizer_family(capsys, copy_of, tmp_path):
    from tokenizers import Tokenizer, models

    model = copy_of()
    words = Tokenizer(models.WordLevel(vocab={"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    words.save(str(model / "tokenizer.json"))
    (model / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "tokenizer model 'WordLevel'" in err and "supported: BPE, Unigram, WordPiece" in err
    _assert_nothing_written(tmp_path)


def test_bpe_that_is_not_byte_level_is_refused_by_name(capsys, copy_of, tmp_path):
    """A BPE without RoBERTa's byte-level pre-tokenizer and alphabet: every difference named, nothing written."""
    from tokenizers import Tokenizer, models

    model = copy_of()
    bpe = Tokenizer(models.BPE(vocab={"a": 0, "b": 1, "ab": 2, "[UNK]": 3}, merges=[("a", "b")], unk_token="[UNK]",
                               dropout=0.1))
    bpe.save(str(model / "tokenizer.json"))
    (model / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "Traceback" not in err
    for expected in ("pre-tokenizer null; supported: ByteLevel", "BPE dropout 0.1",
                     "lacks 254 of the 256 byte characters"):
        assert expected in err, err
    _assert_nothing_written(tmp_path)


def test_corrupt_tokenizer(capsys, copy_of, tmp_path):
    model = copy_of()
    (model / "tokenizer.json").write_text("{broken")
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "cannot load the tokenizer" in err and "Traceback" not in err


def test_output_not_empty_needs_force(capsys, tiny_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    code, err = _run(capsys, str(tiny_model("bert_uncased_mean_norm")), "-o", str(out))
    assert code == 2 and "--force" in err
    assert (out / "keep.txt").read_text() == "user data"


def test_unwritable_output(capsys, tiny_model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = _run(capsys, str(tiny_model("bert_uncased_mean_norm")), "-o", str(blocker / "out"))
    assert code == 2 and "cannot write" in err


def test_unknown_target(capsys, tiny_model, tmp_path):
    code, err = _run(capsys, str(tiny_model("bert_uncased_mean_norm")), "-o", str(tmp_path / "out"),
                     "--targets", "onnx,coreml")
    assert code == 2 and "'coreml'" in err and "available: onnx" in err
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("folder", ["nope", "empty"])
def test_check_and_load_name_a_missing_export_alike(capsys, tmp_path, folder):
    """The same missing or empty export folder: check() and load() raise the same error (the export is missing,
    not the model); the CLI prints its code and exits 2."""
    import exporter
    from exporter.errors import ArtifactNotFoundError

    out = tmp_path / folder
    if folder == "empty":
        out.mkdir()
    errors = []
    for call in (exporter.check, exporter.load):
        with pytest.raises(ArtifactNotFoundError, match="no manifest.json") as raised:
            call(out)
        errors.append(str(raised.value))
    assert errors[0] == errors[1]
    code, err = _run(capsys, "check", str(out))
    assert code == 2 and "[artifact-not-found]" in err and "no manifest.json" in err and "Traceback" not in err


def test_runner_rejects_wrong_input_types():
    with pytest.raises(InvalidInputError, match="wrap it as"):
        checked_texts("one string")
    with pytest.raises(InvalidInputError, match=r"texts\[1\] is int"):
        checked_texts(["ok", 3])
    with pytest.raises(InvalidInputError, match="not valid Unicode"):
        checked_texts(["lone surrogate \ud800"])
    # what the raw onnxruntime binding would embed as str(x): b"Gr\xc3\xbc\xc3\x9f Gott" → "b'Gr\\xc3…'"
    for bad, kind in ((b"Gr\xc3\xbc\xc3\x9f Gott", "bytes"), (None, "NoneType"), (1.5, "float")):
        with pytest.raises(InvalidInputError, match=rf"texts\[0\] is {kind}, expected str"):
            checked_texts(np.array([bad, "x"], dtype=object))


@pytest.mark.parametrize("given, named", [
    ({"text": "hello world"}, "dict"), ({"hello world", "bye"}, "set"), (frozenset({"a"}), "frozenset"),
    ({"text": "hello world"}.keys(), "dict_keys"), (b"abc", "bytes"), (bytearray(b"abc"), "bytearray")])
def test_dict_set_and_bytes_inputs_are_refused_naming_what_was_given(given, named):
    """A dict would embed its keys (cos 0.876 to the intended text), a set gives rows in arbitrary order, bytes
    would be read as ints: each is refused, naming the type given and what to pass instead."""
    with pytest.raises(InvalidInputError, match=rf"got a? ?{named}\b") as raised:
        checked_texts(given)
    assert any(fix in str(raised.value) for fix in ("decode", "values()", "sorted(...)"))


def test_encode_of_a_dict_or_bytes_is_refused_by_the_loaded_export(bundled_export):
    """The probe's cases, through ``exporter.load(OUT).encode``: refused, never the embedding of the keys."""
    import exporter

    model = exporter.load(bundled_export.out)
    with pytest.raises(InvalidInputError, match=r"a dict \(a mapping\): iterating it would embed its keys"):
        model.encode({"text": "hello world"})
    with pytest.raises(InvalidInputError, match="got bytes: decode it first"):
        model.encode(b"abc")
    with pytest.raises(InvalidInputError, match=r"texts\[1\] is bytes, expected str: decode it first"):
        model.encode(["ok", b"abc"])
    # the ordered iterables a user may hold still work, and give the rows of the list
    listed = model.encode(["hello world", "bye"])
    np.testing.assert_array_equal(model.encode(iter(["hello world", "bye"])), listed)
    np.testing.assert_array_equal(model.encode({"text": "hello world", "other": "bye"}.values()), listed)


def test_max_seq_length_over_the_positions_is_refused(capsys, copy_of, tmp_path):
    """SentenceTransformer would index past the position table on a long text; refuse before writing."""
    model = copy_of()
    (model / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 129}))  # the table holds 128
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "max_seq_length 129 is over the 128 positions of this bert model" in err
    _assert_nothing_written(tmp_path)


def test_a_target_the_tokenizer_family_cannot_serve_is_refused_by_name(capsys, tiny_model, tmp_path, monkeypatch):
    """A family without a TF graph: savedmodel and tflite are refused before anything is written, onnx works."""
    import dataclasses

    from exporter.tokenizers.shared import family
    from exporter.tokenizers.wordpiece import FAMILY

    monkeypatch.setitem(family._REGISTERED, FAMILY.name, dataclasses.replace(FAMILY, graphs=("onnx",)))
    model = str(tiny_model("bert_uncased_mean_norm"))
    code, err = _run(capsys, model, "-o", str(tmp_path / "out"), "--targets", "onnx,tflite")
    assert code == 2 and "savedmodel: the wordpiece tokenizer has no tf graph" in err
    assert "tflite: the wordpiece tokenizer has no tflite graph" in err and "supported for it: onnx" in err
    _assert_nothing_written(tmp_path)
    code, _ = _run(capsys, model, "-o", str(tmp_path / "out"), "--targets", "onnx", "--no-check")
    assert code == 0 and (tmp_path / "out" / "onnx" / "model.onnx").is_file()


def test_model_without_a_vocabulary_is_refused(capsys, copy_of, tmp_path):
    """transformers would build a 5-token tokenizer: every word [UNK], parity PASS against the same wrong reference."""
    model = copy_of()
    (model / "tokenizer.json").unlink()
    (model / "vocab.txt").unlink(missing_ok=True)
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "no tokenizer vocabulary" in err and "Traceback" not in err
    _assert_nothing_written(tmp_path)


def test_tokenizer_of_another_model_is_refused(capsys, copy_of, tiny_model, tmp_path):
    model = copy_of()
    other = tiny_model("distilbert_cased", arch="distilbert", vocab="cased", pooling=("mean",))
    shutil.copy(other / "tokenizer.json", model / "tokenizer.json")
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "entries but the embedding matrix has 30522 rows" in err
    _assert_nothing_written(tmp_path)


def test_vocab_txt_alone_and_tokenizer_json_alone_are_read(copy_of):
    from exporter.model import read_model

    model = copy_of()
    assert read_model(model).tokenizer.describe()["vocab_size"] == 30522  # tokenizer.json alone
    data = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = sorted(data["model"]["vocab"].items(), key=lambda item: item[1])
    (model / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
    (model / "tokenizer.json").unlink()
    config = json.loads((model / "tokenizer_config.json").read_text())
    config.pop("backend", None)
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    assert read_model(model).tokenizer.describe()["vocab_size"] == 30522  # vocab.txt alone


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_unreadable_weights_are_refused_while_reading(capsys, copy_of, tmp_path, damage):
    model = copy_of()
    weights = model / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:len(data) // 2] if damage == "truncated" else bytes(range(256)) * 8)
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "cannot read the weights" in err and "Traceback" not in err
    _assert_nothing_written(tmp_path)


def test_pickle_the_weights_only_loader_refuses(capsys, copy_of, tmp_path):
    import torch

    model = copy_of()
    (model / "model.safetensors").unlink()
    torch.save({"weights": shutil.copy}, model / "pytorch_model.bin")  # a function: not weights
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "pytorch_model.bin: cannot read the weights" in err


def test_unknown_pooling_flag_is_refused(capsys, copy_of, tmp_path):
    model = copy_of()
    (model / "1_Pooling/config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True, "pooling_mode_median_tokens": True}))
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "out"))
    assert code == 2 and "pooling_mode_median_tokens" in err


def test_full_disk_is_named_and_leaves_nothing(capsys, monkeypatch, copy_of, tmp_path):
    """The parent folders the export created are removed again with the temp dir."""
    import errno

    from targets.onnx import OnnxTarget

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(OnnxTarget, "build", full)
    model = copy_of()
    code, err = _run(capsys, str(model), "-o", str(tmp_path / "new/deeper/out"), "--targets", "onnx")
    assert code == 2 and "no space left on the device holding" in err and "Traceback" not in err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("suffix", [".jsonl", ".txt"])
def test_a_utf8_bom_at_the_start_of_a_texts_file_is_accepted(tmp_path, suffix):
    """Windows editors start UTF-8 files with a BOM: it was refused as "not a JSON string"; it is no text."""
    from exporter.verify.corpus import user_texts

    lines = ['"héllo"', '"wörld"'] if suffix == ".jsonl" else ["héllo", "wörld"]
    path = tmp_path / f"texts{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode("utf-8"))
    texts, record = user_texts(path)
    assert texts == ["héllo", "wörld"] and record["texts"] == 2
