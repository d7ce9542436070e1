"""The onnx target's variants: string-in graphs for ONNX Runtime only, faster than ``model.onnx``.

* ``onnx/model_optimized.onnx``: the tokenizer ∘ the encoder rewritten into ONNX Runtime's fused
  transformer kernels (``exporter/graphs/encoder_fused.py``); fp32, held to the core bar.
* ``onnx/model_int8.onnx``: the same with its MatMuls as per-token dynamic int8
  (``exporter/graphs/quantize_int8.py``); held to min cosine 0.99 and retention 0.99 (a reranker:
  |Δscore| ≤ 0.02, ``RERANKER_INT8_MAX_SCORE_DIFF``).
* ``onnx/model_int8w.onnx``: the optimized graph (fusions kept) with every MatMul of a constant
  weight as weight-only 8-bit ``MatMulNBits`` (``exporter/graphs/quantize_nbits.py``: blocks of 32,
  ``accuracy_level`` 4, int8 activations quantized per block inside the kernel, no calibration);
  held to the int8 bar. It is the candidate for CPUs where the per-token scale ops around
  ``DynamicQuantizeMatMul`` dominate (AMX, issue 26); on AVX2 ``model_int8.onnx`` is faster. The
  manifest says which to pick (``use``). 4 bits misses the bar on all-MiniLM-L6-v2 (min cosine
  0.94 at block 32) and is not written.

A reranker's variants are its classifier (ids → score, logits) rewritten the same way
(``fused_classifier``), calibrated on pairs of the calibration texts.

Both use ``com.microsoft`` contrib ops (and the extensions' ops for the tokenizer), so they run
in ONNX Runtime (CPU provider) and nowhere else; ``model.onnx`` stays the portable artifact.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from exporter.progress import note
from exporter.runtime.artifacts import variants_of
from exporter.verify.parity import Thresholds

#: variant → its file in the target's folder (names from the table of artifacts)
FILES = {row.variant: Path(row.file).name for row in variants_of("onnx")}
THRESHOLDS = {"optimized": Thresholds(),
              "int8": Thresholds(min_cosine=0.99, max_abs_diff=None, min_retention=0.99),
              "int8w": Thresholds(min_cosine=0.99, max_abs_diff=None, min_retention=0.99)}
#: the int8 variants: a reranker's are held to RERANKER_INT8_MAX_SCORE_DIFF on the scores
INT8_VARIANTS = ("int8", "int8w")
#: MatMulNBits settings of the int8w variant: 8 bits, blocks of 32 along K (block 128: min cosine 0.9979 against
#: 0.9992 on all-MiniLM-L6-v2, no faster on AVX2)
INT8W_BITS, INT8W_BLOCK = 8, 32
#: which int8 file to pick where (the manifest's ``use``): measured on AVX2, a design choice for AMX (issue 26)
USE = {"int8": "the int8 variant for AVX2 and AVX-512 CPUs: measured fastest there (2-core AMD EPYC, AVX2)",
       "int8w": "a candidate for AMX / AVX512-VNNI CPUs (no separate activation-scale ops; not yet measured "
                "there); on AVX2 slower than model_int8.onnx, closer to the reference"}
#: the int8 builder keeps MatMuls in fp32 until the calibration texts (harder than the parity corpus:
#: short, unknown-word-heavy texts) reach this; a margin over the bar (0.99)
INT8_CALIBRATION_COSINE = 0.992
CALIBRATION_BATCH = 16
#: a reranker's int8 bar: |Δscore| against CrossEncoder.predict (scores of a Sigmoid head lie in [0, 1]: 2% of the
#: range; a ranking changes only between pairs scored closer than that). |Δlogit| is recorded, not required.
RERANKER_INT8_MAX_SCORE_DIFF = 0.02
#: the int8 builder keeps MatMuls fp32 until |Δscore| on the calibration pairs is at most this (half the bar)
RERANKER_INT8_CALIBRATION_DIFF = 0.01
NEEDS = ("ONNX Runtime's CPU provider (com.microsoft contrib ops: {ops}) with onnxruntime-extensions; "
         "not other ONNX runtimes, not onnx-tf")


def _contrib_ops(model: onnx.ModelProto) -> list[str]:
    return sorted({n.op_type for n in model.graph.node if n.domain == "com.microsoft"})


def _calibration_feeds(folder: Path, spec: Any) -> list[dict[str, Any]]:
    """Return the calibration texts as encoder inputs, tokenized by the exported tokenizer graph.

    A reranker's are pairs of consecutive calibration texts (not the parity pairs the variant is checked on).
    """
    from exporter.runtime.onnx import OnnxRunner
    from exporter.verify.corpus import calibration_texts

    tokenizer = OnnxRunner(folder / "tokenizer.onnx")
    texts = calibration_texts()
    batches = range(0, len(texts), CALIBRATION_BATCH)
    if spec.kind == "reranker":
        documents = texts[1:] + texts[:1]
        return [tokenizer.tokenize_pairs(texts[i:i + CALIBRATION_BATCH], documents[i:i + CALIBRATION_BATCH])
                for i in batches]
    texts = [spec.prompt + text for text in texts]
    return [tokenizer.tokenize(texts[i:i + CALIBRATION_BATCH]) for i in batches]


def _fused(spec: Any, **options: Any) -> tuple[onnx.ModelProto, dict[str, int]]:
    from exporter.graphs.encoder_fused import fused_classifier, fused_encoder

    return (fused_classifier if spec.kind == "reranker" else fused_encoder)(spec, **options)


def _score_closeness(got: Any, want: Any) -> float:
    """Return 1 - max |Δscore| (the quantizer's measure for a reranker: higher is closer)."""
    import numpy as np

    return 1.0 - float(np.abs(got.astype(np.float64) - want).max()) if got.size else 1.0


def _int8_target(spec: Any) -> dict[str, Any]:
    """Return the quantizer's measure and target for the kind (default: min cosine of the embeddings)."""
    if spec.kind == "reranker":
        return {"target_cosine": 1.0 - RERANKER_INT8_CALIBRATION_DIFF, "closeness": _score_closeness,
                "measure": "calibration_min_1_minus_score_diff"}
    return {"target_cosine": INT8_CALIBRATION_COSINE}


def _saved(model: onnx.ModelProto, path: Path, weights: Any, *, ops: list[str], **details: Any) -> dict[str, Any]:
    from exporter.files import sha256_of

    weights.save(model, path)
    onnx.checker.check_model(str(path))
    return {"file": f"{path.parent.name}/{path.name}", "bytes": path.stat().st_size, "sha256": sha256_of(path),
            "needs": NEEDS.format(ops=", ".join(ops)), **details}


def build_variants(spec: Any, folder: Path, tokenizer: onnx.ModelProto, *, opset: int,
                   weights: Any) -> dict[str, Any]:
    """Write the variant files into ``folder`` (beside tokenizer.onnx) and return their manifest entries.

    Args:
        spec: the model read by ``exporter.model.read_model``.
        folder: the target's folder; ``tokenizer.onnx`` must already be there.
        tokenizer: the tokenizer graph ``model.onnx`` was composed from.
        opset: default-domain opset of the graphs.
        weights: the folder's ``SharedWeights`` (exporter/graphs/shared_weights.py): the variants' tensors
            that ``model.onnx`` already holds are not stored again.
    """
    from exporter import kinds
    from exporter.graphs.encoder_fused import describe_fusion
    from exporter.graphs.quantize_int8 import quantizable, quantize_int8

    kind = kinds.get(spec.kind)
    note("optimized variant: ONNX Runtime's transformer fusions")
    fused, counts = _fused(spec, opset=opset)
    optimized = kind.compose_onnx(tokenizer, fused, spec)
    entries = {"optimized": _saved(optimized, folder / FILES["optimized"], weights, ops=_contrib_ops(fused),
                                   fused=describe_fusion(spec, counts))}
    # Q, K, V stay MatMuls to quantize; no SkipLayerNormalization (slower than Add + LayerNorm on CPU)
    note("int8 variant: calibrating and quantizing the encoder")
    plain, _ = _fused(spec, opset=opset, attention=False, skip_layer_norm=False)
    int8 = quantize_int8(plain, quantizable(plain, skip_prefix="head/"), _calibration_feeds(folder, spec),
                         **_int8_target(spec))
    entries["int8"] = _saved(kind.compose_onnx(tokenizer, int8.model, spec), folder / FILES["int8"], weights,
                             ops=_contrib_ops(int8.model), **int8.describe(), use=USE["int8"])
    entries["int8w"] = weight_only_variant(spec, folder, tokenizer, fused, weights=weights)
    return entries


def weight_only_variant(spec: Any, folder: Path, tokenizer: onnx.ModelProto, encoder: onnx.ModelProto, *,
                        weights: Any, base_dir: Path | None = None) -> dict[str, Any]:
    """Write ``model_int8w.onnx`` (tokenizer ∘ ``encoder`` with weight-only 8-bit MatMuls) and return its entry.

    Args:
        encoder: any ids → embedding graph (the fused one, or ``encoder.onnx`` of a model past 2 GB loaded
            without its external data: then ``base_dir`` is its folder and weights are read one at a time).
    """
    from exporter import kinds
    from exporter.graphs.quantize_nbits import quantizable, quantize_nbits

    note("int8w variant: weight-only int8 (MatMulNBits)")
    result = quantize_nbits(encoder, quantizable(encoder, skip_prefix="head/"), bits=INT8W_BITS,
                            block_size=INT8W_BLOCK, base_dir=base_dir)
    with weights.resolvable():
        model = kinds.get(spec.kind).compose_onnx(tokenizer, result.model, spec)
    return _saved(model, folder / FILES["int8w"], weights, ops=_contrib_ops(result.model), **result.describe(),
                  use=USE["int8w"])


def existing_variants(out: Path) -> list[Any]:
    """Return a Variant for each variant file of the onnx target present in the export ``out``."""
    from functools import partial

    from . import Variant

    return [Variant(row.variant, row.file, partial(row.open, out, name=f"onnx {row.path(out).name}"),
                    THRESHOLDS[row.variant])
            for row in variants_of("onnx") if row.path(out).is_file()]
