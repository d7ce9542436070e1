"""Drop the native libraries' start-up chatter from the CLI's stderr, and nothing else.

TensorFlow's shared libraries log through absl before ``absl::InitializeLog()`` runs, straight to
file descriptor 2, so ``TF_CPP_MIN_LOG_LEVEL`` does not reach them: every CPU-only run printed the
oneDNN notice and "Could not find cuda drivers" twice, "failed call to cuInit ... (303)", and the
CPU-feature notice. The SentencePiece copies linked into onnxruntime-extensions and tensorflow-text
print "precompiled_charsmap is empty" once per kernel they build (our models have no normalizer on
purpose). LiteRT announces its default CPU delegate ("Created TensorFlow Lite XNNPACK delegate") on
every start. None of it is the user's business; Python's own warnings and errors must still show.

:func:`filtered_stderr` points fd 2 at a pipe for the duration and copies every line to the real
stderr except those matching :data:`NOISE`. Only the CLI uses it: a library must not take over a
host process's stderr.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from pathlib import Path
from typing import Iterator

#: lines that say nothing a user can act on (a CPU-only machine is not an error)
NOISE = [
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"port\.cc:\d+\] oneDNN custom operations are on",
    r"cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine",
    r"cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags",
    r"normalizer\.cc\(\d+\) LOG\(INFO\) precompiled_charsmap is empty\. use identity normalization",
    r"loop_optimizer\.cc:\d+\] Skipping loop optimization for Merge node with control input",
    r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$",
]
#: only noise where no NVIDIA driver is installed; on a GPU machine it is a real error
NO_DRIVER_NOISE = r"cuda_platform\.cc:\d+\] failed call to cuInit"


def noise_pattern(gpu_driver: bool | None = None) -> re.Pattern[str]:
    """Return the pattern of lines to drop (``gpu_driver``: None asks the machine)."""
    if gpu_driver is None:
        gpu_driver = Path("/dev/nvidiactl").exists()
    return re.compile("|".join(NOISE + ([] if gpu_driver else [NO_DRIVER_NOISE])))


@contextlib.contextmanager
def filtered_stderr(pattern: re.Pattern[str] | None = None) -> Iterator[None]:
    """Copy fd 2 to the real stderr without the lines matching ``pattern`` (default :func:`noise_pattern`)."""
    pattern = pattern or noise_pattern()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (an embedding host): leave it alone
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def copy() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if not pattern.search(line.decode("utf-8", "replace")):
                    os.write(saved, line)

    reader = threading.Thread(target=copy, name="stderr-filter", daemon=True)
    reader.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the reader sees EOF
        reader.join(timeout=5)
        os.close(saved)
