"""One runner shared by threads: 8 threads encoding at once get, bit for bit, what serial calls get.

A TFLite interpreter is not thread-safe (one shared by threads gave "RESHAPE failed", "GATHER index
out of bounds", other threads' vectors, and segfaults for fp16 and int8); ONNX Runtime's ``run`` and
TensorFlow's functions are. Every row of the table of artifacts is run, so a new target is covered.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from exporter.runtime.artifacts import ARTIFACTS

THREADS = 8


def _chunks(corpus: list[str]) -> list[list[str]]:
    """Return one list of texts per thread, of different sizes and lengths (each call resizes the graph)."""
    by_length = sorted(corpus, key=len)
    return [by_length[i::THREADS][: 3 + 2 * i] for i in range(THREADS)]


@pytest.mark.parametrize("row", ARTIFACTS, ids=lambda row: row.target)
def test_concurrent_encode_equals_serial(row, bundled_export, corpus):
    runner = row.open(bundled_export.out)
    chunks = _chunks(corpus)
    serial = [runner.encode(chunk, batch_size=4) for chunk in chunks]
    start = threading.Barrier(THREADS)

    def encode(chunk: list[str]) -> list[np.ndarray]:
        start.wait()  # every thread calls the shared runner at once
        return [runner.encode(chunk, batch_size=4) for _ in range(2)]

    with ThreadPoolExecutor(THREADS) as pool:
        concurrent = list(pool.map(encode, chunks))
    for i, (expected, got) in enumerate(zip(serial, concurrent, strict=True)):
        for repeat in got:
            np.testing.assert_array_equal(repeat, expected, err_msg=f"{row.target}: thread {i}")
