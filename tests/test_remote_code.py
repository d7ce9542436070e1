"""--trust-remote-code: a model's own modeling files (config.json ``auto_map``) run only with the flag, only from the
model folder, and the manifest says which ran.

The shipped code of NomicBERT (nomic-ai/nomic-bert-2048) and gte-multilingual (Alibaba-NLP/new-impl) is on the hub,
out of reach here; the mechanism is proven on a small BERT-like encoder whose modeling file this test writes.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import exporter
from conftest import once_per_run
from exporter.errors import UnsupportedModelError
from model_factory import build_model

MIN_COSINE, MAX_ABS_DIFF = 0.99999, 1e-5

CONFIGURATION = '''
from transformers import PretrainedConfig


class TinyEncoderConfig(PretrainedConfig):
    model_type = "tiny_encoder"

    def __init__(self, vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=128, layer_norm_eps=1e-12, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.hidden_size, self.num_hidden_layers = vocab_size, hidden_size, num_hidden_layers
        self.num_attention_heads, self.intermediate_size = num_attention_heads, intermediate_size
        self.max_position_embeddings, self.layer_norm_eps = max_position_embeddings, layer_norm_eps
'''

#: an encoder no transformers class has: pre-norm layers, SiLU MLP, attention written out; its forward takes no
#: token_type_ids (sentence-transformers feeds what the signature names); importing it appends to MARKER
MODELING = '''
import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from .configuration_tiny_encoder import TinyEncoderConfig

open({marker!r}, "a").write("imported\\n")


class TinyLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.heads = config.num_attention_heads
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden, additive):
        rows, length, width = hidden.shape
        q, k, v = self.qkv(self.norm1(hidden)).view(rows, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / (width // self.heads) ** 0.5 + additive
        attended = (scores.softmax(-1) @ v).transpose(1, 2).reshape(rows, length, width)
        hidden = hidden + self.out(attended)
        return hidden + self.down(nn.functional.silu(self.up(self.norm2(hidden))))


class TinyEncoderModel(PreTrainedModel):
    config_class = TinyEncoderConfig
    base_model_prefix = "tiny"

    def __init__(self, config):
        super().__init__(config)
        self.words = nn.Embedding(config.vocab_size, config.hidden_size)
        self.positions = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.layers = nn.ModuleList(TinyLayer(config) for _ in range(config.num_hidden_layers))
        self.final = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
        hidden = self.words(input_ids) + self.positions(positions)
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.layers:
            hidden = layer(hidden, additive)
        return BaseModelOutput(last_hidden_state=self.final(hidden))
'''

AUTO_MAP = {"AutoConfig": "configuration_tiny_encoder.TinyEncoderConfig",
            "AutoModel": "modeling_tiny_encoder.TinyEncoderModel"}


def _own_code_model(folder: Path, marker: Path) -> Path:
    """Return a tiny SentenceTransformer folder (the bundled WordPiece vocab, mean pooling, Normalize) whose
    transformer is ``TinyEncoderModel``, loaded through config.json ``auto_map`` from the folder's own files."""
    import torch
    from safetensors.torch import save_file

    build_model(folder)
    (folder / "model.safetensors").unlink()
    (folder / "configuration_tiny_encoder.py").write_text(CONFIGURATION)
    (folder / "modeling_tiny_encoder.py").write_text(MODELING.format(marker=str(marker)))
    # the test's own files, run here to make the weights (the export imports their copies in transformers' cache)
    namespace: dict = {}
    exec(compile(CONFIGURATION, str(folder / "configuration_tiny_encoder.py"), "exec"), namespace)
    source = MODELING.format(marker=str(marker)).replace("from .configuration_tiny_encoder import TinyEncoderConfig", "")
    exec(compile(source, str(folder / "modeling_tiny_encoder.py"), "exec"), namespace)
    config = namespace["TinyEncoderConfig"]()
    torch.manual_seed(5)
    model = namespace["TinyEncoderModel"](config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    data = {**config.to_dict(), "auto_map": AUTO_MAP, "architectures": ["TinyEncoderModel"]}
    (folder / "config.json").write_text(json.dumps(data, indent=2))
    marker.unlink(missing_ok=True)  # the test's own import made it; what follows counts only the export's
    return folder


@pytest.fixture(scope="module")
def own_code_export(tmp_path_factory):
    def build(root: Path) -> tuple[Path, Path, exporter.ExportResult]:
        marker = root / "imported.txt"
        model = _own_code_model(root / "tiny_own_code", marker)
        # onnx only: savedmodel and tflite add a minute for the same graph (the nomic_bert fixture of
        # tests/test_tiny_models.py takes the TF path with no transformers class of its own too)
        result = exporter.export(model, root / "out", targets=["onnx"], variants=False, trust_remote_code=True)
        return model, marker, result

    return once_per_run(tmp_path_factory, "own_code_export", build)


def test_own_code_model_exported_with_the_flag_holds_parity(own_code_export):
    model, marker, result = own_code_export
    assert marker.exists()  # the folder's code ran (in the export and in the reference)
    for row in result.rows:
        emb = row.parity["embeddings"]
        assert row.passed, row.parity
        assert row.parity["tokens"]["mismatches"] == 0
        assert emb["min_cosine"] >= MIN_COSINE and emb["max_abs_diff"] <= MAX_ABS_DIFF, (row.target, emb)


def test_manifest_records_the_code_that_ran(own_code_export):
    model, _, result = own_code_export
    recorded = result.manifest["source"]["remote_code"]
    assert recorded["ran"] is True and recorded["auto_map"] == AUTO_MAP
    assert recorded["files_sha256"] == {
        name: hashlib.sha256((model / name).read_bytes()).hexdigest()
        for name in ("configuration_tiny_encoder.py", "modeling_tiny_encoder.py")}


def test_loaded_export_matches_sentence_transformers(own_code_export):
    from sentence_transformers import SentenceTransformer

    model, _, result = own_code_export
    texts = ["a remote encoder", "its own code, from the folder", ""]
    expected = SentenceTransformer(str(model), trust_remote_code=True, local_files_only=True).encode(texts)
    got = exporter.load(result.out, target="onnx").encode(texts)
    np.testing.assert_allclose(got, expected, atol=MAX_ABS_DIFF)


def test_without_the_flag_the_folder_code_never_runs(tmp_path):
    marker = tmp_path / "imported.txt"
    model = _own_code_model(tmp_path / "tiny_untrusted", marker)
    with pytest.raises(UnsupportedModelError) as raised:
        exporter.export(model, tmp_path / "out", targets=["onnx"], variants=False)
    message = str(raised.value)
    assert "--trust-remote-code" in message and "'tiny_encoder'" in message and "modeling_tiny_encoder" in message
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_flag_with_code_in_a_hub_repository_is_refused_by_file(tmp_path):
    """nomic-embed-text-v1.5's auto_map style: the code is in another repository, which there is no hub to reach."""
    marker = tmp_path / "imported.txt"
    model = _own_code_model(tmp_path / "tiny_hub_code", marker)
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "nomic-ai/nomic-bert-2048--configuration_hf_nomic_bert.NomicBertConfig",
                          "AutoModel": "nomic-ai/nomic-bert-2048--modeling_hf_nomic_bert.NomicBertModel"}
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError) as raised:
        exporter.export(model, tmp_path / "out", targets=["onnx"], variants=False, trust_remote_code=True)
    message = str(raised.value)
    assert "'nomic-ai/nomic-bert-2048'" in message and "modeling_hf_nomic_bert.py is not in the folder" in message
    assert "set auto_map AutoModel to 'modeling_hf_nomic_bert.NomicBertModel'" in message
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_flag_with_a_missing_local_file_is_refused_by_file(tmp_path):
    marker = tmp_path / "imported.txt"
    model = _own_code_model(tmp_path / "tiny_missing_code", marker)
    (model / "modeling_tiny_encoder.py").unlink()
    with pytest.raises(UnsupportedModelError) as raised:
        exporter.export(model, tmp_path / "out", targets=["onnx"], variants=False, trust_remote_code=True)
    assert "modeling_tiny_encoder.py is not in" in str(raised.value)
    assert not marker.exists()


def test_cli_refusal_names_the_flag(capsys, tmp_path):
    from exporter.cli import main

    model = _own_code_model(tmp_path / "tiny_cli", tmp_path / "imported.txt")
    code = main([str(model), "-o", str(tmp_path / "out"), "--targets", "onnx"])
    err = capsys.readouterr().err
    assert code == 2 and "--trust-remote-code" in err and "Traceback" not in err


def test_check_asks_for_the_flag_again(own_code_export):
    """The manifest's record that the code ran gives no consent: check without the flag refuses."""
    _, _, result = own_code_export
    with pytest.raises(UnsupportedModelError, match="--trust-remote-code"):
        exporter.check(result.out)


@pytest.fixture
def nomic_copy(tiny_model, tmp_path):
    import shutil

    from test_tiny_models import MODELS

    name = "nomic_bert_mean_layernorm_norm_truncated"
    return Path(shutil.copytree(tiny_model(name, **MODELS[name]), tmp_path / "nomic"))


def test_nomic_v15_folder_loads_with_transformers_own_class(nomic_copy):
    from exporter.model import read_model

    spec = read_model(nomic_copy)
    assert json.loads((nomic_copy / "config.json").read_text())["auto_map"]["AutoModel"].startswith("nomic-ai/")
    assert spec.transformer.architecture.model_type == "nomic_bert" and spec.transformer.remote_code is None


def test_nomic_hub_keys_that_disagree_with_the_class_are_refused(nomic_copy):
    from exporter.model import read_model

    config = json.loads((nomic_copy / "config.json").read_text())
    (nomic_copy / "config.json").write_text(json.dumps({**config, "n_embd": 768, "rotary_emb_fraction": 0.5}))
    with pytest.raises(UnsupportedModelError) as raised:
        read_model(nomic_copy)
    assert "n_embd 768 but transformers' NomicBertConfig reads hidden_size 32" in str(raised.value)
    assert "rotary_emb_fraction 0.5" in str(raised.value)


def test_nomic_with_the_flag_would_load_the_hub_code_and_is_refused(nomic_copy):
    from exporter.model import read_model

    with pytest.raises(UnsupportedModelError) as raised:
        read_model(nomic_copy, trust_remote_code=True)
    assert "'nomic-ai/nomic-bert-2048'" in str(raised.value)


#: jina-embeddings-v2-base-en's config.json beyond BERT's keys: model_type "bert", ALiBi and a gated MLP in its hub code
JINA_V2_CONFIG = {
    "auto_map": {"AutoConfig": "jinaai/jina-bert-implementation--configuration_bert.JinaBertConfig",
                 "AutoModel": "jinaai/jina-bert-implementation--modeling_bert.JinaBertModel"},
    "position_embedding_type": "alibi", "feed_forward_type": "geglu", "emb_pooler": "mean"}


@pytest.fixture
def jina_v2_folder(tmp_path) -> Path:
    """A tiny BERT folder with jina-embeddings-v2's hub-code config (transformers 5.23 has no JinaBert class)."""
    model = build_model(tmp_path / "jina_v2")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, **JINA_V2_CONFIG}))
    return model


def test_jina_v2_without_the_flag_is_refused_naming_its_code(jina_v2_folder):
    """model_type "bert" is transformers' own: without the flag BertModel would load, silently without ALiBi."""
    from exporter.model import read_model

    with pytest.raises(UnsupportedModelError) as raised:
        read_model(jina_v2_folder)
    message = str(raised.value)
    assert "position_embedding_type 'alibi', feed_forward_type 'geglu': transformers' BertModel reads no such key" in message
    assert ("put modeling_bert.py of the hub repository 'jinaai/jina-bert-implementation' (and the files it imports) in "
            "the model folder, set auto_map AutoModel to 'modeling_bert.JinaBertModel', and pass --trust-remote-code"
            in message)


def test_jina_v2_with_the_flag_names_the_missing_modeling_file(jina_v2_folder):
    from exporter.model import read_model

    with pytest.raises(UnsupportedModelError) as raised:
        read_model(jina_v2_folder, trust_remote_code=True)
    message = str(raised.value)
    assert "'jinaai/jina-bert-implementation'" in message and "modeling_bert.py is not in the folder" in message
    assert "set auto_map AutoModel to 'modeling_bert.JinaBertModel'" in message
