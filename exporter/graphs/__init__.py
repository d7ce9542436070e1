"""Graph building and rewrites: the encoder export, ORT's fused and int8 encoders, the onnx-tf bridge.

Tokenizer graphs are built by the tokenizer families (``exporter/tokenizers``) with the helpers here.
"""

#: the tokenizer graphs' outputs and the encoder graphs' inputs, in this order, everywhere
TOKEN_NAMES = ("input_ids", "attention_mask", "token_type_ids")
