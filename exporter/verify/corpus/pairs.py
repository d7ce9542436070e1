"""The reranker's parity pairs: the project's ``pairs.jsonl``, plus ``shared/corpus/pairs.jsonl`` when it is there.

One JSON ``[query, document]`` per line. ``ST_EXPORTER_SHARED_PAIRS`` overrides where the shared file is looked for.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from . import SHARED_CORPUS

PROJECT_PAIRS = Path(__file__).with_name("pairs.jsonl")
SHARED_PAIRS = SHARED_CORPUS.with_name("pairs.jsonl")
FORMAT = "one JSON [query, document] pair of strings per line"


def _pair_of(value: Any) -> tuple[str, str] | None:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(side, str) for side in value):
        return value[0], value[1]
    return None


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """Return the pairs of a file of one JSON [query, document] per line.

    Raises:
        InvalidInputError: the file is unreadable, or a line is not a pair of two strings (its number named).
    """
    from ...errors import InvalidInputError

    try:
        lines = path.read_bytes().decode("utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"--texts (texts=) {path}: cannot read it as UTF-8 text ({exc})") from None
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            pair = _pair_of(json.loads(line))
        except json.JSONDecodeError:
            pair = None
        if pair is None:
            raise InvalidInputError(f"--texts (texts=) {path} line {number}: not a [query, document] pair of strings; "
                                    f"a reranker export is checked on {FORMAT}")
        pairs.append(pair)
    return pairs


def parity_pairs() -> list[tuple[str, str]]:
    """Return the project's pairs followed by the shared ones (when present), without duplicates."""
    pairs = read_pairs(PROJECT_PAIRS)
    shared = Path(os.environ.get("ST_EXPORTER_SHARED_PAIRS", SHARED_PAIRS))
    if shared.is_file():
        pairs += read_pairs(shared)
    return list(dict.fromkeys(pairs))


def user_pairs(source: "str | Path | Sequence[Sequence[str]]") -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Return (the user's pairs, what the manifest records of them: file name, count, sha256; never the pairs).

    Raises:
        InvalidInputError: the file is missing or unreadable, a line or item is not a pair of strings, or no pair.
    """
    from ...errors import InvalidInputError
    from ...runtime.runners import checked_pairs

    if isinstance(source, (str, Path)):
        path = Path(source)
        pairs = read_pairs(path)
        record = {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    else:
        queries, documents = checked_pairs(source)
        pairs = list(zip(queries, documents, strict=True))
        joined = "\n".join(json.dumps(list(p), ensure_ascii=False) for p in pairs).encode("utf-8")
        record = {"file": None, "sha256": hashlib.sha256(joined).hexdigest()}
    if not pairs:
        raise InvalidInputError(f"--texts (texts=) holds no pair; give {FORMAT}")
    return pairs, {**record, "texts": len(pairs)}


def pair_corpus_with(source: "str | Path | Sequence[Sequence[str]] | None") -> tuple[list[tuple[str, str]],
                                                                                   dict[str, Any]]:
    """Return (the parity pairs plus the user's not already in them, what the manifest records)."""
    corpus = parity_pairs()
    if source is None:
        return corpus, {"corpus": len(corpus)}
    pairs, record = user_pairs(source)
    return list(dict.fromkeys(corpus + pairs)), {"corpus": len(corpus), "user": record}
