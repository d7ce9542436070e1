"""(query, document) pair framing (rerankers) in the ONNX, TF and TFLite tokenizer graphs, against the reference.

The reference is what ``CrossEncoder.predict`` runs: sentence-transformers' ``Transformer`` module loaded from
the folder, its ``preprocess`` on the pairs (``padding=True, truncation="longest_first"`` unless the module's
``processing_kwargs`` say otherwise, ``max_length`` its ``max_seq_length``). The three vocabularies of the
tiny models (the bundled MiniLM WordPiece, multilingual-e5-small's Unigram, the byte-level BPE trained here)
are framed at small lengths (``LENGTHS``: the room beside the template's special tokens odd and even), every
pair of lengths 0..L+20 in one batch. Tokenizer graphs only: nothing is exported; each graph is built once
per family and length. TFLite is converted at one length (``TFLITE_LENGTH``): its graph is the TF one.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from exporter.errors import UnsupportedModelError
from exporter.model import read_model
from exporter.runtime.runners import TOKEN_NAMES
from exporter.tokenizers import families
from exporter.tokenizers.shared.framing_onnx import pair_tokenizer_model
from exporter.tokenizers.shared.self_sweep import IR_VERSION, OPSET

from conftest import ROBERTA_OPTIONS, XLMR_OPTIONS

#: family → (tiny model name, build options): the same models the other tests build
MODELS = {"wordpiece": ("bert_uncased_mean_norm", {}), "unigram": ("xlmr_cls_mean_dense_norm", XLMR_OPTIONS),
          "bpe": ("roberta_mean_norm", ROBERTA_OPTIONS)}
LENGTHS = (12, 13)
TFLITE_LENGTH = 13
#: words the sweep builds its texts of, those of them that are one piece each (first or after a space: byte-level
#: BPE gives "the" and " the" different pieces); the query's and the document's differ
QUERY_WORDS = [*"abcdefghijklmnopqrstuvwxyz"]
DOCUMENT_WORDS = [*"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "the", "of", "and", "to", "in", "is", "it", "for", "on"]
EDGE_PAIRS = [
    ("", ""), ("", "a document"), ("a query", ""), (" ", "\t\n"),
    ("[SEP]", "[CLS] x [SEP]"), ("</s>", "<s> y </s>"), ("<s>", "</s></s>"), ("[CLS][SEP][PAD]", "[UNK] [MASK]"),
    ("<pad> a", "b <mask>"), ("<unk>", "x<mask>y"), ("[SEP] [SEP]", ""), ("", "</s>"),
    ("word " * 40, "short"), ("short", "word " * 40), ("word " * 40, "thing " * 40), ("a " * 11, "b " * 30),
    ("Grüße aus München", "東京は日本の首都です"), ("¿Dónde está la estación?", "Привет, мир! Как дела?"),
    ("नमस्ते दुनिया", "مرحبا بالعالم"), ("ok 👍🏽", "Ελληνικά και 한국어"), ("café naïve résumé", "ﬁne ｆｕｌｌ"),
]


def _reference(folder: Path) -> Callable[..., dict[str, np.ndarray]]:
    """Return (queries, documents, length) → the reference's ids, as ``CrossEncoder.predict`` tokenizes them with
    the module's ``max_seq_length`` set to ``length``."""
    from sentence_transformers.base.modules import Transformer

    module = Transformer.load(str(folder))

    def tokenize(queries: list[str], documents: list[str], length: int) -> dict[str, np.ndarray]:
        module.max_seq_length = length
        features = module.preprocess(list(zip(queries, documents, strict=True)))
        return {name: features[name].numpy() for name in TOKEN_NAMES if name in features}

    return tokenize


def _onnx(spec: Any, folder: Path, module: Any = None) -> Callable[[list[str], list[str]], dict[str, np.ndarray]]:
    import onnx

    from exporter.runtime.onnx import ort_session

    path = folder / f"pairs_{spec.framing.max_seq_length}.onnx"
    onnx.save(pair_tokenizer_model(spec, opset=OPSET, ir_version=IR_VERSION), str(path))
    session = ort_session(path)
    return lambda queries, documents: dict(zip(TOKEN_NAMES, session.run(list(TOKEN_NAMES), {
        "query": np.array(queries, dtype=object), "document": np.array(documents, dtype=object)}), strict=True))


def _pair_module(spec: Any) -> Any:
    import tensorflow as tf

    from exporter.tokenizers.shared.framing_tf import TokenizerTF

    class Pairs(tf.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = TokenizerTF(spec)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="query"),
                                      tf.TensorSpec([None], tf.string, name="document")], autograph=False)
        def tokenize(self, query, document):
            return self.tokenizer.tokenize_pairs(query, document)

    return Pairs()


def _tf(spec: Any, folder: Path, module: Any = None) -> Callable[[list[str], list[str]], dict[str, np.ndarray]]:
    """Return the TF graph's ids, run eagerly (the same ops; tracing is left to the TFLite conversion)."""
    import tensorflow as tf

    tokenizer = (module or _pair_module(spec)).tokenizer
    return lambda queries, documents, min_rows=0: {name: value.numpy() for name, value in tokenizer.tokenize_pairs(
        tf.constant(queries, tf.string, shape=[len(queries)]),
        tf.constant(documents, tf.string, shape=[len(documents)]), min_rows=min_rows).items()}


def _tflite(spec: Any, folder: Path, module: Any = None) -> Callable[[list[str], list[str]], dict[str, np.ndarray]]:
    import tensorflow as tf

    from exporter.runtime.tflite import open_interpreter
    from targets.tflite import convert

    saved = folder / f"pairs_{spec.framing.max_seq_length}_savedmodel"
    module = module or _pair_module(spec)
    tf.saved_model.save(module, str(saved), signatures={"tokenize": module.tokenize})
    path = folder / f"pairs_{spec.framing.max_seq_length}.tflite"
    path.write_bytes(convert(saved, None, signatures=("tokenize",)))
    interpreter = open_interpreter(path)[0]  # held here: a signature runner alone does not keep it alive

    def tokenize(queries: list[str], documents: list[str]) -> dict[str, np.ndarray]:
        return interpreter.get_signature_runner("tokenize")(query=np.array(queries, dtype=object),
                                                            document=np.array(documents, dtype=object))

    return tokenize


BUILDERS = {"onnx": _onnx, "tf": _tf, "tflite": _tflite}
CASES = [(family, graph, length) for family in MODELS for graph in families()[family].graphs
         for length in LENGTHS if graph != "tflite" or length == TFLITE_LENGTH]


@pytest.fixture(scope="module")
def built(tiny_model, tmp_path_factory) -> Callable[[str, str, int], tuple[Any, Any, Any]]:
    """Return get(family, graph, length) → (graph tokenizer, reference tokenizer, spec), each built once."""
    cache: dict[tuple, Any] = {}
    root = tmp_path_factory.mktemp("pairs")

    def get(family: str, graph: str, length: int) -> tuple[Any, Any, Any]:
        if family not in cache:
            name, options = MODELS[family]
            folder = tiny_model(name, **options)
            cache[family] = (folder, read_model(folder).tokenizer)
        folder, spec = cache[family]
        at = dataclasses.replace(spec, framing=dataclasses.replace(spec.framing, max_seq_length=length))
        if (family, "reference") not in cache:
            cache[family, "reference"] = _reference(folder)
        if (family, graph, length) not in cache:  # a folder per family: LiteRT maps its file, which must stay
            out = root / family
            out.mkdir(exist_ok=True)
            if graph != "onnx" and (family, "module", length) not in cache:  # TF and TFLite: the same module
                cache[family, "module", length] = _pair_module(at)
            cache[family, graph, length] = BUILDERS[graph](at, out, cache.get((family, "module", length)))
        return cache[family, graph, length], cache[family, "reference"], at

    return get


def _sides(pairs: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Return (queries, documents) of ``pairs``."""
    return [q for q, _ in pairs], [d for _, d in pairs]


def _mismatched_rows(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> dict[str, int]:
    """Return {output: rows that differ} over the outputs the reference returns (padded to a common width)."""
    counts = {}
    for name, want in expected.items():
        have = np.asarray(got[name])
        width = max(want.shape[1], have.shape[1] if have.ndim == 2 else 0)
        pad = lambda x: np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=-1)  # noqa: E731
        counts[name] = (int((pad(want) != pad(have)).any(axis=1).sum()) if len(have) == len(want)
                        else len(want))
    return counts


def _one_piece_words(reference: Any, words: list[str], length: int) -> list[str]:
    """Return those of ``words`` that are one piece alone and one after another (at least 8 of them)."""
    pieces = lambda texts: reference(texts, [""] * len(texts), length)["attention_mask"].sum(axis=1)  # noqa: E731
    empty = pieces([""])[0]
    kept = [w for w, one, two in zip(words, pieces(words), pieces([f"{w} {w}" for w in words]), strict=True)
            if (one, two) == (empty + 1, empty + 2)]
    assert len(kept) >= 8, kept
    return kept


def _sweep_pairs(reference: Any, length: int) -> tuple[list[str], list[str]]:
    """Return every pair of lengths 0..length+20 pieces (checked), query and document of different words."""
    sizes = range(length + 21)
    texts = []
    for words in (QUERY_WORDS, DOCUMENT_WORDS):
        words = _one_piece_words(reference, words, length + 40)
        texts.append([" ".join(words[i % len(words)] for i in range(n)) for n in sizes])
    pieces = reference(texts[0], texts[1], 2 * length + 50)["attention_mask"].sum(axis=1)
    assert (pieces - pieces[0]).tolist() == [2 * n for n in sizes]  # each text of n words is n pieces
    return [texts[0][a] for a in sizes for _ in sizes], [texts[1][b] for _ in sizes for b in sizes]


@pytest.mark.parametrize("family,graph,length", CASES)
def test_every_pair_of_lengths_as_the_reference(built, family, graph, length):
    tokenize, reference, _ = built(family, graph, length)
    queries, documents = _sweep_pairs(reference, length)
    expected = reference(queries, documents, length)
    assert _mismatched_rows(expected, tokenize(queries, documents)) == dict.fromkeys(expected, 0)


@pytest.mark.parametrize("family,graph,length", [case for case in CASES if case[2] == TFLITE_LENGTH])
def test_specials_empty_long_and_multilingual_pairs_as_the_reference(built, family, graph, length):
    tokenize, reference, _ = built(family, graph, length)
    queries, documents = _sides(EDGE_PAIRS)
    expected = reference(queries, documents, length)
    assert _mismatched_rows(expected, tokenize(queries, documents)) == dict.fromkeys(expected, 0)


@pytest.mark.parametrize("family,graph", [(family, graph) for family, graph, length in CASES
                                          if length == TFLITE_LENGTH])
def test_empty_batch_gives_empty_outputs(built, family, graph):
    tokenize = built(family, graph, TFLITE_LENGTH)[0]
    assert {name: np.asarray(value).shape for name, value in tokenize([], []).items()} == dict.fromkeys(
        TOKEN_NAMES, (0, 0))


@pytest.mark.parametrize("graph", families()["wordpiece"].graphs)
def test_more_documents_than_queries_fails_the_call(built, graph):
    tokenize = built("wordpiece", graph, TFLITE_LENGTH)[0]
    with pytest.raises(Exception, match="(?i)concat|dimension|shape"):
        tokenize(["a", "b"], ["c", "d", "e"])


@pytest.mark.parametrize("family", MODELS)
def test_min_rows_adds_empty_pairs_as_the_reference_frames_them(built, family):
    tokenize, reference, _ = built(family, "tf", TFLITE_LENGTH)
    expected = reference(["", ""], ["", ""], TFLITE_LENGTH)
    assert _mismatched_rows(expected, tokenize([], [], min_rows=2)) == dict.fromkeys(expected, 0)


@pytest.fixture(scope="module")
def only_second_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny WordPiece model whose Transformer module says ``processing_kwargs: {"text": {"truncation":
    "only_second"}}``, as a reranker that never cuts its query would."""
    folder = tmp_path_factory.mktemp("only_second") / "model"
    shutil.copytree(tiny_model(*MODELS["wordpiece"][:1], **MODELS["wordpiece"][1]), folder)
    config = json.loads((folder / "sentence_bert_config.json").read_text())
    config["processing_kwargs"] = {"text": {"truncation": "only_second"}}
    (folder / "sentence_bert_config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("graph", ["onnx", "tf"])
def test_only_second_truncation_as_the_reference(only_second_model, tmp_path, graph):
    length = LENGTHS[0]
    spec = read_model(only_second_model).tokenizer
    assert spec.framing.pair_truncation == "only_second" and spec.framing.pairs
    spec = dataclasses.replace(spec, framing=dataclasses.replace(spec.framing, max_seq_length=length))
    reference = _reference(only_second_model)
    tokenize = BUILDERS[graph](spec, tmp_path)
    pairs = list(zip(*_sweep_pairs(reference, length), strict=True))
    # where the pair is over and the query alone fills the room the reference raises for the whole batch
    room = spec.framing.pair_room
    raises = lambda q, d: len(q.split()) >= room and len(q.split()) + len(d.split()) > room  # noqa: E731
    kept = [(q, d) for q, d in pairs if not raises(q, d)]
    cut = [(q, d) for q, d in pairs if raises(q, d)]
    expected = reference(*_sides(kept), length)
    assert _mismatched_rows(expected, tokenize(*_sides(kept))) == dict.fromkeys(expected, 0)
    with pytest.raises(Exception, match="too short"):
        reference(*_sides(cut[:1]), length)
    got = tokenize(*_sides(cut))  # the graphs keep no document piece, the query cut to fit
    assert (got["attention_mask"].sum(axis=1) == length).all() and (got["token_type_ids"].sum(axis=1) == 1).all()


def test_a_reference_that_cuts_no_pair_keeps_the_tokenizer_from_pairs(copy_of):
    folder = copy_of()
    config = json.loads((folder / "sentence_bert_config.json").read_text())
    config["processing_kwargs"] = {"text": {"truncation": False}}
    (folder / "sentence_bert_config.json").write_text(json.dumps(config))
    spec = read_model(folder).tokenizer
    assert not spec.framing.pairs
    assert "pair truncation False" in spec.framing.pair_problem and "longest_first" in spec.framing.pair_problem
    with pytest.raises(UnsupportedModelError, match="pair truncation False"):
        pair_tokenizer_model(spec, opset=OPSET, ir_version=IR_VERSION)
