"""Tiny offline models: every architecture, tokenizer family, pooling mode, Dense activation and save format.

Each is exported to every target its tokenizer family supports and held to the core bar against
SentenceTransformer.encode on the corpus (one batch, batches of 1 and of 7) with token ids
identical. The coverage tests at the end fail when a registered architecture, tokenizer family,
module type, pooling mode or activation has no fixture here.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import exporter
from conftest import GEMMA_OPTIONS, GTE_OPTIONS, MODERNBERT_OPTIONS, QWEN3_OPTIONS, ROBERTA_OPTIONS, XLMR_OPTIONS
from exporter.modules.pooling import MODES

MIN_COSINE, MAX_ABS_DIFF = 0.99999, 1e-5
BARS = {"onnx": (MIN_COSINE, MAX_ABS_DIFF), "savedmodel": (MIN_COSINE, MAX_ABS_DIFF), "tflite": (0.9999, 1e-4)}

MODELS = {
    "bert_uncased_mean_norm": dict(),
    # every pooling mode: these three concatenated here, cls/max/mean in the next; a mode's error shows in the
    # max abs diff of its own slice of the concatenation
    "pool_sqrt_len_weightedmean_lasttoken": dict(pooling=("mean_sqrt_len_tokens", "weightedmean", "lasttoken"),
                                                 normalize=False, seed=3),
    "pool_combined_dense_gelu": dict(pooling=("cls", "max", "mean"), dense=((24, "GELU", True),)),
    # every activation, with and without bias, chained (an error in one shows in the output's max abs diff)
    "dense_identity_tanh_relu_sigmoid": dict(dense=((20, "Identity", False), (20, "Tanh", True), (20, "ReLU", True),
                                                    (12, "Sigmoid", False)), normalize=False),
    "dense_gelu_silu_leaky_elu_softplus_norm": dict(dense=((16, "GELU", False), (20, "SiLU", True),
                                                           (20, "LeakyReLU", True), (20, "ELU", False),
                                                           (12, "Softplus", True))),
    "distilbert_cased": dict(arch="distilbert", vocab="cased", pooling=("mean",)),
    "legacy_distilbert_uncased": dict(arch="distilbert", fmt="legacy", pooling=("cls", "mean"),
                                      dense=((16, "Tanh", True),)),
    "legacy_bert_cased_lowercased_by_st": dict(vocab="cased", fmt="legacy", do_lower_case=True,
                                               pooling=("mean_sqrt_len_tokens",)),
    "default_prompt_pooled": dict(prompt="query: ", pooling=("mean",)),
    "default_prompt_excluded_from_pooling": dict(prompt="Represent this sentence: ", include_prompt=False,
                                                 pooling=("mean", "cls")),
    # every target with every variant: tests/test_mpnet.py (the same model as conftest's mpnet_export)
    "legacy_mpnet_cls_dense": dict(arch="mpnet", fmt="legacy", pooling=("cls",), dense=((16, "Tanh", True),)),
    # exported once for the session (a 250k-piece vocabulary): conftest's xlmr_export, every target and variant
    "xlmr_cls_mean_dense_norm": XLMR_OPTIONS,
    # a byte-level BPE trained here: conftest's roberta_export (TFLite cannot run it)
    "roberta_mean_norm": ROBERTA_OPTIONS,
    # EmbeddingGemma's shape, a SentencePiece BPE with byte fallback trained here: conftest's gemma_export
    "gemma3_text_mean_dense_norm": GEMMA_OPTIONS,
    # a decoder: causal attention, last-token pooling, the reference padding on the left: conftest's qwen3_export
    "qwen3_lasttoken_left_padded_prompts": QWEN3_OPTIONS,
    # nomic-embed-text-v1.5's folder (auto_map to the hub code, loaded by transformers' own class) with its Matryoshka
    # recipe as modules: a LayerNorm before truncate_dim's slice
    "nomic_bert_mean_layernorm_norm_truncated": dict(arch="nomic_bert", layer_norm=True, truncate_dim=20),
    # rotary, local (8-token window) and global layers, on the uncased WordPiece until ModernBERT's BPE lands: CLS
    # (gte-modernbert-base) and mean with Normalize (modernbert-embed-base), concatenated
    "modernbert_cls_mean_norm": MODERNBERT_OPTIONS,
    # gte-multilingual-base's layout (XLM-R's Unigram, CLS, Normalize) in transformers' GteModel, its config.json with
    # the hub code's keys and auto_map besides (tests/test_gte.py: the folder as the hub ships it)
    "gte_cls_norm": GTE_OPTIONS,
}
#: models whose export a session fixture already made (name → fixture)
EXPORTED_BY_FIXTURE = {"xlmr_cls_mean_dense_norm": "xlmr_export", "roberta_mean_norm": "roberta_export",
                       "gemma3_text_mean_dense_norm": "gemma_export", "qwen3_lasttoken_left_padded_prompts": "qwen3_export"}
#: folders in sentence-transformers 2.x's layout: what differs is how the folder is read into a ModelSpec, which
#: every target then builds from alike (their modules and tokenizers are covered in the current layout), so
#: one target proves the read; the suite's time goes to fixtures that exercise the targets
READ_PATH_ONLY = {"legacy_distilbert_uncased", "legacy_bert_cased_lowercased_by_st", "legacy_mpnet_cls_dense"}


def _supported_targets(model) -> list[str]:
    """Return the targets of BARS whose tokenizer graph the model's tokenizer family supports."""
    from exporter.model import read_model
    from targets import get

    spec = read_model(model)
    return [name for name in BARS if not get(name).problems(spec)]


@pytest.mark.parametrize("name", list(MODELS))
def test_tiny_model_parity(name, tiny_model, tmp_path, request):
    """ONNX and SavedModel at the core bar, TFLite fp32 at its own (min cosine ≥ 0.9999); legacy folders: ONNX."""
    model = tiny_model(name, **MODELS[name])
    chosen = _supported_targets(model)
    assert "onnx" in chosen  # every family has an ONNX graph
    if name in READ_PATH_ONLY:
        chosen = ["onnx"]
    if name in EXPORTED_BY_FIXTURE:
        result = request.getfixturevalue(EXPORTED_BY_FIXTURE[name])
        assert Path(result.manifest["source"]["path"]).resolve() == Path(model).resolve()
        rows = [row for row in result.rows if row.target in chosen]
    else:
        rows = exporter.export(model, tmp_path / "out", targets=chosen, variants=False).rows
    assert [row.target for row in rows] == chosen
    for row in rows:
        parity = row.parity
        assert parity["tokens"]["mismatches"] == 0, (row.target, parity["tokens"]["first_mismatches"])
        emb = parity["embeddings"]
        assert emb["batch_sizes"] == ["all", "1", "7"]
        min_cosine, max_abs_diff = BARS[row.target]
        assert emb["min_cosine"] >= min_cosine and emb["max_abs_diff"] <= max_abs_diff, (row.target, emb)
        for prompt, figures in parity.get("prompts", {}).items():  # a graph of its own per non-default prompt
            assert figures["passed"], (row.target, prompt, figures)


def test_every_pooling_mode_has_a_fixture():
    covered = {mode for options in MODELS.values() for mode in options.get("pooling", ("mean",))}
    assert covered == set(MODES)


def test_every_registered_module_and_activation_has_a_fixture():
    from exporter.modules import supported_class_names
    from exporter.modules.dense import ACTIVATIONS

    activations = {layer[1] for options in MODELS.values() for layer in options.get("dense", ())}
    assert activations == set(ACTIVATIONS)
    covered = {"Transformer", "Pooling"} | ({"Dense"} if activations else set()) | (
        {"Normalize"} if any(options.get("normalize", True) for options in MODELS.values()) else set()) | (
        {"LayerNorm"} if any(options.get("layer_norm") for options in MODELS.values()) else set())
    assert set(supported_class_names()) <= covered


def test_every_architecture_has_a_fixture():
    from exporter.architectures import supported

    assert set(supported()) <= {options.get("arch", "bert") for options in MODELS.values()}


def test_every_tokenizer_family_has_a_fixture(tiny_model):
    """Read each fixture's tokenizer (cheap: reading builds no graph) and collect the families."""
    from exporter.model import read_model
    from exporter.tokenizers import families

    first_of_each_vocab = {}
    for name, options in MODELS.items():
        key = (options.get("vocab"), options.get("arch", "bert"))
        first_of_each_vocab.setdefault(key, name)
    covered = {read_model(tiny_model(name, **MODELS[name])).tokenizer.family for name in first_of_each_vocab.values()}
    assert set(families()) <= covered


def test_legacy_format_is_really_legacy(tiny_model):
    import json

    model = tiny_model("legacy_distilbert_uncased", **MODELS["legacy_distilbert_uncased"])
    types = [m["type"] for m in json.loads((model / "modules.json").read_text())]
    assert types[1] == "sentence_transformers.models.Pooling"
    assert not (model / "tokenizer.json").exists() and (model / "vocab.txt").exists()
    assert (model / "pytorch_model.bin").exists()
    assert "pooling_mode_cls_token" in (model / "1_Pooling/config.json").read_text()


def test_default_prompt_is_in_model_onnx_and_recorded(tiny_model, tmp_path):
    model = tiny_model("default_prompt_excluded_from_pooling", **MODELS["default_prompt_excluded_from_pooling"])
    result = exporter.export(model, tmp_path / "out", targets="onnx,savedmodel", check=False, variants=False)
    prompt = result.manifest["targets"]["onnx"]["prompt"]
    assert prompt["text"] == "Represent this sentence: " and prompt["pooled_from_token"] == 5  # [CLS] + 4 pieces
    assert result.manifest["targets"]["savedmodel"]["prompt"]["text"] == "Represent this sentence: "


@pytest.mark.parametrize("vocab", ["uncased", "cased", "mpnet"])
def test_tiny_vocabularies_are_real(vocab, tiny_model):
    """The tiny models' tokenizers must split real words into real pieces, or WordPiece goes untested.

    (transformers 5 ignores ``BertTokenizerFast(vocab_file=...)`` and builds a 5-token vocabulary.)
    """
    from exporter.model import read_model
    from exporter.verify.reference import ReferenceRunner

    model = tiny_model(f"bert_{vocab}_vocab", vocab=vocab) if vocab != "mpnet" else tiny_model(
        "mpnet_v6", arch="mpnet", tokenizer_json_limits=128)
    spec = read_model(model)
    assert len(spec.tokenizer.vocab) >= 1000
    ids = ReferenceRunner(model).tokenize(["Tokenization splits unaffable words into pieces"])["input_ids"][0]
    assert (ids == spec.tokenizer.unk_id).sum() == 0 and len(ids) > 8  # more pieces than words: WordPiece ran


def test_the_factory_refuses_an_architecture_it_has_no_tiny_model_of(tmp_path):
    import pytest

    from model_factory import build_model

    with pytest.raises(ValueError, match="no tiny model of architecture 'gpt2'"):
        build_model(tmp_path / "m", arch="gpt2")
