"""``exporter.load(OUT)``: an export as a model with ``SentenceTransformer.encode``'s interface.

For the onnx targets it needs only numpy, onnxruntime and onnxruntime-extensions (``pip install
st-exporter``, no ``[export]`` extra): no torch, transformers, sentence-transformers or TensorFlow.
The savedmodel target needs TensorFlow and tensorflow-text, the tflite ones LiteRT (the export
install has them).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InvalidInputError
from .artifacts import artifact
from .manifest import read_manifest
from .runners import DEFAULT_BATCH_SIZE, checked_texts, in_batches

#: SentenceTransformer.encode's keyword arguments that have no meaning for an export, and why
NOT_HERE = {
    "prompt_name": "the export holds its model's default prompt, applied inside the graph",
    "prompt": "the export holds its model's default prompt, applied inside the graph; prepend text yourself",
    "device": "pass providers= (and threads=) to exporter.load",
    "output_value": "an export returns sentence embeddings only",
    "precision": "choose a quantized file with exporter.load(OUT, target='onnx:int8')",
    "truncate_dim": "slice the result ([:, :dim]) and normalize it again",
    "pool": "run one model per process",
    "chunk_size": "use batch_size",
}


def _progress_bar(total: int):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Counter(total)
    return tqdm(total=total, desc="encode", unit="text")


class _Counter:
    """What ``show_progress_bar`` prints where tqdm is not installed."""

    def __init__(self, total: int):
        self.total, self.done = total, 0

    def update(self, n: int) -> None:
        self.done += n
        print(f"\rencode: {self.done}/{self.total} texts", end="\n" if self.done >= self.total else "",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class ExportedModel:
    """An export's string-in graph with ``encode(sentences, batch_size=32, ...)`` as SentenceTransformer has it."""

    def __init__(self, out: str | Path, target: str = "onnx", *, threads: int | None = None,
                 providers: Sequence[str] | None = None):
        self.out = Path(out)
        self.manifest = read_manifest(self.out)  # its fields checked, as check and --add read it
        row = artifact(target, layouts=False)
        if providers and "providers" not in row.options:
            raise InvalidInputError(f"providers= is for the onnx targets; {target} runs on TensorFlow's devices")
        self.target = target
        self._runner = row.open(self.out, providers=providers,
                                threads=threads if "threads" in row.options else None)

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.manifest["output"]["shape"][1])

    def encode(self, sentences: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE,
               show_progress_bar: bool | None = None, convert_to_numpy: bool = True, convert_to_tensor: bool = False,
               normalize_embeddings: bool = False, **unsupported: Any) -> Any:
        """Return the sentence embeddings: float32 [N, D] numpy (one text: [D]), as SentenceTransformer.encode.

        Args:
            sentences: a str or a list of str.
            batch_size: texts per model call (memory grows with batch × length²).
            show_progress_bar: a bar over the texts (tqdm when installed).
            convert_to_numpy: False returns a list of 1-D arrays.
            convert_to_tensor: a torch tensor (needs torch).
            normalize_embeddings: L2-normalize each embedding.

        Raises:
            InvalidInputError: a keyword argument that has no meaning for an export (named, with what to do),
                or input that is not a str or a list of str.
        """
        if unsupported:
            raise InvalidInputError("; ".join(f"encode({name}=...) is not supported here: "
                                              f"{NOT_HERE.get(name, 'SentenceTransformer.encode has no such argument')}"
                                              for name in unsupported))
        single = isinstance(sentences, str)
        texts = checked_texts([sentences] if single else sentences)
        bar = _progress_bar(len(texts)) if show_progress_bar else None

        def encode_batch(batch: list[str]) -> np.ndarray:
            out = self._runner.encode(batch, batch_size=max(1, len(batch)))
            if bar is not None:
                bar.update(len(batch))
            return out

        embeddings = in_batches(encode_batch, texts, batch_size)
        if bar is not None:
            bar.close()
        if normalize_embeddings:
            embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        if convert_to_tensor:
            try:
                import torch
            except ImportError:
                raise InvalidInputError("convert_to_tensor=True needs torch; the numpy result needs nothing") from None
            result: Any = torch.from_numpy(np.ascontiguousarray(embeddings))
        elif convert_to_numpy:
            result = embeddings
        else:
            result = list(embeddings)
        return result[0] if single else result


def load(out: str | Path, target: str = "onnx", *, threads: int | None = None,
         providers: Sequence[str] | None = None) -> ExportedModel:
    """Return the export in ``out`` as a model whose ``encode`` is SentenceTransformer.encode's.

    Args:
        out: a directory written by st-export.
        target: "onnx" (default), "onnx:int8", "onnx:optimized", "savedmodel", "tflite", "tflite:fp16",
            "tflite:int8" (the rows of exporter.runtime.artifacts.ARTIFACTS but the serving layouts').
        threads: intra-op threads (default: the runtime's, one per physical core, the fastest in our benchmark).
        providers: ONNX Runtime execution providers (default: CPU), e.g. ["CUDAExecutionProvider"].

    Raises:
        ArtifactNotFoundError: ``out`` has no manifest.json, or the export does not hold ``target``'s file.
        InvalidInputError: an unknown target (the message lists them), or ``providers`` for a non-onnx one.
    """
    return ExportedModel(out, target, threads=threads, providers=providers)


def keras_layer(out: str | Path) -> Any:
    """Return the export's SavedModel as a Keras 3 layer (strings in, embeddings out).

    Args:
        out: a directory written by st-export with the savedmodel target.
    """
    import keras

    return keras.layers.TFSMLayer(str(artifact("savedmodel").path(Path(out))), call_endpoint="serving_default")
