"""Parity corpora: the project's own texts, plus ``shared/corpus/parity.jsonl`` when it is there."""
from __future__ import annotations

import json
import os
from pathlib import Path

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
