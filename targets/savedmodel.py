"""TensorFlow SavedModel: tf-text tokenizer ∘ onnx-tf(encoder), signatures ``serving_default`` and ``tokenize``.

``serving_default(text: tf.string [None]) -> {"sentence_embedding": float32 [None, D]}`` and
``tokenize(text) -> {input_ids, attention_mask, token_type_ids}``. The SavedModel loads in a
process that imports only ``tensorflow`` and ``tensorflow_text``.
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from exporter.graphs.encoder import export_encoder
from exporter.progress import note
from exporter.runtime.artifacts import artifact, open_runner

from . import BuildResult, Target, register

FOLDER = artifact("savedmodel").file
SIGNATURES = ("serving_default", "tokenize")


def _one_dimensional(text: Any) -> Any:
    """Return ``text``, checked at run time to be a 1-D string tensor [N].

    A signature's input shape is not enforced when it is called: a 2-D tensor would be flattened
    by the tokenizer (embeddings for its first N strings, the rest dropped) and a 0-D one crashes
    tensorflow-text's byte splitter. EnsureShape fails the call instead, with "Shape of tensor
    text [2,2] is not compatible with expected shape [?]" (TF Serving returns it to the client);
    the TFLite converter drops it (the interpreter sizes the input itself).
    """
    import tensorflow as tf

    return tf.ensure_shape(text, [None], name="text_must_be_a_vector_of_strings")


def string_encoder_module(spec: Any) -> Any:
    """Return the in-memory ``tf.Module`` (for users composing it into their own TF graphs).

    It has ``tf.function``s ``serving_default(text)`` and ``tokenize(text)``.
    """
    import tensorflow as tf

    from exporter.graphs.onnx_tf_compat import ONNX_TF_OPSET, onnx_tf_backend
    from exporter.tokenizers.shared.framing_tf import TokenizerTF

    backend = onnx_tf_backend()
    note(f"the encoder at opset {ONNX_TF_OPSET} for onnx-tf")
    # the graph points to its weights in the temp folder, read from there (one tensor at a time, into a
    # tf.Variable each): the working directory is where onnx's checker and numpy_helper resolve them
    with tempfile.TemporaryDirectory() as tmp, contextlib.chdir(tmp):
        encoder = export_encoder(spec, Path(tmp) / "encoder.onnx", opset=ONNX_TF_OPSET, external_data=True)
        for rewrite in spec.transformer.architecture.tf_rewrites():
            rewrite(encoder)
        note("converting it with onnx-tf")
        tf_encoder = backend.prepare(encoder).tf_module
    tf_encoder.outputs = ["sentence_embedding"]
    # onnx-tf's __call__ is a tf.function with AutoGraph, which rewrites every node handler's source
    # at each trace (most of the build time); its handlers build plain graph ops, so the raw
    # function is traced inline, without AutoGraph, and no separate encoder function is saved
    encode = type(tf_encoder).__call__.python_function

    class StringEncoder(tf.Module):
        def __init__(self):
            super().__init__(name="st_exporter")
            self.tokenizer = TokenizerTF(spec.tokenizer)
            self.encoder = tf_encoder
            self.prompt = spec.prompt

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def tokenize(self, text):
            return self.tokenizer.tokenize(_one_dimensional(text))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
        def serving_default(self, text):
            text = _one_dimensional(text)
            # the encoder's reshapes cannot take 0 rows: one row of [CLS] [SEP] is sliced away after.
            # No string ops here (TFLite has no kernels for them): the prompt is prepended as bytes.
            tokens = self.tokenizer.tokenize(text, prompt=self.prompt, min_rows=1)
            embedding = encode(self.encoder, **tokens)["sentence_embedding"]
            return {"sentence_embedding": embedding[:tf.shape(text)[0]]}

    return StringEncoder()


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
        signatures = {name: getattr(module, name) for name in SIGNATURES}
        note("tracing and saving the signatures (tokenizer and encoder)")
        tf.saved_model.save(module, str(folder), signatures=signatures)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        return BuildResult(files=files, details={
            "custom_ops": custom_ops(folder),
            "encoder": f"onnx-tf from encoder.onnx exported at opset {ONNX_TF_OPSET}",
            "signatures": {
                "serving_default": {"inputs": {"text": "string [None]"},
                                    "outputs": {"sentence_embedding": f"float32 [None, {spec.embedding_dim}]"}},
                "tokenize": {"inputs": {"text": "string [None]"},
                             "outputs": {name: "int64 [None, None]" for name in
                                         ("input_ids", "attention_mask", "token_type_ids")}},
            },
            "load_with": "import tensorflow as tf, tensorflow_text; tf.saved_model.load(path)",
            "prompt": {"text": spec.prompt, "in": "serving_default",
                       "note": "tokenize() tokenizes the text alone"} if spec.prompt else None,
        })

    def runners(self, out: Path) -> dict[str, Any]:
        runner = open_runner(out, self.name)
        return {"model": runner, "tokenizer": runner}
