"""The CLI's stderr carries what a user can act on, not the native libraries' start-up chatter."""
from __future__ import annotations

import subprocess
import sys

from exporter.runtime.native_noise import noise_pattern

FILTERED = '''
import os, sys
from exporter.runtime.native_noise import filtered_stderr
with filtered_stderr():
    import tensorflow as tf
    tf.constant(1) + 1
    print("a real Python warning", file=sys.stderr)
    os.write(2, b"E0000 00:00:1 something.cc:1] a real native error\\n")
'''


def _stderr(code: str, *args: str) -> list[str]:
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-500:]
    return run.stderr.splitlines()


def test_tensorflow_start_up_chatter_is_dropped_and_real_messages_kept():
    """TensorFlow logs through absl before InitializeLog, past TF_CPP_MIN_LOG_LEVEL (the unfiltered run shows it)."""
    pattern = noise_pattern()
    raw = _stderr("import tensorflow as tf; tf.constant(1) + 1")
    assert any(pattern.search(line) for line in raw), raw  # else this test would prove nothing
    filtered = _stderr(FILTERED)
    assert "a real Python warning" in filtered and any("a real native error" in line for line in filtered)
    assert not [line for line in filtered if pattern.search(line)]


def test_cuinit_failure_is_noise_only_without_a_driver():
    line = "E0000 00:00:1 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error (303)"
    assert noise_pattern(gpu_driver=False).search(line) and not noise_pattern(gpu_driver=True).search(line)


OPEN_LITERT = '''
import contextlib, sys, tempfile
from pathlib import Path
import tensorflow as tf
from exporter.runtime.native_noise import filtered_stderr
from exporter.runtime.tflite import open_interpreter

double = tf.function(lambda x: x * 2.0, input_signature=[tf.TensorSpec([None], tf.float32)])
data = tf.lite.TFLiteConverter.from_concrete_functions([double.get_concrete_function()], double).convert()
path = Path(tempfile.mkdtemp()) / "double.tflite"
path.write_bytes(data)
with filtered_stderr() if sys.argv[1] == "filtered" else contextlib.nullcontext():
    open_interpreter(path)[0].allocate_tensors()
    print("a real Python warning", file=sys.stderr)
'''


def test_litert_xnnpack_notice_is_dropped():
    """LiteRT prints "Created TensorFlow Lite XNNPACK delegate for CPU." on each start (make export showed it)."""
    notice = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    raw = _stderr(OPEN_LITERT, "raw")
    assert notice in raw, raw  # else this test would prove nothing
    filtered = _stderr(OPEN_LITERT, "filtered")
    assert "a real Python warning" in filtered and notice not in filtered, filtered
