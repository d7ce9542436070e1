"""Proving artifacts: the parity harness, its corpora, the stage-by-stage debugger, a SavedModel's op inventory."""
