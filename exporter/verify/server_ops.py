"""Whether the stock model servers link the non-core ops of a SavedModel, as read in the servers' sources.

No server binary runs in our tests, so each verdict is data with the source lines that prove it:

- **TF Serving** links tensorflow-text's ``ops_lib`` into ``tensorflow_model_server``
  (``SUPPORTED_TENSORFLOW_OPS`` in ``tensorflow_serving/model_servers/BUILD``, a dependency of
  ``server_lib``), at the tensorflow/text release ``tensorflow_serving/workspace.bzl`` pins; ``ops_lib``
  depends on one ``<name>_cc`` target per op library, whose kernels register the ops. The stock server
  cannot load an op library at run time: an op not linked needs a custom build.
- **Triton's TensorFlow backend** copies only ``libtensorflow_cc.so.2`` and ``libtensorflow_framework.so.2``
  out of NVIDIA's TensorFlow container (its ``CMakeLists.txt``): no tensorflow-text op is linked. It loads
  each ``model_operations { op_library_filename }`` of a model's ``config.pbtxt`` with ``TF_LoadLibrary``
  before the model (``src/tensorflow.cc``), which is how our ``<name>_tf`` config brings them.

Adding an op to an emitter is adding its row to :data:`TEXT_OPS` (``tests/test_server_ops.py`` fails until then).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .tf_ops import savedmodel_op_sources

LINKED, NOT_LINKED, UNKNOWN = "linked", "not linked", "unknown"
TF_SERVING, TRITON_TF = "tf-serving", "triton-tf"
SERVERS = (TF_SERVING, TRITON_TF)

_SERVING = "https://github.com/tensorflow/serving/blob/bc7e9d2b9a419294c4526e293c2df8727b0d3116/tensorflow_serving"
_TEXT = "https://github.com/tensorflow/text/blob/54015a801f4ebcf92149dca5140b3b3fa64bddbe/tensorflow_text"
_TRITON = ("https://github.com/triton-inference-server/tensorflow_backend/blob/"
           "c13c2d120d457698282686b74b92c230f456846a")
#: what the verdicts were read in (docs/serving.md says more): the TF 2.21 alignment of TF Serving (commit
#: 7471338c) pins tensorflow/text 4bc8b7d3 of its 2.21 branch, whose ops_lib lists the same targets and whose
#: kernels register the same op names (the 2.21.0 tag was not in the sources read); Triton's backend was built from nvcr.io/nvidia/tensorflow:<release>-tf2-py3 (the server's
#: build.py line 806 at 42811e0c, before 25.03 removed it)
RELEASES = {
    TF_SERVING: "tensorflow/serving 2.20.0 with tensorflow/text v2.20.0; the same targets in its TF 2.21 pin",
    TRITON_TF: "triton-inference-server/tensorflow_backend c13c2d12 (its last commit; deprecated since Triton 25.03)",
}
#: the source lines every verdict of a server rests on
SERVER_SOURCES = {
    TF_SERVING: [f"{_SERVING}/model_servers/BUILD#L458-L466", f"{_SERVING}/model_servers/BUILD#L537",
                 f"{_SERVING}/workspace.bzl#L79", f"{_TEXT}/BUILD#L32-L60"],
    TRITON_TF: [f"{_TRITON}/CMakeLists.txt#L141-L146", f"{_TRITON}/src/tensorflow.cc#L1152-L1171",
                f"{_TRITON}/mirror/tensorflow_backend_tf.cc#L1181-L1194"],
}


@dataclass(frozen=True)
class TextOp:
    """A tensorflow-text op our emitters write: the ``ops_lib`` dependency that links it and its kernel."""

    target: str  # the <name>_cc target in tensorflow_text/BUILD's ops_lib
    ops_lib_line: int  # that dependency's line in tensorflow_text/BUILD (v2.20.0)
    kernel: str  # where REGISTER_KERNEL_BUILDER registers its CPU kernel (v2.20.0)
    emitted_by: str  # the emitter's tf-text class

    def sources(self) -> list[str]:
        return [f"{_TEXT}/BUILD#L{self.ops_lib_line}", f"{_TEXT}/{self.kernel}"]


#: every non-core op our TF emitters write (exporter/tokenizers/*/emit_tf.py, shared/chars_tf.py)
TEXT_OPS = {
    "TFText>ByteSplitWithOffsets": TextOp(":byte_splitter_cc", 37, "core/kernels/byte_splitter_kernel.cc#L22",
                                          "tf_text.ByteSplitter (every family)"),
    "FastWordpieceTokenizeWithOffsets": TextOp(
        ":fast_wordpiece_tokenizer_cc", 41, "core/kernels/fast_wordpiece_tokenizer_kernel.cc#L22",
        "tf_text.FastWordpieceTokenizer (WordPiece)"),
    "TFText>FastWordpieceDetokenize": TextOp(
        ":fast_wordpiece_tokenizer_cc", 41, "core/kernels/fast_wordpiece_tokenizer_kernel.cc#L26",
        "tf_text.FastWordpieceTokenizer (WordPiece; Unigram's speller)"),
    "TFText>FastSentencepieceTokenize": TextOp(
        ":fast_sentencepiece_tokenizer_cc", 40, "core/kernels/sentencepiece/sentencepiece_tokenizer_kernel.cc#L106",
        "tf_text.FastSentencepieceTokenizer (Unigram)"),
    "SentencepieceOp": TextOp(":sentencepiece_tokenizer_cc", 48, "core/kernels/sentencepiece_kernels.cc#L261",
                              "tf_text.SentencepieceTokenizer (BPE, SentencePiece BPE)"),
    "SentencepieceTokenizeOp": TextOp(":sentencepiece_tokenizer_cc", 48,
                                      "core/kernels/sentencepiece_kernels.cc#L385-L404",
                                      "tf_text.SentencepieceTokenizer (BPE, SentencePiece BPE)"),
}


def server_verdicts(op: str, library: str) -> dict[str, dict[str, Any]]:
    """Return {server: {verdict, read_in, sources[, load]}} for one op (``library``: its op library file, e.g.
    ``_byte_splitter.so``); an op outside :data:`TEXT_OPS` is ``unknown`` to every server."""
    known = TEXT_OPS.get(op)
    if known is None:
        return {server: {"verdict": UNKNOWN, "read_in": RELEASES[server], "sources": []} for server in SERVERS}
    return {
        TF_SERVING: {"verdict": LINKED, "read_in": RELEASES[TF_SERVING],
                     "sources": [*SERVER_SOURCES[TF_SERVING], *known.sources()]},
        TRITON_TF: {"verdict": NOT_LINKED, "read_in": RELEASES[TRITON_TF], "sources": SERVER_SOURCES[TRITON_TF],
                    "load": f"config.pbtxt model_operations {{ op_library_filename: \".../{library}\" }} "
                            "(tensorflow-text's, for the container's TensorFlow)"},
    }


def custom_ops(saved_model_dir: Path) -> list[dict[str, Any]]:
    """Return one entry per op of the SavedModel that core TensorFlow does not define, sorted by op:
    ``{op, library, servers: {server: {verdict, read_in, sources[, load]}}}``.

    ``library`` is the op library file of the installed tensorflow-text that defines it (or
    ``"unregistered"``). Ops in ``tf_ops.PYTHON_OPS`` are core ops and not listed (the tfserving target
    refuses them).
    """
    entries = []
    for op, source in savedmodel_op_sources(saved_model_dir).items():
        if source == "tensorflow":
            continue
        library = source.split(":", 1)[1] if source.startswith("tensorflow-text:") else source
        entries.append({"op": op, "library": library, "servers": server_verdicts(op, library)})
    return entries


def server_problems(ops: list[dict[str, Any]], server: str, *, loaded: tuple[str, ...] = ()) -> list[str]:
    """Return why ``server`` cannot run a SavedModel with these :func:`custom_ops` (empty: it can).

    Args:
        ops: :func:`custom_ops` of the SavedModel.
        server: one of :data:`SERVERS`.
        loaded: the op library files the model's own config makes the server load (Triton's
            ``op_library_filename``, matched by file name); TF Serving loads none.
    """
    loaded_names = {Path(path).name for path in loaded}
    problems = []
    for entry in ops:
        verdict = entry["servers"][server]["verdict"]
        if verdict == LINKED or (verdict == NOT_LINKED and entry["library"] in loaded_names):
            continue
        why = ("no verdict read in its sources" if verdict == UNKNOWN else
               f"not linked into the stock server; {'no' if server == TF_SERVING else 'its config names no'} "
               f"op library ({entry['library']}) is loaded")
        problems.append(f"{server}: op {entry['op']} ({entry['library']}): {why}")
    return problems
