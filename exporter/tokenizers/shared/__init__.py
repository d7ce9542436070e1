"""The layer every tokenizer family uses and that imports none of them.

* ``family``: the contract (:class:`~.family.TokenizerSpec`, :class:`~.family.Family`, the registry) and
  the framing read from the reference (:class:`~.family.Framing`);
* ``codepoints``: reserved marks, character classes as ranges, two-stage code-point tables;
* ``framing_onnx`` / ``framing_tf``: special tokens, truncation, padding, masks, once per graph language;
* ``chars_onnx`` / ``chars_tf``: the string-op and code-point graph pieces the emitters share;
* ``sentencepiece``: the SentencePiece model proto the Unigram and BPE kernels run.
"""
