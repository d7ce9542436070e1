"""Loading and running artifacts: the onnxruntime-extensions library and the Runners (reference included)."""
