"""gte-multilingual: what the tiny model's parity (tests/test_tiny_models.py, ``gte_cls_norm``) would not show alone.

The hub ships gte-multilingual-base for its own code (config.json ``model_type`` ``"new"``, ``auto_map`` to
``Alibaba-NLP/new-impl``), which is out of reach here and not in the project. transformers 5.23 does not load that
folder without the code; its own ``GteModel`` reads the checkpoint once config.json says ``"gte"`` and states the hub
code's static NTK RoPE as linear RoPE. These tests prove the refusal names that edit, that the edit gives the hub
code's rotary frequencies (computed here from the NTK formula), and that options GteModel lacks are refused by name.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import GTE_OPTIONS
from exporter.errors import UnsupportedModelError
from exporter.model import read_model
from model_factory import GTE_HUB_ROPE_THETA

NAME = "gte_cls_norm"
#: gte-multilingual-base's config.json rope_scaling
HUB_NTK = {"type": "ntk", "factor": 8.0}


@pytest.fixture
def gte_copy(tiny_model, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_model(NAME, **GTE_OPTIONS), tmp_path / "gte"))


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _as_shipped(folder: Path) -> Path:
    """Rewrite the folder's config.json as the hub ships gte-multilingual-base's: the hub code's model_type and
    RoPE keys (the checkpoint's tensor names are the hub code's already: transformers saves them so)."""
    config = _config(folder)
    del config["rope_parameters"]
    config.update(model_type="new", rope_theta=GTE_HUB_ROPE_THETA, rope_scaling=HUB_NTK)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


def test_the_fixtures_rope_is_the_hub_codes_ntk_rope(tiny_model):
    """The hub code's static NTK scaling (text-embeddings-inference's reading of it): frequencies of the base
    theta × f, each divided by f ** (2 / head_dim). The fixture's linear RoPE gives the same, in GteModel."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(tiny_model(NAME, **GTE_OPTIONS)), local_files_only=True)
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    factor = HUB_NTK["factor"]
    steps = torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim
    ntk = 1.0 / (GTE_HUB_ROPE_THETA * factor) ** steps / factor ** (2 / head_dim)
    np.testing.assert_allclose(model.rotary_emb.inv_freq.double().numpy(), ntk.numpy(), rtol=1e-6)


def test_the_folder_as_the_hub_ships_it_is_refused_with_the_native_edit(gte_copy):
    from transformers import AutoConfig

    fixture_rope = _config(gte_copy)["rope_parameters"]
    folder = _as_shipped(gte_copy)
    with pytest.raises(ValueError, match="trust_remote_code"):  # transformers maps no "new" to its GteModel
        AutoConfig.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    with pytest.raises(UnsupportedModelError) as raised:
        read_model(folder)
    message = str(raised.value)
    assert "--trust-remote-code" in message and "'Alibaba-NLP/new-impl--modeling.NewModel'" in message
    assert 'sets "model_type": "gte" and "rope_parameters": {' in message
    rope = json.loads(re.search(r'"rope_parameters": (\{[^}]*\})', message).group(1))
    # the edit the message names, applied: the folder the parity fixture is
    config = {key: value for key, value in _config(folder).items() if key not in ("rope_theta", "rope_scaling")}
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "gte", "rope_parameters": rope}))
    spec = read_model(folder)
    assert spec.transformer.architecture.model_type == "gte" and spec.transformer.remote_code is None
    assert rope == pytest.approx(fixture_rope)


def test_the_shipped_folder_with_the_flag_names_the_missing_code_and_the_native_edit(gte_copy):
    with pytest.raises(UnsupportedModelError) as raised:
        read_model(_as_shipped(gte_copy), trust_remote_code=True)
    message = str(raised.value)
    assert "modeling.py is not in the folder" in message and "set auto_map AutoModel to 'modeling.NewModel'" in message
    assert '"model_type": "gte"' in message


def test_hub_keys_that_disagree_with_gtemodel_are_refused(gte_copy):
    config = _config(gte_copy)
    config.update(rope_theta=GTE_HUB_ROPE_THETA, rope_scaling=HUB_NTK, logn_attention_scale=True,
                  layer_norm_type="rms_norm", pack_qkv=False)
    (gte_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError) as raised:
        read_model(gte_copy)
    message = str(raised.value)
    assert "rope_scaling {'type': 'ntk', 'factor': 8.0}: transformers' GteConfig reads it in place" in message
    assert "rope_theta 20000.0 but transformers' GteConfig reads rope_parameters.rope_theta 160000.0" in message
    for option in ("logn_attention_scale True", "layer_norm_type 'rms_norm'", "pack_qkv False"):
        assert f"config.json {option}: transformers' GteModel computes as" in message


def test_a_shipped_folder_with_options_gtemodel_lacks_gets_no_native_edit(gte_copy):
    folder = _as_shipped(gte_copy)
    (folder / "config.json").write_text(json.dumps({**_config(folder), "logn_attention_clip1": True}))
    with pytest.raises(UnsupportedModelError) as raised:
        read_model(folder)
    message = str(raised.value)
    assert "GteModel cannot stand in for this code: config.json logn_attention_clip1 True" in message
    assert '"model_type": "gte"' not in message


def test_a_new_prefixed_checkpoint_loads_the_same_weights(gte_copy):
    """gte-multilingual-base's architectures is a NewFor… head class: its tensors carry the ``new.`` prefix and a
    head; GteModel drops both and reads the same weights (transformers' conversion mapping)."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel

    before = AutoModel.from_pretrained(str(gte_copy), local_files_only=True).state_dict()
    tensors = load_file(str(gte_copy / "model.safetensors"))
    prefixed = {f"new.{name}": tensor for name, tensor in tensors.items()}
    prefixed.update({"classifier.weight": torch.ones(1, 32), "classifier.bias": torch.zeros(1)})
    save_file(prefixed, str(gte_copy / "model.safetensors"))
    after = AutoModel.from_pretrained(str(gte_copy), local_files_only=True).state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_the_fused_encoder_matches_the_reference(tiny_model):
    """``model_optimized.onnx``: ORT's "bert" fusions match the embedding sum's and the residuals' LayerNorms
    (SkipLayerNormalization: 1 + 2 per layer) and the gated MLP's GELU, not the rotary attention."""
    import onnxruntime as ort

    from exporter.graphs.encoder_fused import fused_encoder
    from exporter.verify.corpus import parity_texts
    from exporter.verify.reference import ReferenceRunner

    folder = tiny_model(NAME, **GTE_OPTIONS)
    model, counts = fused_encoder(read_model(folder), opset=20)
    assert counts.get("SkipLayerNormalization") == 5 and counts.get("Gelu") == 2, counts
    assert "Attention" not in counts, counts
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    reference = ReferenceRunner(folder)
    texts = parity_texts()
    tokens = reference.tokenize(texts)
    tokens.setdefault("token_type_ids", np.zeros_like(tokens["input_ids"]))
    got = session.run(None, tokens)[0]
    assert np.abs(got - reference.encode(texts, batch_size=len(texts))).max() <= 1e-5
