"""EmbeddingGemma (``gemma3_text``) with Gemma's SentencePiece BPE with byte fallback (the ``spbpe`` family).

The tiny model (conftest's ``gemma_export``: EmbeddingGemma-300m's modules and prompts, random weights, three
bidirectional layers around a sliding window shorter than the corpus texts) has a SentencePiece BPE trained here
with the ``sentencepiece`` trainer, converted as transformers converts Gemma's and saved by ``GemmaTokenizer``.
Token ids are checked against the reference on the corpora, on edge texts (NUL, added tokens, byte pieces' names),
on a sample of the code-point sweep (alone and inside a word: byte fallback for every character no piece holds)
and of the sequence sweep; the whole sweeps run in ``python -m benchmarks.tokenizer_sweeps``.
"""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import exporter
from exporter.errors import UnsupportedModelError
from exporter.runtime.artifacts import open_tokenizer
from exporter.verify.parity import compare_tokens
from exporter.verify.reference import ReferenceRunner
from exporter.verify.sweeps import CODE_POINTS, sequence_sweep, texts_that_differ

TARGETS = ["onnx", "savedmodel"]
#: every n-th code point per target: the SavedModel's graph is the kernel alone (no NUL split), sampled thinner
CODE_POINT_STEP = {"onnx": 16, "savedmodel": 64}
SEQUENCE_STEP = 4
EDGE_TEXTS = [
    "", " ", "\x00", "a\x00b", "\x00\x00 \x00", "a\x00", "\x00a", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>",
    "<start_of_turn>user\nhi<end_of_turn>", "a  <bos>  b", "<bos><eos><pad>", "<bo\x00s>", "<Bos>", "<0x41> <0xFF>",
    "\u2581", "a\u2581b \u2581 c", "   ", "trailing   ", "\t\ttabs", "\r\n\r\n", "x" * 300, "é" * 120,
    "Donaudampfschifffahrtsgesellschaftskapitän", "1234567 12.5 ١٢٣", "👩‍👩‍👧 🇩🇪 ✊🏽", "\ufeffBOM",
    "\u200b\u200c\u200d", "\U000F0000\U000F0001", "\U0010FFFF \U000E0001", "task: search result | query: ",
]


@pytest.fixture(scope="module")
def gemma_reference(gemma_export) -> ReferenceRunner:
    return ReferenceRunner(gemma_export.manifest["source"]["path"])


def test_onnx_and_savedmodel_pass_with_every_prompt_and_variant(gemma_export):
    assert [row.target for row in gemma_export.rows] == TARGETS
    for row in gemma_export.rows:
        assert row.passed, (row.target, row.parity)
        assert row.parity["tokens"]["mismatches"] == 0, row.parity["tokens"]["first_mismatches"]
        emb = row.parity["embeddings"]
        assert emb["min_cosine"] >= 0.99999 and emb["max_abs_diff"] <= 1e-5, (row.target, emb)
        assert set(row.parity["prompts"]) == {"query", "document"}
        assert all(p["passed"] and p["tokens"]["mismatches"] == 0 for p in row.parity["prompts"].values())
    variants = {v.target: v for row in gemma_export.rows for v in row.variant_rows()}
    assert {"onnx:optimized", "onnx:int8"} <= set(variants)
    assert all(v.passed for v in variants.values()), {k: v.parity for k, v in variants.items()}


def test_manifest_records_the_family_and_the_architecture(gemma_export):
    manifest = gemma_export.manifest
    module = manifest["source"]["modules"][0]
    assert module["architecture"] == "gemma3_text"
    tokenizer = manifest["tokenizer"]
    assert tokenizer["family"] == "spbpe" and tokenizer["template"] == "<bos> $A <eos>" and tokenizer["pad_id"] == 0
    assert tokenizer["model"] == "SentencePiece BPE with byte fallback" and tokenizer["merges"] > 1000


def test_naming_tflite_is_refused_before_anything_is_written(gemma_export, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UnsupportedModelError, match="tflite: .*FastSentencepieceTokenizer.*Unigram"):
        exporter.export(gemma_export.manifest["source"]["path"], out, targets="onnx,tflite")
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", TARGETS)
def test_edge_texts_alone_and_batched(gemma_export, gemma_reference, target):
    ids = gemma_reference.tokenize(["a\x00b <bos>"])["input_ids"][0].tolist()
    tokens = gemma_reference.model.tokenizer.convert_ids_to_tokens(ids)
    assert tokens[2] == "<0x00>" and tokens[-2] == "<bos>"  # NUL by byte fallback; the literal is the added token
    report = compare_tokens(gemma_reference, open_tokenizer(gemma_export.out, target), EDGE_TEXTS)
    assert report.mismatches == [], report.mismatches[:3]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("template", ["{}", "a{}b"])
def test_code_point_sweep_sample(gemma_export, gemma_reference, target, template):
    texts = [template.format(chr(cp)) for cp in CODE_POINTS[::CODE_POINT_STEP[target]]]
    graph = open_tokenizer(gemma_export.out, target)
    assert texts_that_differ(gemma_reference, graph, texts) == []


@pytest.mark.parametrize("target", TARGETS)
def test_sequence_sweep_sample(gemma_export, gemma_reference, target):
    """Every class is exact, runs of one character included (BPE has no ties)."""
    graph = open_tokenizer(gemma_export.out, target)
    for name, texts in sequence_sweep(SEQUENCE_STEP).items():
        report = compare_tokens(gemma_reference, graph, texts, alone=False)
        assert report.count == 0, (name, report.mismatches[:3])


def test_masks_are_the_ones_transformers_builds(gemma_export):
    """``Gemma3Text.call_kwargs`` (what is traced) gives the model the masks its own forward builds with vmap:
    the same hidden states on a padded batch whose rows are longer than the sliding window."""
    from transformers import AutoModel

    from exporter.architectures import architecture

    model = AutoModel.from_pretrained(gemma_export.manifest["source"]["path"], attn_implementation="eager").eval()
    ids = torch.randint(10, 1900, (3, 23))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0
    mask[2, 4:] = 0
    assert ids.shape[1] > model.config.sliding_window
    with torch.no_grad():
        own = model(input_ids=ids, attention_mask=mask).last_hidden_state
        ours = model(**architecture("gemma3_text").call_kwargs(model, ids, mask, torch.zeros_like(ids)))
    assert torch.equal(own * mask[..., None], ours.last_hidden_state * mask[..., None])


def test_a_causal_gemma3_is_refused_by_name(gemma_export, tmp_path):
    model = tmp_path / "causal"
    shutil.copytree(gemma_export.manifest["source"]["path"], model)
    config = json.loads((model / "config.json").read_text())
    config["use_bidirectional_attention"] = False
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="use_bidirectional_attention False.*EmbeddingGemma"):
        exporter.export(model, tmp_path / "out", targets="onnx")
    assert not (tmp_path / "out").exists()


def test_a_llama_style_sentencepiece_bpe_is_refused_by_name(gemma_export, tmp_path):
    """The same vocabulary rebuilt as transformers' ``LlamaTokenizer`` (Metaspace, a "▁" before the first word)
    is still this family's by its byte fallback, and refused naming what differs from Gemma's."""
    from exporter.model import read_model

    model = tmp_path / "llama"
    shutil.copytree(gemma_export.manifest["source"]["path"], model)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "LlamaTokenizer"
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError) as error:
        read_model(model)
    assert "normalizer null; supported: Replace(' ', '▁') alone" in str(error.value)
    assert 'pre-tokenizer {"type": "Metaspace"' in str(error.value)


def test_a_vocabulary_with_a_tab_in_place_of_its_byte_piece_is_read(gemma_export, tmp_path):
    """transformers' conversion of older Gemma tokenizers puts "\\t" where <0x09> was: the reference never falls
    back to that byte (its character is a piece), so the kernel model gets the byte piece SentencePiece needs as an
    id of its own, and the vocabulary self-sweep (every piece's text through the ONNX graph) finds no difference."""
    from exporter.model import read_model

    model = tmp_path / "tab"
    shutil.copytree(gemma_export.manifest["source"]["path"], model)
    data = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    vocab.pop("\t", None)
    vocab["\t"] = vocab.pop("<0x09>")
    (model / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    spec = read_model(model).tokenizer
    assert spec.family == "spbpe" and "<0x09>" not in spec.vocab
    assert spec.problems("onnx") == []
