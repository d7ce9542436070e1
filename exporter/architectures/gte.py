"""``gte``: gte-multilingual-base and gte-*-v1.5 (rotary positions, gated GELU MLP, post-norm layers), transformers'
own ``GteModel``.

The hub ships these models for their own code: config.json ``model_type`` ``"new"`` with ``auto_map`` to
``Alibaba-NLP/new-impl--configuration.NewConfig`` / ``--modeling.NewModel``, and that code's keys: ``rope_theta``,
``rope_scaling`` (gte-multilingual-base: ``{"type": "ntk", "factor": 8.0}``), ``position_embedding_type``,
``layer_norm_type``, ``pack_qkv``, ``unpad_inputs``, ``use_memory_efficient_attention``, ``logn_attention_scale``,
``logn_attention_clip1``. (The keys are those text-embeddings-inference's ``GTEConfig`` reads and transformers' GTE
documentation names; the hub's own config.json and code were out of reach here.)

transformers 5.23 does not read ``model_type`` ``"new"``: ``AutoConfig`` asks for ``trust_remote_code``, and the code
is in another hub repository. Its ``GteModel`` reads the same checkpoint (``conversion_mapping.py`` ``"gte"``: a
``new.`` prefix dropped, ``attention.qkv_proj`` and ``mlp.up_gate_proj`` split, ``attn_ln`` / ``mlp_ln`` renamed) once
config.json says ``model_type`` ``"gte"`` and states the hub code's static NTK scaling as transformers' linear RoPE:
the hub code's frequencies are those of the base ``rope_theta × factor``, each divided by ``factor ** (2 / head_dim)``;
linear RoPE of ``rope_theta × factor`` divides them by its ``factor``. So a ``new`` folder is refused with that edit
(:func:`native_route`), and a ``gte`` folder is refused where a hub key says other than what ``GteConfig`` reads or asks
for what ``GteModel`` does not compute (:meth:`Gte.problems`). ``unpad_inputs`` and ``use_memory_efficient_attention``
are accepted: they choose how the hub code skips padding and which kernel computes the same softmax attention, not
what is computed.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import onnx
import torch

from . import Architecture, register

#: the ``model_type`` of the hub code (Alibaba-NLP/new-impl) whose checkpoints ``GteModel`` reads
HUB_MODEL_TYPE = "new"
#: hub-code options → the value transformers' GteModel computes as (absent or null: that too)
COMPUTED_AS = {"position_embedding_type": "rope", "layer_norm_type": "layer_norm", "pack_qkv": True,
               "logn_attention_scale": False, "logn_attention_clip1": False}
#: transformers' GteConfig.default_theta, its rope_theta when config.json has none
DEFAULT_THETA = 160_000.0


@register
class Gte(Architecture):
    model_type = "gte"
    takes_token_type_ids = True
    #: ORT's "bert" fusions match the residual LayerNorms and the gated MLP's GELU, not the rotary attention
    ort_optimizer_type = "bert"

    def max_positions(self, config: dict[str, Any]) -> int:
        """Rotary positions have no table: the configured ``max_position_embeddings`` (GteConfig's default 8192)."""
        return int(config.get("max_position_embeddings") or 8192)

    def problems(self, config: dict[str, Any]) -> list[str]:
        found = option_problems(config, "transformers' GteModel")
        if config.get("rope_scaling") is not None:
            found.append(f"config.json rope_scaling {config['rope_scaling']!r}: transformers' GteConfig reads it in "
                         f"place of rope_parameters and has no such RoPE; {_rope_fix(config)}")
        parameters = config.get("rope_parameters") or {}
        theta = parameters.get("rope_theta", config.get("rope_theta", DEFAULT_THETA))  # GteConfig's order
        if config.get("rope_theta") is not None and float(config["rope_theta"]) != float(theta):
            found.append(f"config.json rope_theta {config['rope_theta']!r} but transformers' GteConfig reads "
                         f"rope_parameters.rope_theta {theta!r}; remove rope_theta (the hub code's base) once "
                         f"rope_parameters holds the RoPE")
        return found

    def embeddings(self, model: torch.nn.Module, input_ids: torch.Tensor,
                   token_type_ids: torch.Tensor) -> torch.Tensor:
        return model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)

    def layers(self, model: torch.nn.Module) -> torch.nn.Module:
        return _Layers(model)

    def tf_rewrites(self, scope: str | None = None) -> list[Callable[[onnx.ModelProto], Any]]:
        """The defaults; rotary's int64 ``size // 2`` divided in float32 (TFLite has no integer RealDiv)."""
        from ..graphs.onnx_for_tflite import integer_div_in_float32

        return [*super().tf_rewrites(scope), integer_div_in_float32]


class _Layers(torch.nn.Module):
    """GteModel after its embeddings, called as the fused-encoder path calls a BERT encoder: the layers with the
    rotary embeddings of positions 0..n-1 (GteModel's own) and the additive mask given."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        positions = torch.arange(hidden.shape[1], device=hidden.device)[None]
        rotary = self.model.rotary_emb(hidden, positions)
        for layer in self.model.layers:
            hidden = layer(hidden, attention_mask=attention_mask, position_embeddings=rotary)
        return (hidden,)


def option_problems(config: dict[str, Any], reader: str) -> list[str]:
    """Return the hub code's options in ``config`` that ``reader`` (transformers' GteModel) does not compute."""
    return [f"config.json {key} {config[key]!r}: {reader} computes as {key} {computed!r} (the hub code's other "
            f"options are not in it)"
            for key, computed in COMPUTED_AS.items() if config.get(key) is not None and config[key] != computed]


def native_rope(config: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """Return (the ``rope_parameters`` GteConfig needs for the hub code's ``rope_theta`` and ``rope_scaling``, "") or
    (None, why there are none)."""
    scaling = config.get("rope_scaling")
    if config.get("rope_theta") is None:
        return None, "config.json has no rope_theta (the hub code's base)"
    theta = float(config["rope_theta"])
    if scaling is None:
        return {"rope_type": "default", "rope_theta": theta}, ""
    kind = scaling.get("type", scaling.get("rope_type")) if isinstance(scaling, dict) else None
    if kind != "ntk" or set(scaling) - {"type", "rope_type", "factor"} or "factor" not in scaling:
        return None, (f"rope_scaling {scaling!r} is not the static NTK scaling ({{'type': 'ntk', 'factor': f}}) "
                      f"transformers' linear RoPE states")
    factor = float(scaling["factor"])
    head_dim = int(config.get("hidden_size", 768)) // int(config.get("num_attention_heads", 12))
    return {"rope_type": "linear", "rope_theta": theta * factor, "factor": factor ** (2 / head_dim)}, ""


def _rope_fix(config: dict[str, Any]) -> str:
    rope, why = native_rope(config)
    if rope is None:
        return f"no rope_parameters of transformers' state it: {why}"
    return (f"set rope_parameters {json.dumps(rope)} (the hub code's static NTK scaling as linear RoPE) and remove "
            f"rope_scaling and rope_theta")


def native_route(config: dict[str, Any]) -> str:
    """Return how a folder of the hub code's ``model_type`` ``new`` loads through transformers' GteModel without
    its code (the config.json edit), or why it cannot; "" for any other ``model_type``."""
    if config.get("model_type") != HUB_MODEL_TYPE:
        return ""
    unlike = option_problems(config, "transformers' GteModel")
    rope, why = native_rope(config)
    if unlike or rope is None:
        return ("transformers' own GteModel cannot stand in for this code: " + "; ".join(unlike or [why]))
    return (f"or, without the flag: model_type 'new' is the hub code of gte-multilingual and gte-*-v1.5 "
            f"(Alibaba-NLP/new-impl), whose checkpoints transformers' own GteModel reads as they are; it does so once "
            f"config.json sets \"model_type\": \"gte\" and \"rope_parameters\": {json.dumps(rope)} (the hub code's "
            f"static NTK scaling as linear RoPE) and has no rope_scaling or rope_theta")
