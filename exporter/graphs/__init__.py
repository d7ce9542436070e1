"""Graph building and rewrites: the encoder export, ORT's fused and int8 encoders, the onnx-tf bridge.

Tokenizer graphs are built by the tokenizer families (``exporter/tokenizers``) with the helpers here.
"""

# the artifacts' contract is defined where they are read; the builders write it
from ..runtime.runners import TOKEN_NAMES

__all__ = ["TOKEN_NAMES"]
