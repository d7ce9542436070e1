"""``nomic_bert``: nomic-embed-text-v1/v1.5 (rotary positions, SwiGLU, no biases), transformers' own class.

transformers 5.23 has ``NomicBertModel``: with ``trust_remote_code=False`` it loads a ``nomic_bert`` folder itself,
the ``auto_map`` to ``nomic-ai/nomic-bert-2048`` unread, and renames the checkpoint's weights (``attn.Wqkv``, ``fc11``…;
``conversion_mapping.py``) on loading. Its config reads ``hidden_size``, ``num_hidden_layers``… and not the keys the
hub code's config writes (``n_embd``, ``n_layer``…): nomic-embed-text-v1.5 loads because its shape is the class's
defaults. :meth:`NomicBert.problems` refuses a config whose hub keys say other than what the class reads, and the
hub code's options the class does not have (partial or interleaved rotary, scaled rotary, biases, pre-norm, MoE).
Rotary positions have no table: the positions are the hub config's ``n_positions`` (8192 for v1.5).
"""
from __future__ import annotations

from typing import Any, Callable

import onnx

from . import Architecture, register

#: hub-code config key → (the key transformers' NomicBertConfig reads, its default)
SAME_AS = {"n_embd": ("hidden_size", 768), "n_layer": ("num_hidden_layers", 12), "n_head": ("num_attention_heads", 12),
           "n_inner": ("intermediate_size", 3072), "layer_norm_epsilon": ("layer_norm_eps", 1e-12)}
#: hub-code options → the value transformers' NomicBertModel computes as (absent or null: that too)
COMPUTED_AS = {"rotary_emb_fraction": 1.0, "rotary_emb_interleaved": False, "rotary_scaling_factor": None,
               "qkv_proj_bias": False, "mlp_fc1_bias": False, "mlp_fc2_bias": False, "prenorm": False,
               "parallel_block": False, "use_rms_norm": False, "activation_function": "swiglu", "causal": False,
               "moe_every_n_layers": 0, "num_experts": 0}


@register
class NomicBert(Architecture):
    model_type = "nomic_bert"
    takes_token_type_ids = True
    ort_optimizer_type = None
    no_fusion_reason = ("rotary positions and a SwiGLU MLP without biases: ONNX Runtime's BERT fusions do not "
                        "match them")

    def max_positions(self, config: dict[str, Any]) -> int:
        return int(config.get("max_position_embeddings") or config.get("n_positions") or 2048)

    def problems(self, config: dict[str, Any]) -> list[str]:
        found = []
        for key, (native, default) in SAME_AS.items():
            if key in config and config[key] != config.get(native, default):
                found.append(f"config.json {key} {config[key]!r} but transformers' NomicBertConfig reads {native} "
                             f"{config.get(native, default)!r} (its default when absent); set {native} to "
                             f"{config[key]!r}")
        theta = (config.get("rope_parameters") or {}).get("rope_theta", 1000.0)
        if "rotary_emb_base" in config and float(config["rotary_emb_base"]) != float(theta):
            found.append(f"config.json rotary_emb_base {config['rotary_emb_base']!r} but transformers' NomicBertConfig "
                         f"reads rope_parameters.rope_theta {theta!r}; set rope_parameters.rope_theta")
        for key, computed in COMPUTED_AS.items():
            if config.get(key) is not None and config[key] != computed:
                found.append(f"config.json {key} {config[key]!r}: transformers' NomicBertModel computes as "
                             f"{key} {computed!r} (the hub code's other options are not in it)")
        return found

    def tf_rewrites(self, scope: str | None = None) -> list[Callable[[onnx.ModelProto], Any]]:
        """The defaults; rotary's int64 ``size // 2`` divided in float32 (TFLite has no integer RealDiv)."""
        from ..graphs.onnx_for_tflite import integer_div_in_float32

        return [*super().tf_rewrites(scope), integer_div_in_float32]
