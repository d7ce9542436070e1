"""Texts that find tokenizer differences a corpus does not: every code point, and sequences of them.

* :func:`code_point_sweep`: every code point of planes 0-3 and the special planes' edges, a sample of
  planes 3-16 (:data:`HIGH_PLANES`), each alone or inside a word (``"a{c}b"``);
* :func:`sequence_sweep`: what a one-code-point sweep cannot see, in named classes: each
  combining mark after each of a set of base letters, pairs of marks in both orders, Hangul jamo
  sequences, runs of one character (lengths 1-40), and pseudo-words in 40 scripts (each script's
  letters and marks, seeded), the parity corpus decomposed (NFD). Deterministic; ``step`` keeps every step-th case of each class;
* :func:`vocabulary_runs`: runs of lengths 1-64 of every character a vocabulary has pieces of
  several lengths of (``-``, ``--``, ``----``): where a Unigram model's segmentations tie.
"""
from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterable

from .corpus import parity_texts

#: planes 0-3 (every assigned script), tags/variation selectors, ends of the private-use planes (HIGH_PLANES below)
CODE_POINTS = [*range(0x0, 0xD800), *range(0xE000, 0x32400), *range(0xE0000, 0xE01F0),
               *range(0xF0000, 0xF0010), *range(0x10FFF0, 0x110000)]
#: planes 3-16 beyond the ranges above, sampled: every HIGH_STRIDE-th code point (a prime: every offset in a block
#: comes up) and the first and last 16 of each plane (its noncharacters U+nFFFE/U+nFFFF among them)
HIGH_STRIDE = 251
HIGH_PLANES = sorted({*range(0x32400, 0x110000, HIGH_STRIDE),
                      *(plane << 16 | k for plane in range(3, 17) for k in (*range(16), *range(0xFFF0, 0x10000)))}
                     - set(CODE_POINTS))
CODE_POINTS = sorted({*CODE_POINTS, *HIGH_PLANES})
BASES = ("a e i o u y n c s z g A E O U N C S Z G ª ß ø æ ı α ε η ι ο ω υ ρ Α Ω и е у о а И Е А ա ه ا و ی "
         "क ग न ก ข ᄀ 가 ア か 中 ﬁ Ａ ² µ ü ê ǖ ơ ư").split()
REPEATS = "repeated-character runs 1-40"
#: the longest run :func:`vocabulary_runs` writes
LONGEST_RUN = 64
VOCABULARY_RUNS = f"runs 1-{LONGEST_RUN} of each character with pieces of several lengths"
SCRIPTS = ("LATIN GREEK CYRILLIC ARMENIAN HEBREW ARABIC SYRIAC THAANA NKO DEVANAGARI BENGALI GURMUKHI GUJARATI ORIYA "
           "TAMIL TELUGU KANNADA MALAYALAM SINHALA THAI LAO TIBETAN MYANMAR GEORGIAN HANGUL ETHIOPIC CHEROKEE "
           "CANADIAN OGHAM RUNIC KHMER MONGOLIAN HIRAGANA KATAKANA CJK YI TIFINAGH JAVANESE BALINESE BUGINESE").split()


def code_point_sweep(template: str = "{}") -> list[str]:
    """Return every code point of :data:`CODE_POINTS` in ``template``."""
    return [template.format(chr(cp)) for cp in CODE_POINTS]


def _marks() -> list[str]:
    return [chr(cp) for cp in [*range(0x300, 0x370), *range(0x483, 0x488), *range(0x591, 0x5C8), *range(0x610, 0x61B),
                               *range(0x64B, 0x660), 0x670, *range(0x93A, 0x950), *range(0xE31, 0xE3B),
                               *range(0xE47, 0xE4F), *range(0x1AB0, 0x1ABF), *range(0x1DC0, 0x1DD0),
                               *range(0x20D0, 0x20F1), 0x200C, 0x200D, 0xFE0E, 0xFE0F, 0x3099, 0x309A]
            if unicodedata.category(chr(cp)) in ("Mn", "Mc", "Me", "Cf")]


def _script_letters() -> dict[str, tuple[list[str], list[str]]]:
    """Return script → (its letters, its marks) from the BMP, by character name."""
    found: dict[str, tuple[list[str], list[str]]] = {s: ([], []) for s in SCRIPTS}
    for cp in range(0x20, 0x10000):
        ch = chr(cp)
        words = unicodedata.name(ch, "").split(" ")
        script = next((s for s in SCRIPTS if words[0] == s), None)
        kind = unicodedata.category(ch)
        if script and kind[0] in "LM":
            found[script][kind[0] == "M"].append(ch)
    return found


def _script_texts(count: int) -> list[str]:
    rng = random.Random(7)
    texts = []
    for script, (letters, marks) in _script_letters().items():
        for _ in range(count):
            words = []
            for _ in range(rng.randint(1, 4)):
                word = "".join(rng.choice(letters) + (rng.choice(marks) if marks and rng.random() < 0.4 else "")
                               for _ in range(rng.randint(1, 8)))
                words.append(word)
            texts.append(" ".join(words))
    return texts


def _repeat_characters(count: int) -> list[str]:
    rng = random.Random(11)
    pool = [chr(cp) for cp in range(0x21, 0x3000) if unicodedata.category(chr(cp))[0] in "LNPS"]
    return list("azexq.-!0ü") + rng.sample(pool, count - 10)


def sequence_sweep(step: int = 1) -> dict[str, list[str]]:
    """Return {class name: texts}; ``step`` > 1 keeps every step-th text of each class (a sample)."""
    marks = _marks()
    pair_marks = marks[:24] + marks[-12:]
    classes = {
        "base + combining mark": [b + m for b in BASES for m in marks],
        "base + two marks, both orders": [b + m1 + m2 for b in BASES[::6] for m1 in pair_marks for m2 in pair_marks
                                          if m1 != m2],
        "Hangul jamo sequences": [chr(0x1100 + l) + chr(0x1161 + v) + (chr(0x11A7 + t) if t else "")
                                  for l in range(19) for v in range(21) for t in range(0, 28, 3)],
        REPEATS: [c * n for c in _repeat_characters(300) for n in range(1, 41)],
        f"pseudo-words in {len(SCRIPTS)} scripts": _script_texts(60),
        "parity corpus in NFD": [unicodedata.normalize("NFD", text) for text in parity_texts()],
    }
    return {name: texts[::step] for name, texts in classes.items()}


def vocabulary_runs(pieces: Iterable[str], longest: int = LONGEST_RUN) -> list[str]:
    """Return runs of lengths 1 to ``longest`` of every character that ``pieces`` hold runs of in two lengths or more
    ("a" and "aaa"): the texts with segmentations of equal score (the same pieces in another order)."""
    lengths: dict[str, set[int]] = {}
    for piece in pieces:
        if piece and piece == piece[0] * len(piece):
            lengths.setdefault(piece[0], set()).add(len(piece))
    return [c * n for c in sorted(c for c, found in lengths.items() if len(found) > 1) for n in range(1, longest + 1)]


#: texts per padded batch when a sweep is compared (a sweep is 200k texts; one batch would not fit)
CHUNK = 8192


def texts_that_differ(reference, graph, texts: list[str], chunk: int = CHUNK) -> list[dict]:
    """Return the token mismatches of ``graph`` against ``reference`` over ``texts``, one padded batch of at most
    ``chunk`` texts at a time (each text once)."""
    from .parity import compare_tokens

    found = []
    for i in range(0, len(texts), chunk):
        found += [m for m in compare_tokens(reference, graph, texts[i:i + chunk], alone=False).mismatches
                  if m.get("text") is not None]
    return list({m["text"]: m for m in found}.values())
