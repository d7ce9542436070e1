"""The output directory of an export: written beside ``OUT`` as a temp dir, published whole or not at all.

An export builds into ``.OUT.partial-*`` (holding the pid of the export writing it, so that a later export
removes a killed one's leftovers), then renames it into place; ``--add`` first links the kept targets'
files of the previous export into it.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import ArtifactNotFoundError, OutputExistsError, OutputNotWritableError
from .layouts import link_or_copy
from .manifest import new_manifest
from .runtime.manifest import read_manifest
from .verify.promises import target_files


def output_path(out: str | Path) -> Path:
    """Return the absolute folder an export writes: ``out``, or where it points when it is a symlink.

    The export is published by renaming a temp dir onto this path; renamed onto a symlink it would replace the
    link with a folder and leave its target as it was, so the link's target is written and the link stays.
    """
    out = Path(out).absolute()
    return out.resolve() if out.is_symlink() else out


def missing_ancestors(path: Path) -> list[Path]:
    """Return the folders of ``path`` (itself included) that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


#: holds the pid of the export writing a partial dir, so that a later export can tell a dead one's leftovers
PID_FILE = ".st-export.pid"


def partials_with_pid(out: Path) -> Iterator[tuple[Path, int]]:
    """Yield each ``.OUT.partial-*`` dir beside ``out`` that names the pid writing it, with that pid (a dir without
    one is not known to be an export's, or is still being created: left out)."""
    for partial in out.parent.glob(f".{out.name}.partial-*"):
        try:
            yield partial, int((partial / PID_FILE).read_text())
        except (OSError, ValueError):
            continue


def remove_stale_partials(out: Path) -> None:
    """Remove ``.OUT.partial-*`` dirs beside ``out`` left by exports that were killed (their pid is gone)."""
    for partial, pid in partials_with_pid(out):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(partial, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block ends (where the platform can: not on Windows)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def prepare_output(out: Path, force: bool) -> Path:
    """Return a fresh temp dir beside ``out``; refuse a non-empty ``out`` without ``force`` (or ``add``).

    The temp dir gets the permissions the umask gives a new folder (mkdtemp makes it 0700, which a
    serving process running as another user could not read once it is renamed to ``out``).
    """
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out} exists and is not a directory; choose another -o")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputExistsError(f"{out} exists and is not empty; pass --force (force=True) to replace everything in "
                                "it, or --add (add=True) to build the --targets named into it and keep its other "
                                "targets (an export of the same model)")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(out)
        # Ctrl-C or SIGTERM between mkdtemp and the pid file would leave a dir no export knows is its own; held
        # back here, the signal lands after, when remove_own_partials finds the dir by its pid
        with signals_held():
            temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
            (temp / PID_FILE).write_text(str(os.getpid()))
        umask = os.umask(0)
        os.umask(umask)
        temp.chmod(0o777 & ~umask)
        return temp
    except OSError as exc:
        raise OutputNotWritableError(f"cannot write to {parent} ({exc.strerror}); choose a writable -o") from None


def remove_own_partials(out: Path) -> None:
    """Remove the ``.OUT.partial-*`` dirs beside ``out`` that this process writes (an interrupted export's)."""
    for partial, pid in partials_with_pid(out):
        if pid == os.getpid():
            shutil.rmtree(partial, ignore_errors=True)


def publish(temp: Path, out: Path) -> None:
    """Move the finished export into place; the old directory (``--force``) goes only after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    temp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


#: what the manifest records of the source model that decides what it computes (``--add`` compares them all)
IDENTITY = ("source.weights_sha256", "source.config_sha256", "source.modules", "tokenizer")


def identity_differences(current: dict[str, Any], previous: dict[str, Any]) -> list[str]:
    """Return one line per ``IDENTITY`` entry where two manifests differ, naming the files for the sha256 tables."""
    differences = []
    for key in IDENTITY:
        section, _, field_name = key.rpartition(".")
        now, recorded = (m.get(section, {}).get(field_name) if section else m.get(field_name)
                         for m in (current, previous))
        now = json.loads(json.dumps(now))
        if recorded is None:
            differences.append(f"{key}: not recorded (the export was written by an older st-export)")
        elif key.endswith("_sha256") and isinstance(recorded, dict):  # {file: sha256}: name the files
            for name in sorted(now.keys() | recorded.keys()):
                if now.get(name) != recorded.get(name):
                    where = "model" if name in now else "export"
                    differences.append(f"{key}: {name} " + ("differs" if name in now and name in recorded
                                                            else f"is only in the {where}'s"))
        elif now != recorded:
            differences.append(f"{key} differs")
    if current.get("truncate_dim") != previous.get("truncate_dim"):  # the same model, sliced to another size
        differences.append(f"truncate_dim: {previous.get('truncate_dim')} in the export, {current.get('truncate_dim')} "
                           "now (pass the export's --truncate-dim)")
    return differences


def export_to_add_to(out: Path, spec: Any) -> dict[str, Any]:
    """Return the manifest of the export in ``out`` that ``--add`` extends.

    Raises:
        OutputExistsError: ``out`` holds no export, or one of another model: other weights, module configs,
            prompts, max_seq_length or tokenizer files (each difference named).
        InvalidManifestError: ``out``'s manifest.json is not one st-export writes.
    """
    try:
        previous = read_manifest(out)
    except ArtifactNotFoundError:
        raise OutputExistsError(f"{out} holds no st-export export (no manifest.json); --add (add=True) adds targets "
                                "to one. Choose another -o, or pass --force (force=True) to replace it") from None
    differences = identity_differences(new_manifest(spec), previous)
    if differences:
        lines = "\n".join(f"  - {line}" for line in differences)
        raise OutputExistsError(f"{out} holds an export of another model, or of this one with other settings; --add "
                                "(add=True) only adds targets to an export of the same model, whose targets would "
                                f"otherwise embed differently. Use --force (force=True) to replace it, or another "
                                f"-o. What differs:\n{lines}")
    return previous


def kept_targets(out: Path, temp: Path, previous: dict[str, Any], *, rebuilt: set[str]) -> dict[str, Any]:
    """Put the files of ``previous``'s targets that are not rebuilt into ``temp`` (hard links where the filesystem
    allows: nothing is written to them); return their manifest entries."""
    kept = {name: entry for name, entry in previous["targets"].items() if name not in rebuilt}
    for entry in kept.values():
        for name in target_files(entry):
            link_or_copy(out / name, temp / name)
    return kept


def _tensorflow_out_of_space(exc: BaseException) -> bool:
    """Return whether ``exc`` is TensorFlow's error for a full disk or quota: its file writers raise
    ResourceExhaustedError with the C library's message (it also raises that type for an OOM, which is not)."""
    errors = sys.modules.get("tensorflow.python.framework.errors_impl")  # imported by TF: never imported here
    return errors is not None and isinstance(exc, errors.ResourceExhaustedError) and any(
        os.strerror(code) in str(exc) for code in (errno.ENOSPC, errno.EDQUOT))


def out_of_space_error(exc: BaseException, out: Path) -> OutputNotWritableError | None:
    """Return the typed error for ``exc`` when it says the device holding ``out`` is full (or over quota), whichever
    writer raised it (Python's files, onnx, TensorFlow's SavedModel writer), else None."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        why = exc.strerror
    elif _tensorflow_out_of_space(exc):
        why = f"TensorFlow: {str(exc).strip().splitlines()[-1][:200]}"
    else:
        return None
    return OutputNotWritableError(f"no space left on the device holding {out.parent} ({why}); free some space or "
                                  f"choose another -o; nothing was written (an existing {out.name} is as it was)")
