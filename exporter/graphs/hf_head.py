"""A transformers model with a head (sequence classification, masked LM) as the torch module a graph is traced from."""
from __future__ import annotations

import torch

from ..model import ModelSpec


class HeadModel(torch.nn.Module):
    """``spec``'s transformer loaded with ``auto_class`` (eager attention, local files, the folder's own
    code only with ``--trust-remote-code``)."""

    def __init__(self, spec: ModelSpec, auto_class: str):
        super().__init__()
        import transformers
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model = getattr(transformers, auto_class).from_pretrained(
            str(spec.transformer.folder), local_files_only=True, trust_remote_code=spec.transformer.trust_remote_code,
            attn_implementation="eager").eval()
        self.architecture = spec.transformer.architecture.for_model(self.model)
        #: the reference tokenizer returns no token_type_ids (XLM-R, RoBERTa): the model sees zeros
        self.token_type_ids = spec.head.token_type_ids

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor) -> torch.Tensor:
        """Return the head's logits for the three token arrays."""
        if not self.token_type_ids:
            token_type_ids = torch.zeros_like(input_ids)
        kwargs = self.architecture.call_kwargs(self.model, input_ids, attention_mask, token_type_ids)
        return self.model(**kwargs, return_dict=True).logits
