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

from ..errors import UnsupportedModelError
from ..modules.transformer import TransformerConfig
from . import register

PER_CHAR_NORMALIZERS = {"BertNormalizer", "Lowercase"}
SURROGATES = range(0xD800, 0xE000)
#: private-use code points that stand for special tokens inside the graph (HF deletes them from text)
PLACEHOLDER_BASE = 0xF0000
SENTINEL = "\U0010FFFD"  # ends every row inside the ONNX graph; the reference deletes it from text
UNKNOWN_MARK = "\U0010FFFC"  # what the ONNX WordPiece op emits for a failed word; never a vocab entry


@dataclass(frozen=True)
class CharClasses:
    """How the reference treats every code point; ranges are inclusive (first, last) pairs."""

    deleted: tuple[tuple[int, int], ...]
    mapped: dict[str, str]
    isolated: tuple[tuple[int, int], ...]  # punctuation and CJK: a word of their own
    whitespace: tuple[tuple[int, int], ...]  # split on, dropped


def _ranges(code_points: list[int]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for cp in code_points:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return tuple((a, b) for a, b in out)


def regex_class(ranges) -> str:
    """Return an RE2 character class matching the inclusive (first, last) code-point ranges."""
    parts = [f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges]
    return "[" + "".join(parts) + "]"


def regex_literal(text: str) -> str:
    """Return an RE2 pattern matching ``text`` exactly (every character escaped as \\x{...})."""
    return "".join(f"\\x{{{ord(c):X}}}" for c in text)


def without(ranges, removed: set[int]) -> tuple[tuple[int, int], ...]:
    """Return ``ranges`` less the code points in ``removed``."""
    out = []
    for a, b in ranges:
        start = a
        for cp in sorted(c for c in removed if a <= c <= b):
            if start <= cp - 1:
                out.append((start, cp - 1))
            start = cp + 1
        if start <= b:
            out.append((start, b))
    return tuple(out)


def _all_code_points() -> list[int]:
    return [cp for cp in range(0x110000) if cp not in SURROGATES]


def _pretokenizer_class(pre_tokenizer: Any, ch: str) -> str:
    """Return 'whitespace', 'isolated' or 'word' for one normalized character."""
    pieces = [p for p, _ in pre_tokenizer.pre_tokenize_str("a" + ch + "a")]
    if pieces == ["a", "a"]:
        return "whitespace"
    if pieces == ["a", ch, "a"]:
        return "isolated"
    return "word"


@dataclass(frozen=True)
class RegexRules:
    """The character classes as RE2 patterns, shared by the ONNX and TensorFlow emitters."""

    reserved: str  # our private-use marks: removed from the input first
    specials: tuple[tuple[str, str], ...]  # (special-token literal, " placeholder ") rewrites
    deleted: str  # what the reference deletes
    whitespace: str  # split on, dropped
    isolated: str  # punctuation and CJK: a word of their own


@dataclass(frozen=True)
class WordPieceSpec:
    """A BERT-style WordPiece tokenizer, as the reference runs it."""

    vocab: tuple[str, ...]
    unk_token: str
    continuing_subword_prefix: str
    max_input_chars_per_word: int
    cls_token: str
    sep_token: str
    pad_id: int
    max_seq_length: int
    normalizer: dict[str, Any]
    specials: tuple[tuple[str, int], ...]  # literal text → id, matched before normalizing
    backend_json: str = field(repr=False)

    family = "wordpiece"

    @property
    def cls_id(self) -> int:
        return self.vocab.index(self.cls_token)

    @property
    def sep_id(self) -> int:
        return self.vocab.index(self.sep_token)

    @property
    def unk_id(self) -> int:
        return self.vocab.index(self.unk_token)

    @classmethod
    def read(cls, data: dict[str, Any], tokenizer: Any, transformer: TransformerConfig,
             problems: list[str]) -> "WordPieceSpec | None":
        where = f"tokenizer in {transformer.folder}"
        normalizers = _normalizer_list(data.get("normalizer"))
        bad = [n.get("type") for n in normalizers if n.get("type") not in PER_CHAR_NORMALIZERS]
        if bad:
            problems.append(f"{where}: normalizer(s) {bad}; supported: {', '.join(sorted(PER_CHAR_NORMALIZERS))}")
        pre = (data.get("pre_tokenizer") or {}).get("type")
        if pre != "BertPreTokenizer":
            problems.append(f"{where}: pre-tokenizer {pre!r}; supported: BertPreTokenizer")
        template = _single_template(data.get("post_processor"))
        if template is None:
            problems.append(f"{where}: post-processor {data.get('post_processor')!r}; supported: "
                            "BertProcessing or TemplateProcessing '[CLS] $A [SEP]'")
        model = data["model"]
        vocab_map: dict[str, int] = model["vocab"]
        vocab = [""] * len(vocab_map)
        for token, index in vocab_map.items():
            vocab[index] = token
        specials = []
        for added in data.get("added_tokens", []):
            if added.get("normalized") or added.get("lstrip") or added.get("rstrip") or added.get("single_word"):
                problems.append(f"{where}: added token {added['content']!r} with normalized/lstrip/rstrip/"
                                "single_word matching; supported: plain special tokens")
            specials.append((added["content"], int(added["id"])))
        if problems:
            return None
        return cls(
            vocab=tuple(vocab),
            unk_token=model["unk_token"],
            continuing_subword_prefix=model.get("continuing_subword_prefix", "##"),
            max_input_chars_per_word=int(model.get("max_input_chars_per_word", 100)),
            cls_token=template[0],
            sep_token=template[1],
            pad_id=int(tokenizer.pad_token_id or 0),
            max_seq_length=transformer.max_seq_length,
            normalizer={"steps": normalizers},
            specials=tuple(sorted(specials, key=lambda s: -len(s[0]))),
            backend_json=tokenizer.backend_tokenizer.to_str(),
        )

    def describe(self) -> dict[str, Any]:
        """Return the settings recorded in the manifest."""
        return {
            "family": self.family, "vocab_size": len(self.vocab), "unk_token": self.unk_token,
            "continuing_subword_prefix": self.continuing_subword_prefix,
            "max_input_chars_per_word": self.max_input_chars_per_word,
            "cls_token": self.cls_token, "sep_token": self.sep_token, "pad_id": self.pad_id,
            "max_seq_length": self.max_seq_length, "normalizer": self.normalizer,
            "special_tokens": [s for s, _ in self.specials],
        }

    def backend(self) -> Any:
        """Return a fresh ``tokenizers.Tokenizer`` equal to the reference's."""
        from tokenizers import Tokenizer

        return Tokenizer.from_str(self.backend_json)

    def char_classes(self) -> CharClasses:
        """Return how the reference normalizes and pre-tokenizes every code point (about 3 s)."""
        return _char_classes(self.backend_json)

    def regex_rules(self) -> RegexRules:
        """Return the char classes as RE2 patterns (reserved marks excluded from ``deleted``)."""
        classes = self.char_classes()
        marks = self.placeholders()
        reserved = sorted({ord(SENTINEL), ord(UNKNOWN_MARK), *map(ord, marks)})
        kept = [f"U+{cp:04X}" for cp in reserved if not any(a <= cp <= b for a, b in classes.deleted)]
        if kept:  # the graphs remove these marks from the input, which is right only if HF deletes them
            raise UnsupportedModelError([
                f"tokenizer keeps private-use characters {kept} (its normalizer has clean_text off); "
                "supported: BertNormalizer with clean_text=True"])
        return RegexRules(
            reserved=regex_class([(c, c) for c in reserved]),
            specials=tuple((regex_literal(literal), f" {mark} ") for (literal, _), mark in zip(self.specials, marks)),
            deleted=regex_class(without(classes.deleted, set(reserved))),
            whitespace=regex_class(classes.whitespace),
            isolated=regex_class(classes.isolated),
        )

    def placeholders(self) -> dict[str, int]:
        """Return the private-use character standing for each special token → its id."""
        return {chr(PLACEHOLDER_BASE + i): token_id for i, (_, token_id) in enumerate(self.specials)}


@functools.lru_cache(maxsize=4)
def _char_classes(backend_json: str) -> CharClasses:
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(backend_json)
    normalizer, pre_tokenizer = backend.normalizer, backend.pre_tokenizer
    deleted, padded, mapped = [], set(), {}
    for cp in _all_code_points():
        ch = chr(cp)
        out = normalizer.normalize_str(ch) if normalizer is not None else ch
        if out == "":
            deleted.append(cp)
        elif out == f" {ch} ":  # CJK ideographs: the normalizer puts spaces around them
            padded.add(cp)
        elif out != ch:
            mapped[ch] = out
    isolated, whitespace = [], []
    for cp in _all_code_points():
        kind = _pretokenizer_class(pre_tokenizer, chr(cp))
        if kind == "isolated" or cp in padded:
            isolated.append(cp)
        elif kind == "whitespace":
            whitespace.append(cp)
    return CharClasses(deleted=_ranges(deleted), mapped=mapped, isolated=_ranges(isolated),
                       whitespace=_ranges(whitespace))


def _normalizer_list(normalizer: dict[str, Any] | None) -> list[dict[str, Any]]:
    if normalizer is None:
        return []
    if normalizer.get("type") == "Sequence":
        return [step for inner in normalizer["normalizers"] for step in _normalizer_list(inner)]
    return [normalizer]


def _single_template(post: dict[str, Any] | None) -> tuple[str, str] | None:
    """Return (first, last) special tokens of a '[CLS] $A [SEP]' post-processor, or None."""
    if post is None:
        return None
    if post.get("type") == "BertProcessing":
        return post["cls"][0], post["sep"][0]
    if post.get("type") == "TemplateProcessing":
        single = post.get("single", [])
        kinds = [next(iter(piece)) for piece in single]
        if kinds == ["SpecialToken", "Sequence", "SpecialToken"]:
            first, last = single[0]["SpecialToken"], single[2]["SpecialToken"]
            if first.get("type_id", 0) == 0 and last.get("type_id", 0) == 0 and single[1]["Sequence"].get(
                    "type_id", 0) == 0:
                return first["id"], last["id"]
    return None


register("WordPiece")(WordPieceSpec)
