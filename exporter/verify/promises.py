"""What an export's manifest promises about its files and settings, checked against the files and the model.

``st-export check`` runs these before any parity: a file whose bytes changed can still embed within
the thresholds on the corpus (64 flipped bytes in two embedding rows did), and a file that does not
load is named here instead of failing deep inside a runtime.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import kinds
from ..manifest import sha256_of


def target_files(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return {relative path: {bytes, sha256}} of every file a manifest target entry lists, variants included."""
    return {**entry.get("files", {}), **{v["file"]: v for v in entry.get("variants", {}).values() if "sha256" in v}}


def _differs(recorded: Any, actual: Any) -> bool:
    """Return whether a recorded value says something the actual one does not (keys an older version did not
    record are not differences)."""
    if isinstance(recorded, dict) and isinstance(actual, dict):
        return any(key not in actual or _differs(value, actual[key]) for key, value in recorded.items())
    if isinstance(recorded, list) and isinstance(actual, list):
        return len(recorded) != len(actual) or any(map(_differs, recorded, actual))
    return recorded != actual


def settings_report(out: Path, manifest: dict[str, Any], spec: Any) -> dict[str, Any]:
    """Return whether what the manifest says of the artifacts (modules, tokenizer settings, output shape, the
    ONNX opset) is what the model and the files say, naming each entry that is not."""
    import onnx

    failures = []
    recorded = {"source.modules": manifest["source"].get("modules"), "tokenizer": manifest.get("tokenizer"),
                "output.shape": manifest.get("output", {}).get("shape")}
    actual = {"source.modules": spec.describe(), "tokenizer": spec.tokenizer.describe(),
              "output.shape": kinds.get(spec.kind).manifest_io(spec)["output"]["shape"]}
    for key, value in recorded.items():
        if _differs(value, json.loads(json.dumps(actual[key]))):
            failures.append(f"manifest.json {key}: {json.dumps(value)[:120]} is not what the model has")
    onnx_target = manifest["targets"].get("onnx")
    if onnx_target and (out / "onnx/model.onnx").is_file():
        try:
            model = onnx.load(str(out / "onnx/model.onnx"), load_external_data=False)
        except Exception as exc:  # protobuf's DecodeError and friends: the file is named by files_report too
            failures.append(f"onnx/model.onnx: not an ONNX model ({type(exc).__name__})")
            return {"failures": failures, "passed": False}
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if opset != onnx_target.get("opset"):
            failures.append(f"manifest.json targets.onnx.opset: {onnx_target.get('opset')}, onnx/model.onnx has {opset}")
    return {"failures": failures, "passed": not failures}


def files_report(out: Path, promised: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Return whether every file is the one the manifest recorded (size, then sha256), naming each that is not.

    A changed file can still embed within the parity thresholds on the corpus (64 flipped bytes in two
    embedding rows did), so ``check`` compares the bytes too.
    """
    failures = []
    for name, recorded in promised.items():
        path = out / name
        if not path.is_file():
            failures.append(f"{name}: missing (the manifest lists it)")
        elif path.stat().st_size != recorded["bytes"]:
            failures.append(f"{name}: {path.stat().st_size} bytes, the manifest says {recorded['bytes']}")
        elif sha256_of(path) != recorded["sha256"]:
            failures.append(f"{name}: sha256 differs from the manifest's: the file changed after the export")
    return {"files": len(promised), "failures": failures, "passed": not failures}
