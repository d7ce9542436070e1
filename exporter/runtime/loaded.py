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
from .prompts import document_prompt_name, query_prompt_name, resolved_prompt_name
from .runners import (DEFAULT_BATCH_SIZE, SPARSE_PAD_INDEX, checked_batch_size, checked_pairs, checked_texts,
                      in_batches)
from .truncation import truncate_dim_problem, truncated

#: SentenceTransformer.encode's keyword arguments that have no meaning for an export, and why
NOT_HERE = {
    "device": "pass providers= (and threads=) to exporter.load",
    "output_value": "an export returns sentence embeddings only",
    "precision": "choose a quantized file with exporter.load(OUT, target='onnx:int8')",
    "pool": "run one model per process",
    "chunk_size": "use batch_size",
}


def _progress_bar(total: int, desc: str = "encode", unit: str = "text"):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Counter(total, desc, unit)
    return tqdm(total=total, desc=desc, unit=unit)


class _Counter:
    """What ``show_progress_bar`` prints where tqdm is not installed."""

    def __init__(self, total: int, desc: str = "encode", unit: str = "text"):
        self.total, self.done, self.desc, self.unit = total, 0, desc, unit

    def update(self, n: int) -> None:
        self.done += n
        print(f"\r{self.desc}: {self.done}/{self.total} {self.unit}s", end="\n" if self.done >= self.total else "",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class _Opened:
    """An export's manifest and the Runner of one of its files."""

    def __init__(self, out: str | Path, target: str = "onnx", *, threads: int | None = None,
                 providers: Sequence[str] | None = None):
        self.out = Path(out)
        self.manifest = read_manifest(self.out)  # its fields checked, as check and --add read it
        row = artifact(target, layouts=False)
        if providers and "providers" not in row.options:
            raise InvalidInputError(f"providers= is for the onnx targets; {target} runs on TensorFlow's devices")
        self.target = target
        self._options = {"providers": providers, "threads": threads if "threads" in row.options else None}
        self._runner = row.open(self.out, **self._options)


class ExportedModel(_Opened):
    """An export's string-in graph with ``encode(sentences, batch_size=32, ...)`` as SentenceTransformer has it."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        #: prompt graph key → its Runner, opened on first use ("": the default prompt's, ``_runner``)
        self._prompt_runners: dict[str, Any] = {"": self._runner}

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: an embedding export embeds texts.

        Raises:
            InvalidInputError: always, saying to use encode (and to export a CrossEncoder for predict/rank).
        """
        raise InvalidInputError("this export is an embedding model (SentenceTransformer): use encode(texts); "
                                "predict and rank are for a CrossEncoder's export")

    rank = predict

    @property
    def truncate_dim(self) -> int | None:
        """Return the truncate_dim the export was written with (None: none), as SentenceTransformer.truncate_dim."""
        return self.manifest.get("truncate_dim")

    def _checked_truncate_dim(self, truncate_dim: Any) -> int | None:
        """Return ``encode``'s truncate_dim, or raise InvalidInputError when the export cannot give it."""
        if truncate_dim is None:
            return None
        dimension = self.get_sentence_embedding_dimension()
        problem = truncate_dim_problem(truncate_dim, dimension)
        if problem:
            raise InvalidInputError(f"encode(truncate_dim=...) {problem} (the export holds {dimension}"
                                    + (f", truncated at export from {self.manifest['source']['embedding_dim']}"
                                       if self.truncate_dim is not None else "") + ")")
        return int(truncate_dim)

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.manifest["output"]["shape"][1])

    @property
    def prompts(self) -> dict[str, str]:
        """Return {prompt name: text} of the model's prompts, as SentenceTransformer.prompts (each has its graph)."""
        return {name: row["text"] for name, row in self._prompt_rows().items()}

    @property
    def default_prompt_name(self) -> str | None:
        return self.manifest.get("prompts", {}).get("default_prompt_name")

    def _prompt_rows(self) -> dict[str, Any]:
        return self.manifest.get("prompts", {}).get("prompts", {})  # exports written before prompts: none

    def _prompted_runner(self, prompt_name: str | None, prompt: str | None) -> Any:
        """Return the Runner of the graph holding the prompt ``encode`` applies (exporter/runtime/prompts.py)."""
        rows = self._prompt_rows()
        name = resolved_prompt_name(rows, self.default_prompt_name, prompt_name=prompt_name, prompt=prompt)
        key = rows[name]["key"] if name is not None else ""
        if key not in self._prompt_runners:
            self._prompt_runners[key] = artifact(self.target, layouts=False).open_prompt(
                self.out, key, opened=self._runner, **self._options)
        return self._prompt_runners[key]

    def encode_query(self, sentences: str | Sequence[str], *, prompt_name: str | None = None,
                     prompt: str | None = None, **kwargs: Any) -> Any:
        """Return ``encode`` with the "query" prompt when neither ``prompt_name`` nor ``prompt`` is given, as
        SentenceTransformer.encode_query (its other arguments are encode's)."""
        return self.encode(sentences, prompt_name=query_prompt_name(self._prompt_rows(), prompt_name, prompt),
                           prompt=prompt, **kwargs)

    def encode_document(self, sentences: str | Sequence[str], *, prompt_name: str | None = None,
                        prompt: str | None = None, **kwargs: Any) -> Any:
        """Return ``encode`` with the first of the "document", "passage", "corpus" prompts when neither
        ``prompt_name`` nor ``prompt`` is given, as SentenceTransformer.encode_document."""
        return self.encode(sentences, prompt_name=document_prompt_name(self._prompt_rows(), prompt_name, prompt),
                           prompt=prompt, **kwargs)

    def encode(self, sentences: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE,
               show_progress_bar: bool | None = None, convert_to_numpy: bool = True, convert_to_tensor: bool = False,
               normalize_embeddings: bool = False, truncate_dim: int | None = None, *,
               prompt_name: str | None = None, prompt: str | None = None, **unsupported: Any) -> Any:
        """Return the sentence embeddings: float32 [N, D] numpy (one text: [D]), as SentenceTransformer.encode.

        Args:
            sentences: a str or a list of str.
            prompt_name: one of the model's prompts (``prompts``), each in its own graph; None: the default prompt.
            prompt: a prompt text; an export holds its model's prompts only, so it must be one of their texts.
            batch_size: texts per model call (memory grows with batch × length²).
            show_progress_bar: a bar over the texts (tqdm when installed).
            convert_to_numpy: False returns a list of 1-D arrays.
            convert_to_tensor: a torch tensor (needs torch).
            normalize_embeddings: L2-normalize each embedding (after truncate_dim, as SentenceTransformer does).
            truncate_dim: keep the first ``truncate_dim`` dimensions (Matryoshka), at most the export's
                (:meth:`get_sentence_embedding_dimension`); None: all of them.

        Raises:
            InvalidInputError: a keyword argument that has no meaning for an export (named, with what to do),
                a truncate_dim over the export's dimension, or input that is not a str or a list of str.
        """
        if unsupported:
            raise InvalidInputError("; ".join(f"encode({name}=...) is not supported here: "
                                              f"{NOT_HERE.get(name, 'SentenceTransformer.encode has no such argument')}"
                                              for name in unsupported))
        runner = self._prompted_runner(prompt_name, prompt)
        single = isinstance(sentences, str)
        texts = checked_texts([sentences] if single else sentences)
        truncate_dim = self._checked_truncate_dim(truncate_dim)
        bar = _progress_bar(len(texts)) if show_progress_bar else None

        def encode_batch(batch: list[str]) -> np.ndarray:
            out = runner.encode(batch, batch_size=max(1, len(batch)))
            if bar is not None:
                bar.update(len(batch))
            return out

        embeddings = in_batches(encode_batch, texts, batch_size)
        if bar is not None:
            bar.close()
        embeddings = truncated(embeddings, truncate_dim, normalize=normalize_embeddings)
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


#: CrossEncoder.predict's keyword arguments that have no meaning for an export, and why
NOT_IN_PREDICT = {
    "prompt_name": "a reranker export holds no prompt; prepend it to the queries yourself",
    "prompt": "a reranker export holds no prompt; prepend it to the queries yourself",
    "device": "pass providers= (and threads=) to exporter.load",
    "pool": "run one model per process",
    "chunk_size": "use batch_size",
}


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise InvalidInputError("convert_to_tensor=True and torch activation functions need torch; the numpy "
                                "result needs nothing") from None
    return torch


def _activated(activation_fn: Any, logits: np.ndarray) -> np.ndarray:
    """Return ``activation_fn`` of the logits: a torch module (torch.nn.Sigmoid()) on a tensor, else on numpy."""
    if type(activation_fn).__module__.startswith("torch"):
        torch = _torch()
        with torch.no_grad():
            return activation_fn(torch.from_numpy(logits)).numpy().astype(np.float32)
    return np.asarray(activation_fn(logits), dtype=np.float32)


def _single_pair(inputs: Any) -> bool:
    """Return True when ``inputs`` is one pair, as CrossEncoder.is_singular_input decides."""
    if isinstance(inputs, (list, tuple)):
        return len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in ("U", "O"):
        return inputs.size > 0 and inputs.ndim < 2
    return False


class ExportedReranker(_Opened):
    """A reranker export's string-pair graph with CrossEncoder's ``predict`` and ``rank``."""

    @property
    def num_labels(self) -> int:
        return int(self.manifest["output"]["shape"][1])

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: a reranker scores pairs.

        Raises:
            InvalidInputError: always, saying to use predict or rank.
        """
        raise InvalidInputError("this export is a reranker (CrossEncoder): it scores (query, document) pairs; use "
                                "predict(pairs) or rank(query, documents), not encode")

    def predict(self, inputs: Any, batch_size: int = DEFAULT_BATCH_SIZE, show_progress_bar: bool | None = None,
                activation_fn: Any = None, apply_softmax: bool = False, convert_to_numpy: bool = True,
                convert_to_tensor: bool = False, **unsupported: Any) -> Any:
        """Return the scores of ``inputs``, as CrossEncoder.predict: [N] for one label, [N, labels] for more, a scalar
        (or [labels]) for one pair.

        Args:
            inputs: a list of [query, document] pairs of str, or one pair.
            batch_size: pairs per model call.
            show_progress_bar: a bar over the pairs (tqdm when installed).
            activation_fn: None: the model's activation, inside the graph; else applied to the logits (a torch
                module such as torch.nn.Identity() on a tensor, any other callable on a numpy array).
            apply_softmax: softmax over the labels (more than one label).
            convert_to_numpy: False returns a list of per-pair scores.
            convert_to_tensor: a torch tensor (needs torch).

        Raises:
            InvalidInputError: a pair that is not two str, or an argument that has no meaning for an export.
        """
        if unsupported:
            raise InvalidInputError("; ".join(f"predict({name}=...) is not supported here: "
                                              f"{NOT_IN_PREDICT.get(name, 'CrossEncoder.predict has no such argument')}"
                                              for name in unsupported))
        single = _single_pair(inputs)
        queries, documents = checked_pairs([inputs] if single else inputs)
        size = checked_batch_size(batch_size)
        bar = _progress_bar(len(queries), "predict", "pair") if show_progress_bar else None
        chunks = []
        for start in range(0, len(queries), size) or [0]:
            chunks.append(self._runner.score_and_logits(queries[start:start + size], documents[start:start + size],
                                                        batch_size=size))
            if bar is not None:
                bar.update(len(queries[start:start + size]))
        if bar is not None:
            bar.close()
        score, logits = (np.concatenate([chunk[i] for chunk in chunks], axis=0) for i in (0, 1))
        scores = score if activation_fn is None else _activated(activation_fn, logits)
        if self.num_labels == 1 and scores.ndim > 1:
            scores = scores[:, 0]
        if apply_softmax and scores.ndim > 1:
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores = shifted / shifted.sum(axis=1, keepdims=True)
        if convert_to_tensor:
            result: Any = _torch().from_numpy(np.ascontiguousarray(scores))
        elif convert_to_numpy:
            result = scores if len(scores) else np.array([])
        else:
            result = list(scores)
        return result[0] if single else result

    def rank(self, query: str, documents: Sequence[str], top_k: int | None = None, return_documents: bool = False,
             batch_size: int = DEFAULT_BATCH_SIZE, show_progress_bar: bool | None = None, activation_fn: Any = None,
             **unsupported: Any) -> list[dict[str, Any]]:
        """Return [{"corpus_id", "score"[, "text"]}] of the documents, best first, as CrossEncoder.rank.

        Raises:
            InvalidInputError: a model of more than one label, a query that is not a str, documents that are not a
                list of str, or an argument that has no meaning for an export.
        """
        if self.num_labels != 1:
            raise InvalidInputError(f"rank() needs a model of one label; this one has {self.num_labels}: use "
                                    "predict() with [query, document] pairs instead")
        if not isinstance(query, str):
            raise InvalidInputError(f"query is {type(query).__name__}, expected one str")
        documents = checked_texts(documents)
        scores = self.predict([[query, document] for document in documents], batch_size=batch_size,
                              show_progress_bar=show_progress_bar, activation_fn=activation_fn, **unsupported)
        results = [{"corpus_id": i, "score": float(score), **({"text": documents[i]} if return_documents else {})}
                   for i, score in enumerate(scores)]
        return sorted(results, key=lambda row: row["score"], reverse=True)[:top_k]


#: SparseEncoder.encode's keyword arguments that have no meaning for a sparse export, and why
NOT_IN_SPARSE = {**{name: NOT_HERE[name] for name in ("device", "pool", "chunk_size")},
                 "prompt_name": "a sparse export holds no prompt; prepend it to the texts yourself",
                 "prompt": "a sparse export holds no prompt; prepend it to the texts yourself"}


def _sparse_rows(indices: np.ndarray, values: np.ndarray, vocab: int, *, torch_tensor: bool, sparse: bool) -> Any:
    """Return the [N, vocab] vectors of the top-K arrays: a torch sparse COO tensor (``sparse``) or dense one when
    ``torch_tensor``, else a scipy.sparse CSR array (``sparse``) or a dense numpy array."""
    rows, columns = np.nonzero(indices != SPARSE_PAD_INDEX)
    dims, weights = indices[rows, columns], values[rows, columns]
    if torch_tensor:
        torch = _torch()
        coo = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, dims]).astype(np.int64)),
                                      torch.from_numpy(weights.astype(np.float32)), (len(indices), vocab),
                                      check_invariants=False)
        return coo.coalesce() if sparse else coo.to_dense()
    if sparse:
        from scipy.sparse import csr_array

        return csr_array((weights, (rows, dims)), shape=(len(indices), vocab), dtype=np.float32)
    dense = np.zeros((len(indices), vocab), np.float32)
    dense[rows, dims] = weights
    return dense


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


class ExportedSparseEncoder(_Opened):
    """A sparse (SPLADE) export's string-in graph with SparseEncoder's ``encode``, ``encode_query``,
    ``encode_document`` and ``decode``.

    ``encode`` returns what SparseEncoder.encode returns when torch is installed: a torch sparse COO tensor [N, vocab]
    (one text: [vocab]). Without torch it returns a scipy.sparse CSR array (``convert_to_sparse_tensor=True``) or a
    dense numpy array; :meth:`encode_sparse` returns the graph's own (indices, values) arrays and needs numpy only.
    """

    @property
    def vocabulary(self) -> list[str | None]:
        """The token of each dimension (SparseEncoder's tokenizer.convert_ids_to_tokens), from the manifest."""
        return self.manifest["sparse"]["vocabulary"]

    def get_embedding_dimension(self) -> int:
        return len(self.vocabulary)

    get_sentence_embedding_dimension = get_embedding_dimension

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: a sparse export encodes texts.

        Raises:
            InvalidInputError: always, saying to use encode.
        """
        raise InvalidInputError("this export is a sparse encoder (SparseEncoder): use encode(texts); predict and "
                                "rank are for a CrossEncoder's export")

    rank = predict

    def encode_sparse(self, sentences: Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE,
                      max_active_dims: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices int64, values float32) [N, K]: each text's active dimensions, values descending, rows padded
        with index -1 and value 0 (numpy only)."""
        indices, values = self._runner.encode_sparse(checked_texts(sentences), batch_size=batch_size)
        if max_active_dims is not None:
            size = checked_batch_size(max_active_dims)  # a positive int, as SparseEncoder requires
            indices, values = indices[:, :size], values[:, :size]
        return indices, values

    def encode(self, sentences: str | Sequence[str], batch_size: int = DEFAULT_BATCH_SIZE,
               show_progress_bar: bool | None = None, convert_to_tensor: bool = True,
               convert_to_sparse_tensor: bool = True, save_to_cpu: bool = False, max_active_dims: int | None = None,
               **unsupported: Any) -> Any:
        """Return the sparse vectors of ``sentences`` as SparseEncoder.encode: [N, vocab] (one text: [vocab]).

        Args:
            sentences: a str or a list of str.
            batch_size: texts per model call.
            show_progress_bar: a bar over the texts (tqdm when installed).
            convert_to_tensor: False returns a list of per-text vectors.
            convert_to_sparse_tensor: a sparse result (torch COO, or scipy CSR without torch); False: dense.
            save_to_cpu: accepted for SparseEncoder's signature (the result is always on the CPU).
            max_active_dims: keep at most this many dimensions per text (the largest), as SparseEncoder does.

        Raises:
            InvalidInputError: input that is not a str or a list of str, or an argument with no meaning here.
        """
        if unsupported:
            raise InvalidInputError("; ".join(f"encode({name}=...) is not supported here: "
                                              f"{NOT_IN_SPARSE.get(name, 'SparseEncoder.encode has no such argument')}"
                                              for name in unsupported))
        single = isinstance(sentences, str)
        texts = checked_texts([sentences] if single else sentences)
        size = checked_batch_size(batch_size)
        bar = _progress_bar(len(texts)) if show_progress_bar else None
        parts = []
        for start in range(0, len(texts), size) or [0]:
            parts.append(self.encode_sparse(texts[start:start + size], batch_size=size,
                                            max_active_dims=max_active_dims))
            if bar is not None:
                bar.update(len(texts[start:start + size]))
        if bar is not None:
            bar.close()
        width = max(part[0].shape[1] for part in parts)
        indices = np.concatenate([np.pad(i, ((0, 0), (0, width - i.shape[1])), constant_values=SPARSE_PAD_INDEX)
                                  for i, _ in parts], axis=0)
        values = np.concatenate([np.pad(v, ((0, 0), (0, width - v.shape[1]))) for _, v in parts], axis=0)
        vectors = _sparse_rows(indices, values, self.get_embedding_dimension(), torch_tensor=_has_torch(),
                               sparse=convert_to_sparse_tensor)
        if single:
            return vectors[0]
        return vectors if convert_to_tensor else [vectors[i] for i in range(len(texts))]

    def encode_query(self, sentences: str | Sequence[str], **kwargs: Any) -> Any:
        """Return :meth:`encode` of ``sentences`` (one graph for queries and documents: not a Router model)."""
        return self.encode(sentences, **kwargs)

    encode_document = encode_query

    def decode(self, embeddings: Any, top_k: int | None = None) -> list[Any]:
        """Return [(token, weight)] by descending weight, as SparseEncoder.decode (a list of them for [N, vocab]).

        Args:
            embeddings: what :meth:`encode` returned (torch sparse or dense, scipy sparse, numpy), [vocab] or
                [N, vocab]; or the (indices, values) arrays of :meth:`encode_sparse`.
            top_k: at most this many tokens per text (None: every active one).

        Raises:
            InvalidInputError: a top_k that is not a positive int, or embeddings of another shape.
        """
        if top_k is not None:
            checked_batch_size(top_k)
        dense = _as_dense(embeddings, self.get_embedding_dimension())
        single = dense.ndim == 1
        rows = []
        for row in np.atleast_2d(dense):
            active = np.flatnonzero(row)
            order = active[np.argsort(-row[active], kind="stable")][:top_k]
            rows.append([(self.vocabulary[i], float(row[i])) for i in order])
        return rows[0] if single else rows


def _as_dense(embeddings: Any, vocab: int) -> np.ndarray:
    """Return ``embeddings`` (torch, scipy, numpy, or an (indices, values) pair) as a dense float32 numpy array."""
    if isinstance(embeddings, tuple) and len(embeddings) == 2:
        indices, values = (np.asarray(part) for part in embeddings)
        return _sparse_rows(np.atleast_2d(indices), np.atleast_2d(values), vocab, torch_tensor=False, sparse=False)
    if hasattr(embeddings, "to_dense") and hasattr(embeddings, "layout"):  # torch
        embeddings = embeddings.to_dense().cpu().numpy()
    elif hasattr(embeddings, "toarray"):  # scipy.sparse
        embeddings = embeddings.toarray()
    dense = np.asarray(embeddings, dtype=np.float32)
    if dense.ndim not in (1, 2) or dense.shape[-1] != vocab:
        raise InvalidInputError(f"decode() takes [vocab] or [N, vocab] vectors of this export (vocab {vocab}); got "
                                f"shape {dense.shape}")
    return dense


#: the class ``load`` returns for each kind of :data:`exporter.runtime.manifest.KINDS`
LOADED = {"embedding": ExportedModel, "reranker": ExportedReranker, "sparse": ExportedSparseEncoder,
          "static": ExportedModel}  # a static embedding (model2vec) is encoded as any SentenceTransformer


def load(out: str | Path, target: str = "onnx", *, threads: int | None = None,
         providers: Sequence[str] | None = None) -> "ExportedModel | ExportedReranker | ExportedSparseEncoder":
    """Return the export in ``out`` as a model with its sentence-transformers class's methods: ``encode`` for an
    embedding export (SentenceTransformer's), ``predict`` and ``rank`` for a reranker (CrossEncoder's), ``encode``,
    ``encode_query``, ``encode_document`` and ``decode`` for a sparse encoder (SparseEncoder's); the kind is read
    from the manifest.

    Args:
        out: a directory written by st-export.
        target: "onnx" (default), "onnx:int8", "onnx:int8w", "onnx:optimized", "savedmodel", "tflite", "tflite:fp16",
            "tflite:int8" (the rows of exporter.runtime.artifacts.ARTIFACTS but the serving layouts').
        threads: intra-op threads (default: the runtime's, one per physical core, the fastest in our benchmark).
        providers: ONNX Runtime execution providers (default: CPU), e.g. ["CUDAExecutionProvider"].

    Raises:
        ArtifactNotFoundError: ``out`` has no manifest.json, or the export does not hold ``target``'s file.
        InvalidInputError: an unknown target (the message lists them), or ``providers`` for a non-onnx one.
        InvalidManifestError: the manifest's fields, its kind among them, are not what this version reads.
    """
    kind = read_manifest(Path(out)).get("kind", "embedding")  # exports written before kinds are embeddings
    return LOADED[kind](out, target, threads=threads, providers=providers)


def keras_layer(out: str | Path) -> Any:
    """Return the export's SavedModel as a Keras 3 layer (strings in, embeddings out).

    Args:
        out: a directory written by st-export with the savedmodel target.
    """
    import keras

    return keras.layers.TFSMLayer(str(artifact("savedmodel").path(Path(out))), call_endpoint="serving_default")
