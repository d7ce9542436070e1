"""The SentencePiece model proto the Unigram and BPE kernels run (onnxruntime-extensions', tensorflow-text's)."""
from __future__ import annotations

from typing import Any


def kernel_model(model: Any, model_type: int, unk_id: int) -> bytes:
    """Return a SentencePiece ``ModelProto`` with its pieces set as the kernels need it: ``model_type``, no
    normalizer (the graphs hand the kernel finished words), no BOS/EOS/PAD of its own."""
    spec = model.trainer_spec
    spec.model_type = model_type
    spec.vocab_size = len(model.pieces)
    spec.unk_id = unk_id
    spec.bos_id = spec.eos_id = spec.pad_id = -1
    normalizer = model.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = normalizer.remove_extra_whitespaces = normalizer.escape_whitespaces = False
    return model.SerializeToString()
