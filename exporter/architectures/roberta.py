"""``roberta``: RoBERTa and DistilRoBERTa (all-distilroberta-v1, nli-/stsb-roberta): XLM-RoBERTa's layers and positions.

transformers' ``RobertaModel`` is the code ``XLMRobertaModel`` copies: position ids after the padding
index, one token type, the same ORT fusion and TensorFlow rewrites.
"""
from __future__ import annotations

from . import register
from .xlm_roberta import XLMRoberta


@register
class Roberta(XLMRoberta):
    model_type = "roberta"
