"""Hand-edited tokenizers the exporter must refuse by name or tokenize exactly (issue "Hardening 3").

Each test copies a tiny model, rewrites its tokenizer.json the way a hand edit would, and runs ``st-export``:
a refusal is one clear message with exit code 2 and nothing written; an accepted tokenizer is compared with
the reference.
"""
from __future__ import annotations

import json
import shutil

import pytest
from conftest import ROBERTA_OPTIONS, XLMR_OPTIONS

from exporter.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


def _assert_nothing_written(parent):
    assert not [p.name for p in parent.iterdir() if p.name.startswith(".")], "temp dir left behind"
    assert not (parent / "out").exists()


@pytest.fixture
def edited(tiny_model, tmp_path):
    """Return edit(name, options, change) → a copy of the tiny model whose tokenizer.json ``change`` rewrote."""
    def edit(name, options, change):
        folder = tmp_path / "model"
        shutil.copytree(tiny_model(name, **options), folder)
        path = folder / "tokenizer.json"
        data = json.loads(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return folder
    return edit


def _export(capsys, folder, tmp_path):
    return _run(capsys, str(folder), "-o", str(tmp_path / "out"), "--targets", "onnx", "--no-variants", "-q")


def test_vocabulary_piece_nul_is_refused_by_name(capsys, edited, tmp_path):
    """A piece "\\x00" made the kernel's darts-clone trie fail with a raw 'zero-length key' traceback."""
    def nul_piece(data):
        data["model"]["vocab"][-3] = ["\x00", -5.0]

    code, err = _export(capsys, edited("xlmr_cls_mean_dense_norm", XLMR_OPTIONS, nul_piece), tmp_path)
    assert code == 2 and "Traceback" not in err and "zero-length key" not in err, err
    assert "'\\x00' (id 249999)" in err and "hold NUL (U+0000)" in err, err
    _assert_nothing_written(tmp_path)


def test_empty_precompiled_charsmap_is_refused_by_file_and_field(capsys, edited, tmp_path):
    """tokenizers panics on an empty character map (a PanicException, which ``except Exception`` misses)."""
    def empty_map(data):
        data["normalizer"]["precompiled_charsmap"] = ""

    folder = edited("xlmr_cls_mean_dense_norm", XLMR_OPTIONS, empty_map)
    code, err = _export(capsys, folder, tmp_path)
    assert code == 2 and "Traceback" not in err and "panicked" not in err, err
    assert f"{folder / 'tokenizer.json'}: normalizer.precompiled_charsmap is empty" in err, err
    _assert_nothing_written(tmp_path)


def test_tokenizer_panic_is_a_clear_error(capsys, edited, tmp_path, monkeypatch):
    """Any other panic of the tokenizers library while loading (here the same one, the field check bypassed) is
    named as an unloadable tokenizer, not a traceback."""
    def empty_map(data):
        data["normalizer"]["precompiled_charsmap"] = ""

    folder = edited("xlmr_cls_mean_dense_norm", XLMR_OPTIONS, empty_map)
    monkeypatch.setattr("exporter.tokenizers.reference.unreadable_charsmaps", lambda path: "")
    code, err = _export(capsys, folder, tmp_path)
    assert code == 2 and "Traceback" not in err, err
    assert "cannot load the tokenizer (PanicException" in err and "precompiled_charsmap" in err, err


def test_post_processor_null_is_refused_by_name(capsys, edited, tmp_path):
    """Without special tokens "" is a sequence of length 0: the encoder's Reshape failed on it, where
    SentenceTransformer returns a vector."""
    def no_post_processor(data):
        data["post_processor"] = None

    folder = edited("roberta_mean_norm", ROBERTA_OPTIONS, no_post_processor)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    # RobertaTokenizer rebuilds RoBERTa's template whatever the file says; the generic class reads the file as is
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": "PreTrainedTokenizerFast"}))
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(folder), device="cpu").tokenize([""])["input_ids"].shape[1] == 0
    code, err = _export(capsys, folder, tmp_path)
    assert code == 2 and "Traceback" not in err and "Reshape" not in err, err
    assert "adds no special token" in err and "sequence of length 0" in err, err
    _assert_nothing_written(tmp_path)


def test_added_token_with_an_existing_id_is_named(capsys, edited, tmp_path):
    """An added token reusing a vocabulary id (other content) was refused as '3058 entries vs 3057 rows'."""
    def clash(data):
        data["added_tokens"].append({**data["added_tokens"][-1], "content": "<extra>", "id": 5})

    folder = edited("roberta_mean_norm", ROBERTA_OPTIONS, clash)
    piece = next(p for p, i in json.loads((folder / "tokenizer.json").read_text())["model"]["vocab"].items() if i == 5)
    code, err = _export(capsys, folder, tmp_path)
    assert code == 2 and "Traceback" not in err, err
    assert f"added token '<extra>' has id 5, which the vocabulary gives to {piece!r}" in err, err
    _assert_nothing_written(tmp_path)


def _merges_reaching_a_piece_two_ways(data):
    """Turn the last three pieces into 'qz', 'jq', 'jqz' made by merges 'q z', 'j q', 'jq z' (ranks 0-2): HF's BPE
    makes 'jqz' [j, qz] ('j qz' is no merge), SentencePiece's [jqz] (the concatenation is a piece)."""
    model = data["model"]
    piece_of = {index: piece for piece, index in model["vocab"].items()}
    last = len(piece_of)
    for index, piece in zip(range(last - 3, last), ["qz", "jq", "jqz"], strict=True):
        del model["vocab"][piece_of[index]]
        model["vocab"][piece] = index
    model["merges"] = [["q", "z"], ["j", "q"], ["jq", "z"], *model["merges"][:-3]]  # the last three made those


def test_bpe_merges_that_reach_a_piece_two_ways_are_refused_by_name(capsys, edited, tmp_path):
    """The export passed the corpora with 'jqz' tokenized as one piece where the reference gives two; the vocabulary
    self-sweep finds it before anything is built."""
    from transformers import AutoTokenizer

    folder = edited("roberta_mean_norm", ROBERTA_OPTIONS, _merges_reaching_a_piece_two_ways)
    reference = AutoTokenizer.from_pretrained(str(folder))
    assert reference.tokenize("jqz") == ["j", "qz"]
    code, err = _export(capsys, folder, tmp_path)
    assert code == 2 and "Traceback" not in err, err
    assert "vocabulary self-sweep" in err and "'jqz': reference ['j', 'qz'], graph ['jqz']" in err, err
    _assert_nothing_written(tmp_path)


def test_unigram_pieces_holding_the_graphs_marks_are_refused_by_name(capsys, edited, tmp_path):
    """Pieces U+F0001 (a special token's placeholder) and U+10FFFD (the sentinel) were <unk> in the graphs where
    the reference gives the piece, and the export passed."""
    def marked(data):
        data["model"]["vocab"][-3] = ["\U000F0001", -5.0]
        data["model"]["vocab"][-4] = ["\U0010FFFD", -5.0]

    folder = edited("xlmr_cls_mean_dense_norm", XLMR_OPTIONS, marked)
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(folder)).tokenize("\U000F0001") == ["▁", "\U000F0001"]
    code, err = _export(capsys, folder, tmp_path)
    assert code == 2 and "Traceback" not in err, err
    assert "reserve as a mark" in err and "'\\U0010fffd' (id 249998), '\\U000f0001' (id 249999)" in err, err
    _assert_nothing_written(tmp_path)


def test_unigram_pieces_in_private_use_planes_tokenize_exactly(edited, tmp_path):
    """Pieces of planes 4-16 the graphs do not reserve (private use, tags) come out as the reference's, alone and
    inside a word, as does the code-point sweep's sample of planes 3-16."""
    import exporter
    from exporter.runtime.artifacts import open_tokenizer
    from exporter.verify.reference import ReferenceRunner
    from exporter.verify.sweeps import HIGH_PLANES, texts_that_differ

    pieces = ["\U00100001", "\u2581\U000F0123", "\U000E0041\U000E0042", "\U0004E001"]

    def high_planes(data):
        for k, piece in enumerate(pieces, start=3):
            data["model"]["vocab"][-k] = [piece, -5.0]

    folder = edited("xlmr_cls_mean_dense_norm", XLMR_OPTIONS, high_planes)
    exported = exporter.export(folder, tmp_path / "out", targets=["onnx"], variants=False)
    reference = ReferenceRunner(folder)
    texts = [t.format(p.replace("\u2581", " ")) for p in pieces for t in ("{}", "x{} y")]
    assert 249999 in reference.tokenize([pieces[0]])["input_ids"][0]  # the piece itself (vocab[-3]), not <unk>
    texts += [template.format(chr(cp)) for cp in HIGH_PLANES for template in ("{}", "a{}b")]
    assert texts_that_differ(reference, open_tokenizer(exported.out, "onnx"), texts) == []
