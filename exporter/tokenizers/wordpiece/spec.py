"""WordPiece tokenizers (BERT, DistilBERT): settings read from the reference tokenizer.

The graph cannot call HF's normalizer, so we tabulate it. HF's BertNormalizer and
BertPreTokenizer work code point by code point, so at export time we ask the reference
tokenizer itself, for every code point, what it becomes (deleted, unchanged, replaced by a
string) and how its pre-tokenizer treats each normalized character (splits on it, isolates
it). The emitters apply those classes and that table in the graph; no Unicode rule is
re-implemented here, so whatever HF does (Hangul to jamo, ligatures, format characters,
private use) is what the table says.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from ...modules.transformer import TransformerConfig
from ..shared.codepoints import CharClasses, all_code_points, code_point_ranges, placeholders
from ..shared.family import Framing, TokenizerSpec, normalizer_steps, read_framing

PER_CHAR_NORMALIZERS = {"BertNormalizer", "Lowercase"}


def _pretokenizer_class(pre_tokenizer: Any, ch: str) -> str:
    """Return 'whitespace', 'isolated' or 'word' for one normalized character."""
    pieces = [p for p, _ in pre_tokenizer.pre_tokenize_str("a" + ch + "a")]
    if pieces == ["a", "a"]:
        return "whitespace"
    if pieces == ["a", ch, "a"]:
        return "isolated"
    return "word"


@dataclass(frozen=True)
class WordPieceSpec(TokenizerSpec):
    """A BERT-style WordPiece tokenizer (BERT, DistilBERT, MPNet), as the reference runs it."""

    vocab: tuple[str, ...]
    unk_token: str
    continuing_subword_prefix: str
    max_input_chars_per_word: int
    framing: Framing
    normalizer: dict[str, Any]
    #: special-token literal → id, matched on the raw text before normalizing, longest first
    specials: tuple[tuple[str, int], ...]
    #: special tokens with ``normalized: true``: their normalized literal → id, matched on the
    #: normalized text (MPNet's ``<unk>``: "<UNK>" lowercases to it)
    normalized_specials: tuple[tuple[str, int], ...] = ()
    backend_json: str = field(default="", repr=False)

    family = "wordpiece"

    @property
    def unk_id(self) -> int:
        return self.vocab.index(self.unk_token)

    @classmethod
    def read(cls, data: dict[str, Any], tokenizer: Any, transformer: TransformerConfig,
             problems: list[str]) -> "WordPieceSpec | None":
        where = f"tokenizer in {transformer.folder}"
        normalizers = normalizer_steps(data.get("normalizer"))
        bad = [n.get("type") for n in normalizers if n.get("type") not in PER_CHAR_NORMALIZERS]
        if bad:
            problems.append(f"{where}: normalizer(s) {bad}; supported: {', '.join(sorted(PER_CHAR_NORMALIZERS))}")
        pre = (data.get("pre_tokenizer") or {}).get("type")
        if pre != "BertPreTokenizer":
            problems.append(f"{where}: pre-tokenizer {pre!r}; supported: BertPreTokenizer")
        framing = read_framing(data.get("post_processor"), tokenizer, max_seq_length=transformer.max_seq_length,
                               where=where, problems=problems,
                               pair_truncation=transformer.pair_truncation,
                               specials=transformer.specials)
        model = data["model"]
        vocab_map: dict[str, int] = model["vocab"]
        vocab = [""] * len(vocab_map)
        for token, index in vocab_map.items():
            vocab[index] = token
        raw, normalized = [], []
        backend = tokenizer.backend_tokenizer
        for added in data.get("added_tokens", []):
            # lstrip / rstrip take the whitespace beside the token into the match: BertPreTokenizer drops
            # whitespace anyway, so the ids are the same (tests/test_tiny_models.py: MPNet's <mask>)
            if added.get("single_word"):
                problems.append(f"{where}: added token {added['content']!r} with single_word matching; "
                                "supported: special tokens matched anywhere")
            elif added.get("normalized"):
                literal = backend.normalizer.normalize_str(added["content"]) if backend.normalizer else added["content"]
                normalized.append((literal, int(added["id"])))
            else:
                raw.append((added["content"], int(added["id"])))
        if problems:
            return None
        longest_first = lambda pairs: tuple(sorted(pairs, key=lambda s: -len(s[0])))  # noqa: E731
        return cls(
            vocab=tuple(vocab),
            unk_token=model["unk_token"],
            continuing_subword_prefix=model.get("continuing_subword_prefix", "##"),
            max_input_chars_per_word=int(model.get("max_input_chars_per_word", 100)),
            framing=framing,
            normalizer={"steps": normalizers},
            specials=longest_first(raw),
            normalized_specials=longest_first(normalized),
            backend_json=backend.to_str(),
        )

    def describe(self) -> dict[str, Any]:
        """Return the settings recorded in the manifest."""
        return {
            **super().describe(), "vocab_size": len(self.vocab), "unk_token": self.unk_token,
            "continuing_subword_prefix": self.continuing_subword_prefix,
            "max_input_chars_per_word": self.max_input_chars_per_word, "normalizer": self.normalizer,
            "special_tokens": [s for s, _ in self.specials],
            "normalized_special_tokens": [s for s, _ in self.normalized_specials],
        }

    sweep_words = True  # WhitespaceSplit / BertPreTokenizer: each word alone

    def piece_texts(self) -> list[str]:
        """Return every piece's text: a continuation piece without its prefix ("##ing" → "ing")."""
        prefix = self.continuing_subword_prefix
        return [piece[len(prefix):] if prefix and piece.startswith(prefix) else piece for piece in self.vocab]

    def piece(self, token_id: int) -> str:
        return self.vocab[token_id]

    def char_classes(self) -> CharClasses:
        """Return how the reference normalizes and pre-tokenizes every code point (about 3 s)."""
        return _char_classes(self.backend_json)

    def placeholders(self) -> dict[str, int]:
        """Return the private-use character standing for each special token → its id (raw ones first)."""
        return placeholders(token_id for _, token_id in (*self.specials, *self.normalized_specials))


@functools.lru_cache(maxsize=4)
def _char_classes(backend_json: str) -> CharClasses:
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(backend_json)
    normalizer, pre_tokenizer = backend.normalizer, backend.pre_tokenizer
    deleted, padded, mapped = [], set(), {}
    for cp in all_code_points():
        ch = chr(cp)
        out = normalizer.normalize_str(ch) if normalizer is not None else ch
        if out == "":
            deleted.append(cp)
        elif out == f" {ch} ":  # CJK ideographs: the normalizer puts spaces around them
            padded.add(cp)
        elif out != ch:
            mapped[ch] = out
    isolated, whitespace = [], []
    for cp in all_code_points():
        kind = _pretokenizer_class(pre_tokenizer, chr(cp))
        if kind == "isolated" or cp in padded:
            isolated.append(cp)
        elif kind == "whitespace":
            whitespace.append(cp)
    return CharClasses(deleted=code_point_ranges(deleted), mapped=mapped, isolated=code_point_ranges(isolated),
                       whitespace=code_point_ranges(whitespace))
