"""Running artifacts: the onnxruntime-extensions library, the Runners and the table of artifacts.

Everything a user runs at serving time lives here: ``onnx.py`` (ONNX Runtime), ``savedmodel.py``
(TensorFlow), ``tflite.py`` (LiteRT), ``triton.py`` and ``tfserving.py`` (the serving layouts, fed
as their servers feed them), found through ``artifacts.py``. Nothing here imports a builder
(``targets``, torch, transformers, sentence-transformers, onnx-tf), and TensorFlow is imported
only when a Runner that needs it is opened. The reference model's Runner is in ``exporter/verify``.
"""
