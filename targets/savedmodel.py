"""TensorFlow SavedModel: tf-text tokenizer ∘ onnx-tf(encoder), signatures ``serving_default`` and ``tokenize``.

``serving_default(text: tf.string [None]) -> {"sentence_embedding": float32 [None, D]}`` and
``tokenize(text) -> {input_ids, attention_mask, token_type_ids}``; for a reranker (CrossEncoder)
``serving_default(query, document: tf.string [None]) -> {"score", "logits": float32 [None, num_labels]}`` and
``tokenize(query, document)``. The SavedModel loads in a process that imports only ``tensorflow`` and
``tensorflow_text``.
"""
from __future__ import annotations

import contextlib
import functools
import tempfile
from pathlib import Path
from typing import Any

from exporter import kinds
from exporter.progress import note
from exporter.runtime.artifacts import artifact, open_runner

from . import BuildResult, Target, register

FOLDER = artifact("savedmodel").file
SIGNATURES = ("serving_default", "tokenize")


def signature_io(spec: Any) -> tuple[list[str], dict[str, int]]:
    """Return (the string inputs, {output: its size per row}) of the model's ``serving_default``, read from its kind:
    (["text"], {"sentence_embedding": D}) or (["query", "document"], {"score": labels, "logits": labels})."""
    io = kinds.get(spec.kind).manifest_io(spec)
    inputs = io["input"] if isinstance(io["input"], list) else [io["input"]]
    outputs = [io["output"], *(value for value in io["output"].values() if isinstance(value, dict))]
    return [row["name"] for row in inputs], {row["name"]: row["shape"][1] for row in outputs}


def output_types(spec: Any) -> dict[str, tuple[str, Any]]:
    """Return {output: (its type, its size per row)} of ``serving_default``, as the kind's manifest_io says."""
    output = kinds.get(spec.kind).manifest_io(spec)["output"]
    rows = [output, *(value for value in output.values() if isinstance(value, dict))]
    return {row["name"]: (row["type"], row["shape"][1]) for row in rows}


def signatures_described(spec: Any, rows: str = "None") -> dict[str, Any]:
    """Return the manifest's description of ``serving_default`` and ``tokenize`` (``rows``: how the batch is shown)."""
    inputs = signature_io(spec)[0]
    strings = {name: f"string [{rows}]" for name in inputs}
    embedding = {"inputs": strings, "outputs": {name: f"{kind} [{rows}, {size}]"
                                                for name, (kind, size) in output_types(spec).items()}}
    return {"serving_default": embedding,
            **{key: {**embedding, "prompt": text} for key, text in spec.prompt_graphs().items()},
            "tokenize": {"inputs": strings,
                         "outputs": {name: f"int64 [{rows}, {'L' if rows == 'N' else 'None'}]"
                                     for name in ("input_ids", "attention_mask", "token_type_ids")}}}


def _one_dimensional(text: Any, name: str = "text") -> Any:
    """Return ``text``, checked at run time to be a 1-D string tensor [N].

    A signature's input shape is not enforced when it is called: a 2-D tensor would be flattened
    by the tokenizer (embeddings for its first N strings, the rest dropped) and a 0-D one crashes
    tensorflow-text's byte splitter. EnsureShape fails the call instead, with "Shape of tensor
    text [2,2] is not compatible with expected shape [?]" (TF Serving returns it to the client);
    the TFLite converter drops it (the interpreter sizes the input itself).
    """
    import tensorflow as tf

    return tf.ensure_shape(text, [None], name=f"{name}_must_be_a_vector_of_strings")


def _tf_encoder(spec: Any, **options: Any) -> tuple[Any, Any]:
    """Return (onnx-tf's module of the kind's encoder graph, its raw call: ``encode(module, **tokens) -> outputs``)."""
    from exporter.graphs.onnx_for_tf import transformer_scope
    from exporter.graphs.onnx_tf_compat import ONNX_TF_OPSET, onnx_tf_backend

    backend = onnx_tf_backend()
    note(f"the encoder at opset {ONNX_TF_OPSET} for onnx-tf")
    # the graph points to its weights in the temp folder, read from there (one tensor at a time, into a
    # tf.Variable each): the working directory is where onnx's checker and numpy_helper resolve them
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        encoder = kinds.get(spec.kind).export_encoder(spec, Path(tmp) / "encoder.onnx", opset=ONNX_TF_OPSET,
                                                      external_data=True, **options)
        for rewrite in spec.transformer.architecture.tf_rewrites(scope=transformer_scope(encoder)):
            rewrite(encoder)
        note("converting it with onnx-tf")
        tf_encoder = backend.prepare(encoder).tf_module
    tf_encoder.outputs = [output.name for output in encoder.graph.output]
    # onnx-tf's __call__ is a tf.function with AutoGraph, which rewrites every node handler's source
    # at each trace (most of the build time); its handlers build plain graph ops, so the raw
    # function is traced inline, without AutoGraph, and no separate encoder function is saved
    return tf_encoder, type(tf_encoder).__call__.python_function


def string_encoder_module(spec: Any) -> Any:
    """Return the in-memory ``tf.Module`` (for users composing it into their own TF graphs).

    It has ``tf.function``s ``serving_default(text)`` and ``tokenize(text)``; for a reranker
    ``serving_default(query, document)`` and ``tokenize(query, document)`` (:func:`string_pair_module`).
    """
    if spec.kind == "reranker":
        return string_pair_module(spec)
    if spec.kind == "static":
        return string_static_module(spec)
    if spec.kind == "sparse":
        return string_sparse_module(spec)
    import tensorflow as tf

    from exporter.tokenizers.shared.framing_tf import TokenizerTF

    # one encoder for every prompt: where pooling skips the prompt, its length is the encoder's fourth input
    per_prompt = spec.pooling_per_prompt
    tf_encoder, encode = _tf_encoder(spec, **({"prompt_input": True} if per_prompt else {}))
    text_spec = [tf.TensorSpec([None], tf.string, name="text")]

    class StringEncoder(tf.Module):
        def __init__(self):
            super().__init__(name="st_exporter")
            self.tokenizer = TokenizerTF(spec.tokenizer)
            self.encoder = tf_encoder
            self.prompt = spec.prompt
            #: signature key → the embedding of its prompt (exporter/runtime/prompts.py); serving_default's is the
            #: default prompt's
            self.prompt_signatures = {key: tf.function(functools.partial(self.embed, spec.with_prompt(text)),
                                                       input_signature=text_spec, autograph=False)
                                      for key, text in spec.prompt_graphs().items()}

        @tf.function(input_signature=text_spec, autograph=False)
        def tokenize(self, text):
            return self.tokenizer.tokenize(_one_dimensional(text))

        @tf.function(input_signature=text_spec, autograph=False)
        def serving_default(self, text):
            return self.embed(spec, text)

        def embed(self, prompted, text):
            text = _one_dimensional(text)
            # the encoder's reshapes cannot take 0 rows: one row of [CLS] [SEP] is sliced away after.
            # No string ops here (TFLite has no kernels for them): the prompt is prepended as bytes.
            tokens = self.tokenizer.tokenize(text, prompt=prompted.prompt, min_rows=1)
            if per_prompt:
                tokens["prompt_length"] = tf.constant(prompted.pooled_from_token, tf.int64)
            embedding = encode(self.encoder, **tokens)["sentence_embedding"]
            return {"sentence_embedding": embedding[:tf.shape(text)[0]]}

    return StringEncoder()


def signature_functions(module: Any) -> dict[str, Any]:
    """Return {signature key: its tf.function} of a module from :func:`string_encoder_module`: ``SIGNATURES`` and one
    per prompt besides the default one."""
    return {**{name: getattr(module, name) for name in SIGNATURES}, **getattr(module, "prompt_signatures", {})}


def string_pair_module(spec: Any) -> Any:
    """Return a reranker's in-memory ``tf.Module``: ``serving_default(query, document) -> {score, logits}`` and
    ``tokenize(query, document) -> {input_ids, attention_mask, token_type_ids}``, N pairs in, N rows out."""
    import tensorflow as tf

    from exporter.tokenizers.shared.framing_tf import TokenizerTF

    tf_encoder, encode = _tf_encoder(spec)
    pair = [tf.TensorSpec([None], tf.string, name="query"), tf.TensorSpec([None], tf.string, name="document")]

    class StringPairScorer(tf.Module):
        def __init__(self):
            super().__init__(name="st_exporter")
            self.tokenizer = TokenizerTF(spec.tokenizer)
            self.encoder = tf_encoder

        @tf.function(input_signature=pair, autograph=False)
        def tokenize(self, query, document):
            return self.tokenizer.tokenize_pairs(_one_dimensional(query, "query"),
                                                 _one_dimensional(document, "document"))

        @tf.function(input_signature=pair, autograph=False)
        def serving_default(self, query, document):
            query, document = _one_dimensional(query, "query"), _one_dimensional(document, "document")
            # as for texts: the encoder cannot take 0 rows, so an empty pair's row is sliced away after
            tokens = self.tokenizer.tokenize_pairs(query, document, min_rows=1)
            outputs = encode(self.encoder, **tokens)
            return {name: outputs[name][:tf.shape(query)[0]] for name in ("score", "logits")}

    return StringPairScorer()


def string_static_module(spec: Any) -> Any:
    """Return a static embedding's in-memory ``tf.Module``: the family's tokenizer framed without special tokens, the
    rows of the ids gathered and averaged over the mask (a text without pieces: the zero vector), then normalized
    where the model has a Normalize. No onnx-tf: a gather and two sums, all TFLite builtins."""
    import tensorflow as tf

    from exporter.tokenizers.shared.framing_tf import TokenizerTF

    normalize = [m.class_name for m in spec.modules[1:]] == ["Normalize"]

    class StringStaticEncoder(tf.Module):
        def __init__(self):
            super().__init__(name="st_exporter")
            self.tokenizer = TokenizerTF(spec.tokenizer)
            self.table = tf.Variable(spec.modules[0].weights().numpy(), trainable=False, name="embedding")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def tokenize(self, text):
            return self.tokenizer.tokenize(_one_dimensional(text))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def serving_default(self, text):
            tokens = self.tokenizer.tokenize(_one_dimensional(text))
            # expand_dims, not [:, :, None]: a StridedSlice with new_axis_mask has no TFLite builtin
            mask = tf.expand_dims(tf.cast(tokens["attention_mask"], tf.float32), -1)
            summed = tf.reduce_sum(tf.gather(self.table, tokens["input_ids"]) * mask, axis=1)
            embedding = summed / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
            if normalize:  # torch.nn.functional.normalize: x / max(||x||, 1e-12); the zero vector stays zero even
                # where a float16 file has rounded 1e-12 to 0
                norm = tf.norm(embedding, axis=1, keepdims=True)
                embedding = tf.where(norm > 0, embedding / tf.maximum(norm, 1e-12), tf.zeros_like(embedding))
            if spec.truncate_dim is not None:  # after Normalize, as SentenceTransformer(truncate_dim=N)
                embedding = tf.slice(embedding, [0, 0], [-1, spec.truncate_dim])
            return {"sentence_embedding": embedding}

    return StringStaticEncoder()


def string_sparse_module(spec: Any) -> Any:
    """Return a sparse (SPLADE) model's in-memory ``tf.Module``: ``serving_default(text) -> {indices, values[,
    dense]}`` (the top-K of :mod:`exporter.graphs.splade`, as ``tf.math.top_k``) and ``tokenize(text)``."""
    import tensorflow as tf

    from exporter.graphs.splade import output_names
    from exporter.tokenizers.shared.framing_tf import TokenizerTF

    tf_encoder, encode = _tf_encoder(spec)
    names = output_names(spec.head.dense)

    class StringSparseEncoder(tf.Module):
        def __init__(self):
            super().__init__(name="st_exporter")
            self.tokenizer = TokenizerTF(spec.tokenizer)
            self.encoder = tf_encoder

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def tokenize(self, text):
            return self.tokenizer.tokenize(_one_dimensional(text))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def serving_default(self, text):
            text = _one_dimensional(text)
            # as for embeddings: the encoder cannot take 0 rows, so one row of [CLS] [SEP] is sliced away after
            outputs = encode(self.encoder, **self.tokenizer.tokenize(text, min_rows=1))
            return {name: outputs[name][:tf.shape(text)[0]] for name in names}

    return StringSparseEncoder()


@register
class SavedModelTarget(Target):
    """TF Serving, TF/Keras graphs: a SavedModel whose ``serving_default`` takes strings."""

    name = "savedmodel"
    order = 10
    tokenizer_graph = "tf"

    def build(self, spec: Any, out: Path, *, options: dict[str, Any]) -> BuildResult:
        import tensorflow as tf

        from exporter.graphs.onnx_tf_compat import ONNX_TF_OPSET
        from exporter.verify.server_ops import custom_ops

        module = string_encoder_module(spec)
        folder = out / FOLDER
        # the functions, not concrete functions: TF traces each once then (twice otherwise)
        signatures = signature_functions(module)
        note("tracing and saving the signatures (tokenizer and encoder)")
        tf.saved_model.save(module, str(folder), signatures=signatures)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        return BuildResult(files=files, details={
            "custom_ops": custom_ops(folder),
            "encoder": "tf.gather of the embedding table, masked mean" if spec.kind == "static" else
            f"onnx-tf from encoder.onnx exported at opset {ONNX_TF_OPSET}",
            "signatures": signatures_described(spec),
            "load_with": "import tensorflow as tf, tensorflow_text; tf.saved_model.load(path)",
            "prompt": {"text": spec.prompt, "in": "serving_default",
                       "note": "tokenize() tokenizes the text alone"} if spec.prompt else None,
            **({"prompt_signatures": sorted(spec.prompt_graphs())} if spec.prompt_graphs() else {}),
        })

    def runners(self, out: Path) -> dict[str, Any]:
        runner = open_runner(out, self.name)
        return {"model": runner, "tokenizer": runner}
