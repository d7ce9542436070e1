"""Parity corpora: the project's own texts, plus ``shared/corpus/parity.jsonl`` when it is there."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

PROJECT_CORPUS = Path(__file__).with_name("texts.jsonl")
#: texts that calibrate quantized variants; kept apart from the parity corpus that checks them
CALIBRATION_CORPUS = Path(__file__).with_name("calibration.jsonl")
#: the public corpus beside a checkout (``../shared/corpus``); ST_EXPORTER_SHARED_CORPUS overrides
SHARED_CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "parity.jsonl"


def read_jsonl(path: Path) -> list[str]:
    """Return the strings of a file with one JSON string per line."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def shared_corpus_path() -> Path | None:
    """Return the shared corpus file if it exists."""
    path = Path(os.environ.get("ST_EXPORTER_SHARED_CORPUS", SHARED_CORPUS))
    return path if path.is_file() else None


def parity_texts() -> list[str]:
    """Return the project corpus followed by the shared corpus (when present), without duplicates."""
    texts = read_jsonl(PROJECT_CORPUS)
    shared = shared_corpus_path()
    if shared is not None:
        texts += read_jsonl(shared)
    return list(dict.fromkeys(texts))


def calibration_texts() -> list[str]:
    """Return the texts quantized variants are calibrated on (never the parity corpus)."""
    return read_jsonl(CALIBRATION_CORPUS)


def user_texts(source: "str | Path | Sequence[str]") -> tuple[list[str], dict[str, Any]]:
    """Return (the user's texts, what the manifest records of them: file name, count, sha256; never the texts).

    Args:
        source: a file (``.txt``: one text per line; otherwise one JSON string per line) or a list of str.

    Raises:
        InvalidInputError: the file is missing or unreadable, a line is not a JSON string, or it holds no text.
    """
    from ...errors import InvalidInputError
    from ...runtime.runners import checked_texts

    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            data = path.read_bytes()
            lines = data.decode("utf-8-sig").splitlines()  # a BOM, as Windows editors write, is no text
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"--texts (texts=) {path}: cannot read it as UTF-8 text ({exc})") from None
        if path.suffix == ".txt":
            texts = lines
        else:
            texts = []
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    text = json.loads(line)
                except json.JSONDecodeError as exc:
                    text = exc
                if not isinstance(text, str):
                    raise InvalidInputError(f"--texts (texts=) {path} line {number}: not a JSON string; give one "
                                            "JSON string per line, or plain lines in a .txt file")
                texts.append(text)
        record = {"file": path.name, "sha256": hashlib.sha256(data).hexdigest()}
    else:
        texts = checked_texts(source)
        joined = "\n".join(json.dumps(t, ensure_ascii=False) for t in texts).encode("utf-8")
        record = {"file": None, "sha256": hashlib.sha256(joined).hexdigest()}
    if not texts:
        raise InvalidInputError("--texts (texts=) holds no text")
    return texts, {**record, "texts": len(texts)}


def parity_texts_with(source: "str | Path | Sequence[str] | None") -> tuple[list[str], dict[str, Any]]:
    """Return (the parity corpora plus the user's texts not already in them, what the manifest records)."""
    corpus = parity_texts()
    if source is None:
        return corpus, {"corpus": len(corpus)}
    texts, record = user_texts(source)
    return list(dict.fromkeys(corpus + texts)), {"corpus": len(corpus), "user": record}
